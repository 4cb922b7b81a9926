"""The rules engine's recovery after a restart late in the day: a fleet's stored fixes
replayed through the engine, one device at a time, with its memory and its time.

A simulated city's trucks (no faults, 5 s fixes, 10 m noise) have driven ``--hours`` of
their day; their fixes (and the bin lifts of the half with a lift sensor) are written
straight into ``positions`` (and ``device_events``) of a fresh database
(``sanitrack_bench_<random>`` on 127.0.0.1:5432, dropped at the end) and a ``RulesService``
starts on it, as the ingest's process would after a crash. Printed: fixes stored, items
replayed, seconds and items/s; memory (sampled every 20 ms): what the engine's state keeps
after the replay, and how far above that the replay peaked (what reading and replaying
cost); alerts and stop visits stored; and, for comparison, the memory the same fixes take
as rows read in one query (what recovery did before it read one device at a time).

    .venv/bin/python -m bench.recovery                      # 300 trucks, 4 h: ~3 min
    .venv/bin/python -m bench.recovery --trucks 1000 --hours 6
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

import simulator
from bench.ingest import bench_database
from rules.service import RulesService
from sanitrack.clock import SystemClock
from sanitrack.settings import RulesSettings
from simulator.actors import fix_noise
from storage import DeviceEventRow, PositionRow, open_pool, write_device_events, write_positions


def say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """[the RSS before, the highest seen since] while the block runs (20 ms samples)."""
    process = psutil.Process()
    gc.collect()
    seen = [process.memory_info().rss, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen[1] = max(seen[1], process.memory_info().rss)
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        done.set()
        sampler.join()
        seen[1] = max(seen[1], process.memory_info().rss)


def rows_of(
    scenario: simulator.Scenario, device_ids: dict[str, int], tenant_id: int, until_s: float
) -> Iterator[PositionRow]:
    projection = scenario.city.projection
    rng = random.Random(7)
    for vehicle in scenario.vehicles:
        device_id = device_ids[vehicle.device]
        track = vehicle.day.track
        t = vehicle.plan.planned_start_s
        while t < min(until_s, track.end_s):
            sample = track.at(t)
            dx, dy = fix_noise(rng, 10.0)
            lat, lon = projection.to_latlon(sample.x_m + dx, sample.y_m + dy)
            at = scenario.start + dt.timedelta(seconds=t)
            yield (
                device_id, at, tenant_id, at, lat, lon, sample.speed_kmh, None, 10.0,
                None, None, None, True, None, None, "native",
            )  # fmt: skip
            t += 5.0


def lifts_of(
    scenario: simulator.Scenario, device_ids: dict[str, int], tenant_id: int, until_s: float
) -> list[DeviceEventRow]:
    """The bin lifts of the trucks with a lift sensor (half of them), where they stood."""
    projection = scenario.city.projection
    rows = []
    for script in scenario.scripts:
        for event in script.events:
            if event.kind == "bin_lift" and event.at_s < until_s:
                sample = script.track.at(event.at_s)
                lat, lon = projection.to_latlon(sample.x_m, sample.y_m)
                at = scenario.start + dt.timedelta(seconds=event.at_s)
                rows.append(
                    DeviceEventRow(tenant_id, device_ids[script.slug], at, at, "bin_lift", lat, lon)
                )
    return rows


async def run(args: argparse.Namespace) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    hours_s = args.hours * 3600.0
    config = simulator.ScenarioConfig(
        seed=args.seed,
        vehicles=args.trucks,
        phones=0,
        interval_s=5.0,
        gps_noise_m=10.0,
        stops_per_run=args.stops,
        faults=simulator.fault_rates("none"),
    )
    scenario = simulator.build_scenario(config, now - dt.timedelta(seconds=hours_s), hours_s, say)
    async with bench_database() as url, open_pool(url, min_size=1, max_size=4) as pool:
        registered = await simulator.register_scenario(pool, scenario, progress=say)
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT slug, id FROM devices WHERE tenant_id = %s", (registered.tenant_id,)
            )
            device_ids = {slug: device_id for slug, device_id in await cursor.fetchall()}
        stored, batch = 0, []
        for row in rows_of(scenario, device_ids, registered.tenant_id, hours_s):
            batch.append(row)
            if len(batch) == 20_000:
                async with pool.connection() as conn:
                    stored += await write_positions(conn, batch)
                batch = []
                if stored % 500_000 < 20_000:
                    say(f"  {stored:,} fixes stored")
        async with pool.connection() as conn:
            stored += await write_positions(conn, batch)
            lifts = await write_device_events(
                conn, lifts_of(scenario, device_ids, registered.tenant_id, hours_s)
            )
        say(
            f"{stored:,} fixes and {lifts:,} bin lifts of {args.trucks} trucks stored"
            f" ({args.hours:g} h of their day)"
        )

        service = RulesService(RulesSettings(), pool, clock=SystemClock())
        await service.load()
        with peak_rss() as memory:
            began, cpu = time.perf_counter(), time.process_time()
            replayed = await service.recover()
            wall, cpu_s = time.perf_counter() - began, time.process_time() - cpu
        gc.collect()
        after = psutil.Process().memory_info().rss
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM stop_visits)"
            )
            alerts, visits = await cursor.fetchone() or (0, 0)

        with peak_rss() as whole:  # the same fixes in one query, as recovery read them before
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT device_id, time, received_at, lat, lon, speed_kmh, accuracy_m,"
                    " ignition FROM positions ORDER BY device_id, time"
                )
                held = await cursor.fetchall()
            del held

    print(f"\n## recovery: {args.trucks} trucks, {args.hours:g} h of 5 s fixes")
    print(
        f"{replayed:,} items replayed in {wall:.1f} s ({cpu_s:.1f} s CPU):"
        f" {replayed / wall:,.0f} items/s"
    )
    print(
        f"memory: the engine's state kept {(after - memory[0]) / 2**20:,.0f} MiB; the"
        f" recovery's peak was {(memory[1] - after) / 2**20:,.0f} MiB above that"
        f" ({(memory[1] - memory[0]) / 2**20:,.0f} MiB above the level before it)"
    )
    print(f"stored: {alerts:,} alerts and {visits:,} stop visits")
    print(
        f"the same fixes read in one query (before): {(whole[1] - whole[0]) / 2**20:,.0f} MiB"
        " for the rows alone"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trucks", type=int, default=300)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--stops", type=int, default=80)
    parser.add_argument("--seed", type=int, default=42)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
