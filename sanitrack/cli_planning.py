"""The dispatcher's planning commands: plan a depot's day, and re-plan it when a road is
blocked, a truck breaks down or a customer calls; progress lines, then a summary table."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import fleet
import planning
from sanitrack.app import database
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
            created_by=f"cli by {getpass.getuser()}", say=_say,
        )  # fmt: skip
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


def _print_result(result: planning.PlanResult) -> None:
    print(f"\nplan #{result.plan_id}: {len(result.run_ids)} route runs\n", flush=True)
    print(result.summary.table(), flush=True)


def add_planning_commands(commands: Any) -> None:
    plan = commands.add_parser("plan", help="plan a depot's collection routes for a day")
    plan.add_argument("--tenant", required=True, help="the company's slug")
    plan.add_argument("--date", type=dt.date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    plan.add_argument("--depot", type=int, default=None, help="the depot's geofence id")
    plan.add_argument("--time-limit-s", type=float, default=None)
    plan.add_argument("--engine", choices=["pyvrp", "ortools"], default=None)
    plan.set_defaults(handler=guard(_plan))

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


def guard(handler: Callable[[Settings, argparse.Namespace], Any]) -> Callable[..., Any]:
    async def guarded(settings: Settings, args: argparse.Namespace) -> int:
        try:
            result: int = await handler(settings, args)
        except planning.PlanningError as exc:
            print(f"sanitrack: {exc}", file=sys.stderr)
            return 1
        return result

    return guarded
