"""The planner on the demo's city: a whole day planned each way, against the simulator's own
runs, and re-planning during the day.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.city_plan [--vehicles 30] [--time-limit-s 60] [--keep]

It creates a scratch database on the server of SANITRACK_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test), registers the simulator's city of seed 42 (2,400
service points with the default 30 trucks, streets, depot, transfer station and landfill)
and the demo office's areas (its wards), then prints:

* the simulator's own runs (compact areas, nearest-neighbour order): km and hours;
* a plan of the next Monday with the default settings, with ``balance``, and ``by_area``:
  trucks used, stops served, km, hours, longest and shortest day, solver and wall time;
* re-planning at 05:20 after a road is blocked on one run's path, and after a breakdown:
  wall time, solver time, stops and runs re-planned.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import time
from typing import Any

import fleet
import planning
from bench.customers import bench_database
from sanitrack.demo_office import prepare_office
from sanitrack.settings import CustomersSettings, PlanningSettings
from simulator import ScenarioConfig, build_scenario, register_scenario
from storage import open_pool

LOCAL = dt.timezone(dt.timedelta(hours=7))
DAY = dt.date(2026, 12, 7)  # a Monday
BEFORE_SHIFT = dt.datetime(2026, 12, 6, 20, 0, tzinfo=LOCAL)
REPLAN_AT = dt.datetime(2026, 12, 7, 5, 20, tzinfo=LOCAL)


def _say(text: str) -> None:
    print(f"  {text}", flush=True)


def _row(name: str, summary: planning.PlanSummary, wall_s: float) -> str:
    return (
        f"  {name:<24} {summary.vehicles_used:>6} {summary.served:>6}/{summary.stops:<6}"
        f" {summary.distance_m / 1000:>8.1f} {summary.duration_s / 3600:>7.1f}"
        f" {summary.longest_s / 3600:>6.2f}/{summary.shortest_s / 3600:<5.2f}"
        f" {summary.runtime_s:>7.1f} {wall_s:>7.1f}"
    )


async def run(args: argparse.Namespace) -> None:
    config = ScenarioConfig(seed=42, vehicles=args.vehicles, phones=2 * args.vehicles)
    start = dt.datetime.combine(DAY, dt.time(5), tzinfo=LOCAL)
    scenario = await asyncio.to_thread(build_scenario, config, start, 3600)
    km = sum(plan.path_length_m for plan in scenario.plans) / 1000
    hours = sum(plan.planned_end_s - plan.planned_start_s for plan in scenario.plans) / 3600
    print(f"the simulator's own runs: {len(scenario.plans)} trucks, {km:.1f} km, {hours:.1f} h")
    settings = PlanningSettings(time_limit_s=args.time_limit_s)
    async with bench_database(args.server_url, args.keep) as url, open_pool(url) as pool:
        registered = await register_scenario(pool, scenario, route_runs=False, progress=_say)
        await prepare_office(pool, config.tenant, start, CustomersSettings())
        print(
            f"\n  {'plan':<24} {'trucks':>6} {'stops served':>13} {'km':>8} {'hours':>7}"
            f" {'long/short h':>12} {'solver':>7} {'wall s':>7}"
        )
        async with pool.connection() as conn:
            # (name, balance, by_area); the last plan is the one the re-plans start from
            modes = (
                ("default", False, False),
                ("balance", True, False),
                ("by area", False, True),
                ("default (kept)", False, False),
            )
            for name, balance, by_area in modes:
                began = time.monotonic()
                result = await planning.plan_day(
                    conn, registered.tenant_id, DAY, settings, now=BEFORE_SHIFT,
                    balance=balance, by_area=by_area,
                )  # fmt: skip
                print(_row(name, result.summary, time.monotonic() - began), flush=True)
            await _replans(conn, registered.tenant_id, settings)


async def _replans(conn: Any, tenant_id: int, settings: PlanningSettings) -> None:
    runs = [
        run
        for run in await planning.list_route_runs(conn, tenant_id, DAY)
        if run.status is planning.RunStatus.PLANNED
    ]
    lon, lat = runs[0].expected_path[len(runs[0].expected_path) // 2]
    events = (
        planning.Replan(
            planning.ReplanReason.ROAD_BLOCKED, block=planning.RoadBlock(lat, lon, 20.0, "bench")
        ),
        planning.Replan(planning.ReplanReason.BREAKDOWN, vehicle_id=runs[1].vehicle_id),
    )
    print()
    for event in events:
        began = time.monotonic()
        result = await planning.replan(conn, tenant_id, DAY, event, settings, now=REPLAN_AT)
        summary = result.summary
        print(
            f"  re-plan after {event.reason}: {time.monotonic() - began:.1f} s wall, solver"
            f" {summary.runtime_s:.1f} s (limit {settings.replan_time_limit_s:.0f} s),"
            f" {len(result.run_ids)} runs, {summary.served}/{summary.stops} stops,"
            f" unserved {sum(summary.unserved.values())}",
            flush=True,
        )
    await fleet.set_in_service(conn, tenant_id, runs[1].vehicle_id, True)
    await conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=30)
    parser.add_argument("--time-limit-s", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the database (to explain)")
    parser.add_argument(
        "--server-url",
        default=os.environ.get(
            "SANITRACK_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
