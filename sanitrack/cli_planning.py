"""The dispatcher's planning commands: plan a depot's day, and re-plan it when a road is
blocked, a truck breaks down or a customer calls; progress lines, then a summary table."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

import fleet
import planning
from sanitrack.app import database
from sanitrack.cli_billing import guarded_by
from sanitrack.settings import Settings


def _now(settings: Settings) -> dt.datetime:
    return dt.datetime.now(ZoneInfo(settings.customers.timezone))


def _say(text: str) -> None:
    print(f"  {text}", flush=True)


async def _plan(settings: Settings, args: argparse.Namespace) -> int:
    now = _now(settings)
    local_date = args.date or now.date()
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        print(f"planning {tenant.slug!r} for {local_date.isoformat()}", flush=True)
        result = await planning.plan_day(
            conn, tenant.id, local_date, settings.planning, now=now, depot_id=args.depot,
            time_limit_s=args.time_limit_s, engine_name=args.engine,
            created_by=f"cli by {getpass.getuser()}", by_area=args.by_area,
            balance=args.balance, say=_say,
        )  # fmt: skip
        if args.svg is not None:
            await _draw(conn, tenant.id, result, args.svg)
    _print_result(result)
    return 0


async def _replan(settings: Settings, args: argparse.Namespace) -> int:
    now = _now(settings)
    local_date = now.date()
    if args.blocked:
        lat, lon = args.blocked
        event = planning.Replan(
            planning.ReplanReason.ROAD_BLOCKED,
            block=planning.RoadBlock(lat, lon, args.radius_m, note=args.note),
        )
    elif args.breakdown is not None:
        event = planning.Replan(planning.ReplanReason.BREAKDOWN, vehicle_id=args.breakdown)
    else:
        event = planning.Replan(
            planning.ReplanReason.NEW_REQUEST, service_point_id=args.new_request
        )
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        result = await planning.replan(
            conn, tenant.id, local_date, event, settings.planning, now=now, depot_id=args.depot,
            created_by=f"cli by {getpass.getuser()}", say=_say,
        )  # fmt: skip
    _print_result(result)
    print("\nthe new routes are queued for the trucks' cmd topic", flush=True)
    return 0


async def _truck_service(settings: Settings, args: argparse.Namespace) -> int:
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        try:
            vehicle = await fleet.put_in_service(conn, tenant.id, args.vehicle_id, not args.out)
        except fleet.NotFound:
            raise fleet.NotFound(f"vehicle {args.vehicle_id} of {tenant.slug!r}") from None
    state = "in service: plans use it again" if vehicle.in_service else "out of service"
    print(f"{vehicle.code} is {state}", flush=True)
    return 0


async def _streets_import(settings: Settings, args: argparse.Namespace) -> int:
    from planning.osm import streets_from_geojson

    try:
        data = orjson.loads(await asyncio.to_thread(args.file.read_bytes))
    except (OSError, orjson.JSONDecodeError) as exc:
        raise planning.InvalidValue(f"file: {args.file} cannot be read as JSON: {exc}") from None
    found = streets_from_geojson(data)
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        saved = await planning.save_street_map(
            conn, tenant.id, found.streets, planning.StreetSource.OSM
        )
    print(
        f"{saved} streets saved for {tenant.slug!r} (the planner routes on them, the live map"
        f" draws them); {found.skipped} features were not drivable ways",
        flush=True,
    )
    return 0


async def _draw(conn: Any, tenant_id: int, result: planning.PlanResult, path: Path) -> None:
    from planning.drawing import plan_svg

    runs = [await planning.get_route_run(conn, tenant_id, run_id) for run_id in result.run_ids]
    streets = [street for _, street in await planning.street_rows(conn, tenant_id)]
    problem = result.problem
    unserved = [problem.coordinates[problem.jobs[u.job].location] for u in result.solution.unserved]
    title = f"Kế hoạch #{result.plan_id}: {problem.name}"
    await asyncio.to_thread(
        path.write_text, plan_svg(streets, runs, unserved, title), encoding="utf-8"
    )
    print(f"  the plan drawn in {path}", flush=True)


def _print_result(result: planning.PlanResult) -> None:
    print(f"\nplan #{result.plan_id}: {len(result.run_ids)} route runs\n", flush=True)
    print(result.summary.table(), flush=True)


# planning errors (a bad date, no depot, no feasible plan) print as one line
guard = guarded_by(planning.PlanningError, fleet.FleetError)


def add_planning_commands(commands: Any) -> None:
    plan = commands.add_parser("plan", help="plan a depot's collection routes for a day")
    plan.add_argument("--tenant", required=True, help="the company's slug")
    plan.add_argument("--date", type=dt.date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    plan.add_argument("--depot", type=int, default=None, help="the depot's geofence id")
    plan.add_argument("--time-limit-s", type=float, default=None)
    plan.add_argument("--engine", choices=["pyvrp", "ortools"], default=None)
    plan.add_argument(
        "--by-area", action="store_true", help="each truck takes whole areas (địa bàn), balanced"
    )
    plan.add_argument(
        "--balance", action="store_true", help="no truck's day much longer than the mean"
    )
    plan.add_argument("--svg", type=Path, default=None, help="draw the plan into this SVG file")
    plan.set_defaults(handler=guard(_plan))

    streets = commands.add_parser(
        "streets-import", help="load an OpenStreetMap extract (GeoJSON) as the street network"
    )
    streets.add_argument("file", type=Path, help="GeoJSON of OSM ways (osmium export)")
    streets.add_argument("--tenant", required=True)
    streets.set_defaults(handler=guard(_streets_import))

    replan = commands.add_parser("replan", help="re-plan today's remaining stops")
    replan.add_argument("--tenant", required=True)
    replan.add_argument("--depot", type=int, default=None)
    what = replan.add_mutually_exclusive_group(required=True)
    what.add_argument("--blocked", type=float, nargs=2, metavar=("LAT", "LON"))
    what.add_argument("--breakdown", type=int, metavar="VEHICLE_ID")
    what.add_argument("--new-request", type=int, metavar="SERVICE_POINT_ID")
    replan.add_argument("--radius-m", type=float, default=30.0, help="around --blocked")
    replan.add_argument("--note", default="")
    replan.set_defaults(handler=guard(_replan))

    service = commands.add_parser(
        "truck-service", help="put a truck back in service after a breakdown (or take it out)"
    )
    service.add_argument("vehicle_id", type=int, metavar="VEHICLE_ID")
    service.add_argument("--tenant", required=True)
    service.add_argument("--out", action="store_true", help="take it out of service instead")
    service.set_defaults(handler=guard(_truck_service))
