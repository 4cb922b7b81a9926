"""The whole system under simulated load: how many devices at a 5 s interval it sustains.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.load [--broker both] [--step-s 60] [--quick] [--out r.json]

Per broker (the machine's Mosquitto on 127.0.0.1:1883, the embedded amqtt broker in a
process of its own), in a fresh database ``sanitrack_bench_<random>``:

1. A scenario of the largest step's size is built (80 % trucks on their route runs, 20 %
   phones walking their areas; no faults) and its devices are registered through the
   services. Every device has its own login.
2. The ramp: the ingest runs (``sanitrack ingest``); for each device count a simulator
   process plays the scenario in real time for --step-s seconds. Each fix's ``ts`` is the
   moment it is due to be sent (``live_start``), so publish->commit latency is measured from
   the scheduled send; if the simulator lags, that lag counts against the system. A
   side connection records ``(clock_timestamp(), pg_current_snapshot())`` every 20 ms, so a
   row's commit time is known to 20 ms (see bench/ingest.py). A step passes when nothing is
   lost (every position message acknowledged by the broker is a row), p99 <= 1 s, and the
   simulator really sent >= 95 % of the messages due. The ramp stops at the first failure.
3. The simulator's own ceiling, after the ramp with the ingest stopped: one simulator
   process publishes the largest step's devices as fast as the broker acknowledges.

Connections: this machine caps open files at 20,000 per process (hard limit; root cannot
raise it here), for Mosquitto and for the simulator alike. Above --max-sessions devices
(default 18,000) devices share sessions, device i publishing through session
i % max_sessions, as trackers behind a gateway do. The report says how many sessions
each step used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import multiprocessing.queues
import os
import queue
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.children import SPAWN, child
from bench.ingest import (
    CommitProbe,
    Endpoint,
    Latency,
    ResourceSampler,
    Usage,
    bench_database,
    embedded_broker_process,
    ingest_process,
    mosquitto,
    mosquitto_reachable,
)
from simulator import ScenarioConfig, TruthLog, build_scenario, fault_rates, play
from simulator.register import register_scenario
from simulator.wire import DeviceSession, InflightFull
from storage import open_pool

INTERVAL_S = 5.0
MAX_P99_S = 1.0
DRAIN_STALL_S = 10.0
WARM_UP_S = 10.0
STEPS = {
    "mosquitto": (10_000, 20_000, 30_000, 40_000, 50_000, 60_000),
    "embedded": (1_000, 2_500, 5_000, 10_000, 20_000),
}


@dataclass(frozen=True, slots=True)
class Job:
    """What one simulator process plays."""

    config: dict[str, Any]
    devices: int
    secrets: dict[str, str]
    host: str
    port: int
    duration_s: float
    max_sessions: int
    speedup: float | None


@dataclass(frozen=True, slots=True)
class Played:
    published: int  # while playing: position and event messages, not the connect-time status
    position_messages: int
    acked: int
    sessions: int
    wall_s: float
    start_epoch_s: float
    error: str | None = None

    @property
    def rate_msg_s(self) -> float:
        return self.published / self.wall_s if self.wall_s else 0.0

    @property
    def position_rate_msg_s(self) -> float:
        return self.position_messages / self.wall_s if self.wall_s else 0.0


@dataclass(frozen=True, slots=True)
class Step:
    broker: str
    devices: int
    sessions: int
    due_msg_s: float
    sent_msg_s: float
    rows: int
    loss: int
    latency: Latency | None
    latency_warm: Latency | None  # without the first WARM_UP_S (the ingest meets new devices)
    usage: dict[str, Usage]
    verdict: str


def simulator_worker(job: Job, results: multiprocessing.queues.Queue[Played]) -> None:
    """Process entry: build the scenario, keep the first ``job.devices``, play them."""
    try:
        results.put(asyncio.run(_play(job)))
    except Exception as exc:
        results.put(Played(0, 0, 0, 0, 0.0, 0.0, error=repr(exc)))


async def _play(job: Job) -> Played:
    config = ScenarioConfig(**job.config)
    scenario = build_scenario(config, dt.datetime.now(dt.UTC), job.duration_s)
    phones = job.devices // 5  # four trucks to a phone at every step, as in the whole scenario
    trucks = scenario.scripts[: config.vehicles][: job.devices - phones]
    scenario = dataclasses.replace(
        scenario, scripts=trucks + scenario.scripts[config.vehicles :][:phones]
    )
    truth = TruthLog(scenario.start)
    stats = await play(
        scenario,
        job.secrets,
        job.host,
        job.port,
        truth,
        speedup=job.speedup,
        say=lambda text: print(f"      {text}", flush=True),
        progress_s=15.0,
        max_sessions=job.max_sessions,
        live_start=job.speedup is not None,
    )
    return Played(
        stats.played,
        stats.position_messages,
        stats.acked,
        len(stats.sessions),
        stats.wall_s,
        stats.began_epoch_s,
    )


async def run_simulator(job: Job, sampler: ResourceSampler) -> Played:
    results: multiprocessing.queues.Queue[Played] = SPAWN.Queue()
    process = child(simulator_worker, (job, results), "simulator")
    process.start()
    sampler.watch("simulator", process.pid)
    try:
        while True:
            with contextlib.suppress(queue.Empty):
                return await asyncio.to_thread(results.get, True, 1.0)
            if not process.is_alive():
                return Played(0, 0, 0, 0, 0.0, 0.0, error=f"exit code {process.exitcode}")
    finally:
        await asyncio.to_thread(process.join, 30)


def scenario_config(devices: int, tenant: str) -> dict[str, Any]:
    phones = devices // 5
    return ScenarioConfig(
        seed=42,
        vehicles=devices - phones,
        phones=phones,
        interval_s=INTERVAL_S,
        phone_interval_s=INTERVAL_S,
        # OwnTracks stamps whole seconds, which would add up to 1 s to the measured latency
        owntracks_share=0.0,
        stops_per_run=30,
        tenant=tenant,
        faults=fault_rates("none"),
    ).model_dump()


def device_order(config: dict[str, Any], devices: int) -> int:
    """How many devices a step of ``devices`` really plays."""
    return min(devices, int(config["vehicles"]) + int(config["phones"]))


async def rows_since(conn: psycopg.AsyncConnection[Any], since_epoch_s: float) -> int:
    cursor = await conn.execute(
        "SELECT count(*) FROM positions WHERE time >= to_timestamp(%s)", (since_epoch_s - 1,)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def drained(conn: psycopg.AsyncConnection[Any], since_epoch_s: float, expected: int) -> int:
    rows, changed = -1, time.monotonic()
    while True:
        now_rows = await rows_since(conn, since_epoch_s)
        if now_rows >= expected:
            return now_rows
        if now_rows != rows:
            rows, changed = now_rows, time.monotonic()
        elif time.monotonic() - changed > DRAIN_STALL_S:
            return rows
        await asyncio.sleep(0.5)


async def latency_since(
    conn: psycopg.AsyncConnection[Any], probe: CommitProbe, since_epoch_s: float
) -> Latency | None:
    """Commit time minus the fix's ts (the moment it was due to be sent), for every row
    from ``since_epoch_s`` on."""
    await probe.poll()
    cursor = await conn.execute(
        "SELECT xmin::text::bigint, extract(epoch FROM time)::float8 FROM positions"
        " WHERE time >= to_timestamp(%s)",
        (since_epoch_s - 1,),
    )
    rows = await cursor.fetchall()
    commits = {xid: probe.commit_time_s(xid) for xid in {xid for xid, _ in rows}}
    latencies_s = sorted(commit - ts for xid, ts in rows if (commit := commits[xid]) is not None)
    if len(latencies_s) < 2:
        return None
    cuts = statistics.quantiles(latencies_s, n=100, method="inclusive")
    return Latency(cuts[49] * 1000, cuts[98] * 1000, latencies_s[-1] * 1000)


def say(text: str) -> None:
    print(text, flush=True)


async def bench_broker(name: str, args: argparse.Namespace) -> dict[str, Any]:
    steps = args.steps or (STEPS[name][:2] if args.quick else STEPS[name])
    top = max(steps)
    async with bench_database() as url, contextlib.AsyncExitStack() as stack:
        endpoint: Endpoint = await stack.enter_async_context(
            mosquitto() if name == "mosquitto" else embedded_broker_process(url)
        )
        tenant = f"load-{os.getpid() % 100000}"
        config = scenario_config(top, tenant)
        say(f"[{name}] building and registering {top:,} devices ...")
        began = time.monotonic()
        scenario = build_scenario(ScenarioConfig(**config), dt.datetime.now(dt.UTC), 60.0)
        async with open_pool(url, min_size=1, max_size=2) as pool:
            registered = await register_scenario(
                pool, scenario, route_runs=False, progress=lambda t: say(f"    {t}")
            )
        say(f"[{name}] registered in {time.monotonic() - began:.0f} s")
        sampler = ResourceSampler(url.rsplit("/", 1)[1])
        sampler.watch("broker", endpoint.broker_pid)
        sample_task = asyncio.create_task(sampler.run(), name="sampler")
        stack.callback(sample_task.cancel)

        def job(devices: int, duration_s: float, speedup: float | None) -> Job:
            return Job(
                config,
                device_order(config, devices),
                registered.secrets,
                endpoint.host,
                endpoint.port,
                duration_s,
                args.max_sessions,
                speedup,
            )

        results = await ramp(name, steps, url, endpoint, config, job, sampler, args)
        # after the ramp, with the ingest stopped: a broker that has not met the ramp yet
        # would answer faster than it does later
        say(f"[{name}] simulator ceiling: {top:,} devices, no ingest, as fast as acked")
        ceiling = await run_simulator(job(top, args.ceiling_sim_s, None), sampler)
        ceiling_usage = sampler.usage(
            "simulator", ceiling.start_epoch_s, ceiling.start_epoch_s + ceiling.wall_s
        )
        say(
            f"[{name}] simulator ceiling: {ceiling.rate_msg_s:,.0f} msg/s through"
            f" {ceiling.sessions:,} sessions ({ceiling_usage}) {ceiling.error or ''}"
        )

        if name == "mosquitto":
            await forget_retained_status(
                endpoint, [script.status_topic for script in scenario.scripts]
            )
        passed = [s for s in results if s.verdict == "ok"]
        return {
            "broker": name,
            "simulator_ceiling_msg_s": round(ceiling.rate_msg_s),
            "simulator_ceiling_sessions": ceiling.sessions,
            "simulator_ceiling_usage": str(ceiling_usage),
            "max_sustained_devices": max((s.devices for s in passed), default=0),
            "steps": [dataclasses.asdict(s) for s in results],
        }


async def ramp(
    name: str,
    steps: Sequence[int],
    url: str,
    endpoint: Endpoint,
    config: dict[str, Any],
    job: Callable[[int, float, float | None], Job],
    sampler: ResourceSampler,
    args: argparse.Namespace,
) -> list[Step]:
    """Climb the device counts with the ingest running; stop at the first failing step."""
    results: list[Step] = []
    async with contextlib.AsyncExitStack() as stack:
        ingest = await stack.enter_async_context(ingest_process(url, endpoint, Path(args.work)))
        sampler.watch("ingest", ingest.process.pid)
        probe = CommitProbe(url)
        probe_task = asyncio.create_task(probe.run(), name="probe")
        stack.callback(probe_task.cancel)
        conn = await stack.enter_async_context(
            await psycopg.AsyncConnection.connect(url, autocommit=True)
        )
        for devices in steps:
            say(f"[{name}] step: {devices:,} devices at {INTERVAL_S:.0f} s for {args.step_s:.0f} s")
            played = await run_simulator(job(devices, args.step_s, 1.0), sampler)
            if played.error:
                say(f"    simulator failed: {played.error}")
                break
            rows = await drained(conn, played.start_epoch_s, played.position_messages)
            latency = await latency_since(conn, probe, played.start_epoch_s)
            warm = await latency_since(conn, probe, played.start_epoch_s + WARM_UP_S)
            due = device_order(config, devices) / INTERVAL_S
            # while playing: not the simulator's build and connect, nor the drain
            play_end_s = played.start_epoch_s + played.wall_s
            usage = {
                group: sampler.usage(group, played.start_epoch_s, play_end_s)
                for group in ("simulator", "broker", "ingest", "postgres")
            }
            loss = played.position_messages - rows
            sent_share = played.position_rate_msg_s / due if due else 0.0
            verdict = "ok"
            if loss > 0:
                verdict = f"LOSS {loss}"
            elif latency is None or latency.p99_ms > MAX_P99_S * 1000:
                verdict = "p99 > 1 s"
            elif sent_share < 0.95:
                verdict = f"simulator sent only {sent_share:.0%} of the due rate"
            step = Step(
                name,
                devices,
                played.sessions,
                due,
                played.position_rate_msg_s,
                rows,
                loss,
                latency,
                warm,
                usage,
                verdict,
            )
            results.append(step)
            say(format_step(step))
            if verdict != "ok":
                break
    return results


async def forget_retained_status(endpoint: Endpoint, topics: list[str]) -> None:
    """The devices' retained online/offline messages would outlive the benchmark's tenant in
    the machine's Mosquitto (it persists them): an empty retained message deletes each."""
    session = DeviceSession(f"bench-load-cleanup-{os.getpid()}", None, None)
    await session.connect(endpoint.host, endpoint.port)
    for topic in topics:
        while True:
            try:
                session.publish(topic, b"", qos=1, retain=True)
                break
            except InflightFull:
                await asyncio.sleep(0.01)
    await session.wait_acked(60.0)
    await session.disconnect()
    say(f"    cleared {len(topics):,} retained status messages")


def format_step(step: Step) -> str:
    latency = (
        f"p50 {step.latency.p50_ms:5.0f} ms  p99 {step.latency.p99_ms:5.0f} ms"
        if step.latency
        else "no latency"
    )
    if step.latency_warm:
        latency += f" (after {WARM_UP_S:.0f} s: p99 {step.latency_warm.p99_ms:.0f} ms)"
    usage = "  ".join(f"{g} {u}" for g, u in step.usage.items())
    return (
        f"    {step.devices:>6,} devices ({step.sessions:,} sessions): due {step.due_msg_s:,.0f}"
        f" fixes/s, sent {step.sent_msg_s:,.0f}/s, rows {step.rows:,}, loss {step.loss}, {latency}"
        f"  -> {step.verdict}\n      {usage}"
    )


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--broker", choices=("mosquitto", "embedded", "both"), default="both")
    parser.add_argument("--step-s", type=float, default=60.0)
    parser.add_argument(
        "--ceiling-sim-s", type=float, default=30.0, help="scenario seconds the ceiling run plays"
    )
    parser.add_argument("--max-sessions", type=int, default=18_000)
    parser.add_argument("--quick", action="store_true", help="two small steps per broker")
    parser.add_argument(
        "--steps",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=None,
        help="device counts to climb, e.g. 20000,25000,30000",
    )
    parser.add_argument("--work", default="/tmp", help="where the ingest's log goes")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    brokers = ["mosquitto", "embedded"] if args.broker == "both" else [args.broker]
    reports = []
    for name in brokers:
        if name == "mosquitto" and not mosquitto_reachable():
            say("mosquitto: nothing on 127.0.0.1:1883, skipped")
            continue
        reports.append(await bench_broker(name, args))
    say("\nsummary")
    for report in reports:
        say(
            f"  {report['broker']:>9}: max sustained {report['max_sustained_devices']:,} devices"
            f" at {INTERVAL_S:.0f} s; simulator ceiling {report['simulator_ceiling_msg_s']:,}"
            f" msg/s ({report['simulator_ceiling_usage']})"
        )
    if args.out:
        args.out.write_text(json.dumps(reports, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
