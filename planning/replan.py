"""Re-plan during the day: a road is blocked, a truck breaks down, a customer calls.

Stops already visited stay where they are (their visits stay on the old run, the proof of
service). The affected trucks' remaining stops are planned again from where each truck is
now, with what it carries, within seconds; the old runs are cancelled and the new ones,
each naming the run it replaces, go to the trucks' ``cmd`` topic and the live map.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import math
from dataclasses import dataclass, replace
from typing import Any

from psycopg import AsyncConnection

import alerts
import customers
import fleet
from geo.projection import LocalProjection
from planning.dataset import DayInput, problem_of, seconds_of
from planning.engine import SolveOptions
from planning.errors import InvalidValue, NotFound
from planning.models import RouteRun, RunSource, RunStatus, StopKind
from planning.network import MatrixProvider, StreetNetwork
from planning.planner import (
    PlanResult,
    Say,
    engine_named,
    matrix_provider,
    read_day,
    solve_in_thread,
    store_plan,
    unservable,
)
from planning.problem import Problem, Site, SiteKind, TimeWindow
from planning.service import list_route_runs
from planning.streets import street_rows
from planning.summary import summarize
from sanitrack.settings import PlanningSettings
from storage.positions import latest_positions


class ReplanReason(enum.StrEnum):
    ROAD_BLOCKED = "road_blocked"
    BREAKDOWN = "breakdown"
    NEW_REQUEST = "new_request"


@dataclass(frozen=True, slots=True)
class RoadBlock:
    lat: float
    lon: float
    radius_m: float
    note: str = ""
    ends_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Replan:
    reason: ReplanReason
    block: RoadBlock | None = None
    vehicle_id: int | None = None  # the truck that broke down
    service_point_id: int | None = None  # the new request's point


@dataclass(frozen=True, slots=True)
class _Truck:
    """An affected truck as it is now."""

    run: RouteRun
    lat: float
    lon: float
    load_kg: int
    done_seqs: frozenset[int]


async def replan(
    conn: AsyncConnection[Any],
    tenant_id: int,
    local_date: dt.date,
    event: Replan,
    settings: PlanningSettings,
    *,
    now: dt.datetime,
    depot_id: int | None = None,
    created_by: str = "",
    say: Say | None = None,
) -> PlanResult:
    tell = say or (lambda _: None)
    _check(event)
    if event.block is not None:
        await _record_block(conn, tenant_id, event.block, now)
    if (
        event.reason is ReplanReason.BREAKDOWN
        and event.vehicle_id is not None
        and not await fleet.set_in_service(conn, tenant_id, event.vehicle_id, False)
    ):
        raise NotFound(f"vehicle {event.vehicle_id}")
    await conn.commit()
    day = await read_day(conn, tenant_id, local_date, depot_id)
    runs = [
        run
        for run in await list_route_runs(conn, tenant_id, local_date)
        if run.source is RunSource.PLANNER
        and run.status in (RunStatus.PLANNED, RunStatus.ACTIVE)
        and run.stops
    ]
    if not runs:
        raise InvalidValue(f"date: no planned run of {local_date} is under way to re-plan")
    trucks = await _trucks_now(conn, tenant_id, runs, now)
    affected = _affected(trucks, event)
    if not affected and event.block is not None:
        raise InvalidValue(
            f"block: no planned run passes within {event.block.radius_m:.0f} m of it; the"
            " closure is recorded and later plans avoid it"
        )
    provider, matrix_kind = await matrix_provider(conn, tenant_id, settings, now)
    new_point = None
    if event.service_point_id is not None:
        due = {p.id: p for p in await customers.points_due(conn, tenant_id, local_date)}
        new_point = due.get(event.service_point_id)
        if new_point is None:
            raise InvalidValue(
                f"service_point_id: {event.service_point_id} is not an active point due today"
            )
    await conn.commit()
    tell(f"re-planning {len(affected)} of {len(trucks)} runs ({event.reason})")
    on_runs = {t.run.vehicle_id for t in trucks}
    # A spare truck at the depot can take over a broken one's stops, or a new request.
    spares = (
        [t for t in day.trucks if t.vehicle_id not in on_runs]
        if event.reason is not ReplanReason.ROAD_BLOCKED
        else []
    )
    problem, kept_day = _problem(day, affected, spares, new_point, provider, settings, now)
    hopeless = unservable(problem, provider)
    options = SolveOptions(
        time_limit_s=settings.replan_time_limit_s,
        skip_jobs=frozenset(u.job for u in hopeless),
    )
    solution = await solve_in_thread(problem, engine_named(settings.engine), options)
    solution = replace(solution, unserved=(*hopeless, *solution.unserved))
    summary = summarize(problem, solution)
    replaced = {t.run.vehicle_id: t.run.id for t in affected}
    plan_id, run_ids = await store_plan(
        conn,
        kept_day,
        problem,
        solution,
        provider,
        settings,
        summary=summary,
        matrix_kind=matrix_kind,
        time_limit_s=settings.replan_time_limit_s,
        created_by=created_by,
        reason=str(event.reason),
        replans_id=await _latest_plan(conn, tenant_id, local_date),
        note=event.block.note if event.block else "",
        replaces=replaced,
        cancels=[t.run.id for t in affected],
    )
    tell(f"plan #{plan_id}: {len(run_ids)} new runs replace {len(affected)}")
    return PlanResult(plan_id, run_ids, summary, problem, solution)


def _check(event: Replan) -> None:
    if event.reason is ReplanReason.ROAD_BLOCKED and event.block is None:
        raise InvalidValue("block: a road-blocked re-plan names where the road is blocked")
    if event.reason is ReplanReason.BREAKDOWN and event.vehicle_id is None:
        raise InvalidValue("vehicle_id: a breakdown re-plan names the truck")
    if event.reason is ReplanReason.NEW_REQUEST and event.service_point_id is None:
        raise InvalidValue("service_point_id: a new request names its service point")


async def _record_block(
    conn: AsyncConnection[Any], tenant_id: int, block: RoadBlock, now: dt.datetime
) -> None:
    rows = await street_rows(conn, tenant_id)
    network = StreetNetwork.from_streets([street for _, street in rows]) if rows else None
    near = network.streets_near(block.lat, block.lon, block.radius_m) if network else []
    if not near:
        raise InvalidValue(
            f"block: no street within {block.radius_m:.0f} m of ({block.lat}, {block.lon})"
        )
    await conn.execute(
        "INSERT INTO road_blocks (tenant_id, lat, lon, radius_m, street_map_ids, note,"
        " starts_at, ends_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            tenant_id,
            block.lat,
            block.lon,
            block.radius_m,
            [rows[n][0] for n in near],
            block.note[:500],
            now,
            block.ends_at,
        ),
    )


async def _trucks_now(
    conn: AsyncConnection[Any], tenant_id: int, runs: list[RouteRun], now: dt.datetime
) -> list[_Truck]:
    devices = {d.slug: d for d in await fleet.list_devices(conn, tenant_id)}
    where: dict[int, tuple[float, float]] = {}
    for fix in await latest_positions(conn, tenant_id):
        device = devices.get(fix["device"])
        if device and device.vehicle_id is not None and fix["time"] <= now:
            where[device.vehicle_id] = (fix["lat"], fix["lon"])
    trucks = []
    for run in runs:
        visits = await alerts.list_visits(conn, tenant_id, run.id)
        done = frozenset(v.stop_seq for v in visits)
        load = 0.0
        for stop in run.stops:  # what it carries: collected since its last unload
            if stop.seq in done:
                load = 0.0 if stop.kind is StopKind.UNLOAD else load + stop.demand_kg
        lat, lon = where.get(run.vehicle_id, (run.stops[0].lat, run.stops[0].lon))
        if not done and run.vehicle_id not in where:
            lat, lon = run.expected_path[0][1], run.expected_path[0][0]
        trucks.append(_Truck(run, lat, lon, math.ceil(load), done))
    return trucks


def _affected(trucks: list[_Truck], event: Replan) -> list[_Truck]:
    if event.reason is ReplanReason.ROAD_BLOCKED and event.block is not None:
        block = event.block
        return [t for t in trucks if path_near(t.run, block.lat, block.lon, block.radius_m)]
    return trucks  # a breakdown or a new request may move stops between any trucks


def path_near(run: RouteRun, lat: float, lon: float, radius_m: float) -> bool:
    projection = LocalProjection(lat, lon)
    points = [projection.to_xy(p_lat, p_lon) for p_lon, p_lat in run.expected_path]
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
        if math.hypot(ax + t * dx, ay + t * dy) <= radius_m:
            return True
    return False


def _problem(
    day: DayInput,
    affected: list[_Truck],
    spares: list[fleet.TruckShift],
    new_point: customers.DuePoint | None,
    provider: MatrixProvider,
    settings: PlanningSettings,
    now: dt.datetime,
) -> tuple[Problem, DayInput]:
    """The remaining stops of the affected trucks (and the new request), each truck starting
    where it is now (the plan's sites with one start site per truck); spare trucks start
    from the depot."""
    remaining = {
        stop.service_point_id
        for t in affected
        for stop in t.run.stops
        if stop.kind is StopKind.COLLECT and stop.seq not in t.done_seqs
    }
    if new_point is not None:
        remaining.add(new_point.id)
    in_service = {t.vehicle_id: t for t in day.trucks}
    movers = [t for t in affected if t.run.vehicle_id in in_service]
    if not movers and not spares:
        raise InvalidValue("vehicles: no truck in service is left to take the stops")
    kept = replace(
        day,
        points=tuple(p for p in day.points if p.id in remaining),
        trucks=(*(in_service[t.run.vehicle_id] for t in movers), *spares),
    )
    # Each truck starts from where it is: extra matrix rows after the plan's own.
    starts = [(t.lat, t.lon) for t in movers]
    base = problem_of(kept, provider, settings, extra_points=starts)
    first = len(base.coordinates) - len(starts)
    sites = list(base.sites)
    now_s = seconds_of(day.local_date, now)
    vehicles = [
        replace(
            vehicle,
            shift=TimeWindow(max(now_s, vehicle.shift.start_s), max(now_s, vehicle.shift.end_s)),
        )
        for vehicle in base.vehicles[len(movers) :]
    ]
    for n, truck in enumerate(movers):
        sites.append(Site(f"{truck.run.name} now", first + n, SiteKind.DEPOT))
        vehicle = base.vehicles[n]
        vehicles.insert(
            n,
            replace(
                vehicle,
                start_site=len(sites) - 1,
                shift=TimeWindow(
                    max(now_s, vehicle.shift.start_s), max(now_s, vehicle.shift.end_s)
                ),
                # what it carries now: weight from the stops served since its last unload
                initial_load=(truck.load_kg, *([0] * (len(vehicle.capacity) - 1))),
            ),
        )
    problem = replace(
        base,
        name=f"{base.name} re-plan",
        sites=tuple(sites),
        vehicles=tuple(vehicles),
    )
    return problem, kept


async def _latest_plan(
    conn: AsyncConnection[Any], tenant_id: int, local_date: dt.date
) -> int | None:
    cursor = await conn.execute(
        "SELECT max(id) FROM plans WHERE tenant_id = %s AND local_date = %s",
        (tenant_id, local_date),
    )
    row = await cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])
