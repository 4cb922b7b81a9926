"""Plan a depot's day: read it, find the stops nobody can serve, solve, store the routes.

``plan_day`` is what `sanitrack plan` and ``POST /api/v1/plans`` call. The solver runs in a
worker thread (it is CPU-bound for its whole time limit); the database work around it is
two short transactions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

import customers
import fleet
from planning.assignment import solve_balanced, solve_by_area
from planning.commands import queue_route_commands
from planning.dataset import DUMP_KINDS, DayInput, choose_depot, problem_of, trucks_of
from planning.diagnosis import hopeless_jobs
from planning.engine import Engine, SolveOptions
from planning.errors import InvalidValue
from planning.models import RunSource
from planning.network import MatrixProvider, StraightLine, StreetNetwork
from planning.problem import Problem, Solution, Unserved, UnservedReason
from planning.run_builder import crews_of, runs_of
from planning.service import (
    cancel_planned_runs,
    cancel_runs,
    create_route_run,
    get_route_run,
)
from planning.streets import street_rows
from planning.summary import PlanSummary, summarize
from sanitrack.settings import PlanningSettings

# (stage, detail) as planning goes: "reading", "matrix", "solving" (with the best cost so far),
# "storing"
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan_id: int
    run_ids: tuple[int, ...]
    summary: PlanSummary
    problem: Problem  # what was solved, for the feasibility checker and the tests
    solution: Solution


def engine_named(name: str) -> Engine:
    if name == "ortools":
        from planning.engine_ortools import OrToolsEngine

        return OrToolsEngine()
    from planning.engine_pyvrp import PyVrpEngine

    return PyVrpEngine()


async def read_day(
    conn: AsyncConnection[Any], tenant_id: int, local_date: dt.date, depot_id: int | None
) -> DayInput:
    geofences = await fleet.list_geofences(conn, tenant_id)
    depot = choose_depot(geofences, depot_id)
    return DayInput(
        tenant_id=tenant_id,
        local_date=local_date,
        depot=depot,
        dumps=tuple(g for g in geofences if g.kind in DUMP_KINDS),
        points=tuple(await customers.points_due(conn, tenant_id, local_date)),
        trucks=tuple(trucks_of(await fleet.trucks_in_service(conn, tenant_id), depot.id)),
    )


async def matrix_provider(
    conn: AsyncConnection[Any], tenant_id: int, settings: PlanningSettings, at: dt.datetime
) -> tuple[MatrixProvider, str]:
    """The streets when the company has a street map (less the roads blocked at ``at``),
    straight lines with a circuity factor otherwise; and which it is."""
    rows = await street_rows(conn, tenant_id)
    if not rows:
        provider = StraightLine(
            circuity=settings.circuity, speed_kmh=settings.straight_line_speed_kmh
        )
        return provider, "straight_line"
    index_of = {street_id: n for n, (street_id, _) in enumerate(rows)}
    cursor = await conn.execute(
        "SELECT street_map_ids FROM road_blocks WHERE tenant_id = %s AND starts_at <= %s"
        " AND (ends_at IS NULL OR ends_at > %s)",
        (tenant_id, at, at),
    )
    blocked = frozenset(
        index_of[street_id]
        for (ids,) in await cursor.fetchall()
        for street_id in ids
        if street_id in index_of
    )
    network = StreetNetwork.from_streets(
        [street for _, street in rows], speed_factor=settings.street_speed_factor, blocked=blocked
    )
    return network, "streets"


def unservable(problem: Problem, provider: MatrixProvider) -> list[Unserved]:
    """Stops no truck can serve, each with its reason: no open road first (their travel
    times are only a penalty figure), then what ``planning.diagnosis`` finds."""
    cut_off: set[int] = set()
    if isinstance(provider, StreetNetwork):
        cut_off = set(provider.unreachable(list(problem.coordinates)))
    by_road = [
        Unserved(n, UnservedReason.UNREACHABLE_BY_ROAD, "no open road to or from the depot")
        for n, job in enumerate(problem.jobs)
        if job.location in cut_off
    ]
    blocked = {u.job for u in by_road}
    return by_road + [u for u in hopeless_jobs(problem) if u.job not in blocked]


async def solve_in_thread(problem: Problem, engine: Engine, options: SolveOptions) -> Solution:
    return await asyncio.to_thread(engine.solve, problem, options)


async def plan_day(
    conn: AsyncConnection[Any],
    tenant_id: int,
    local_date: dt.date,
    settings: PlanningSettings,
    *,
    now: dt.datetime,
    depot_id: int | None = None,
    time_limit_s: float | None = None,
    engine_name: str | None = None,
    created_by: str = "",
    by_area: bool = False,
    balance: bool = False,
    say: Say | None = None,
) -> PlanResult:
    """Plan the date for one depot; the depot's earlier planner runs that have not started
    are cancelled by the new plan (in the same transaction as the new runs). ``by_area``:
    each truck takes whole areas (địa bàn), workloads balanced; ``balance``: no truck's day
    much longer than the mean (both in ``planning.assignment``)."""
    tell = say or (lambda _: None)
    day = await read_day(conn, tenant_id, local_date, depot_id)
    await conn.commit()
    if not day.points:
        raise InvalidValue(f"date: no service point is due on {local_date}")
    tell(f"{len(day.points)} stops due, {len(day.trucks)} trucks at {day.depot.name}")
    provider, matrix_kind = await matrix_provider(conn, tenant_id, settings, now)
    await conn.commit()
    started = time.monotonic()
    problem = await asyncio.to_thread(problem_of, day, provider, settings)
    tell(f"travel times ({matrix_kind}): {time.monotonic() - started:.1f} s")
    hopeless = unservable(problem, provider)
    engine = engine_named(engine_name or settings.engine)
    limit = time_limit_s or settings.time_limit_s

    def progress(elapsed_s: float, best: int | None) -> None:
        cost = f"best cost {best:,}" if best is not None else "no plan yet"
        tell(f"solving: {elapsed_s:5.1f}/{limit:.0f} s, {cost}")

    options = SolveOptions(
        time_limit_s=limit,
        progress=progress,
        skip_jobs=frozenset(u.job for u in hopeless),
    )
    if by_area:
        solution = await asyncio.to_thread(solve_by_area, problem, engine, options)
    elif balance:
        solution = await asyncio.to_thread(solve_balanced, problem, engine, options)
    else:
        solution = await solve_in_thread(problem, engine, options)
    solution = replace(solution, unserved=(*hopeless, *solution.unserved))
    summary = summarize(problem, solution)
    tell("storing the plan")
    plan_id, run_ids = await store_plan(
        conn,
        day,
        problem,
        solution,
        provider,
        settings,
        summary=summary,
        matrix_kind=matrix_kind,
        time_limit_s=limit,
        created_by=created_by,
    )
    return PlanResult(plan_id, run_ids, summary, problem, solution)


async def store_plan(
    conn: AsyncConnection[Any],
    day: DayInput,
    problem: Problem,
    solution: Solution,
    provider: MatrixProvider,
    settings: PlanningSettings,
    *,
    summary: PlanSummary,
    matrix_kind: str,
    time_limit_s: float,
    created_by: str,
    reason: str = "plan",
    replans_id: int | None = None,
    note: str = "",
    replaces: dict[int, int] | None = None,
    cancels: Sequence[int] = (),
) -> tuple[int, tuple[int, ...]]:
    """Store the plan, its runs and unserved stops, and queue the runs for the trucks;
    ``replaces``: vehicle id -> the run a re-plan's new run replaces."""
    crews = crews_of(problem, solution.routes, day)
    names = {p.code: p.name for p in day.points}
    async with conn.transaction():
        cursor = await conn.execute(
            "INSERT INTO plans (tenant_id, local_date, depot_geofence_id, reason, replans_id,"
            " engine, time_limit_s, runtime_s, matrix, summary, note, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                day.tenant_id,
                day.local_date,
                day.depot.id,
                reason,
                replans_id,
                solution.engine,
                time_limit_s,
                solution.runtime_s,
                matrix_kind,
                Jsonb(summary.as_json()),
                note[:500],
                created_by[:200],
            ),
        )
        row = await cursor.fetchone()
        assert row is not None
        plan_id = int(row[0])
        if cancels:  # a re-plan's old runs stop being tracked as its new ones start
            await cancel_runs(conn, day.tenant_id, cancels)
        if reason == "plan":
            # A new plan of the depot's day replaces its runs that have not started.
            await cancel_planned_runs(
                conn,
                day.tenant_id,
                day.local_date,
                RunSource.PLANNER,
                depot_geofence_id=day.depot.id,
            )
        runs = runs_of(
            problem,
            solution.routes,
            day,
            provider,
            settings,
            name_suffix=f"#{plan_id}",
            crews=crews,
        )
        run_ids = []
        for run in runs:
            run_id = await create_route_run(conn, day.tenant_id, run)
            run_ids.append(run_id)
        await conn.execute(
            "UPDATE route_runs SET plan_id = %s,"
            " replaces_run_id = (%s::jsonb ->> vehicle_id::text)::bigint WHERE id = ANY(%s)",
            (plan_id, Jsonb({str(k): v for k, v in (replaces or {}).items()}), run_ids),
        )
        await _queue_commands(conn, day.tenant_id, run_ids, replaces or {})
        async with conn.cursor() as many:
            await many.executemany(
                "INSERT INTO plan_unserved (plan_id, service_point_id, code, name, reason,"
                " detail) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (
                        plan_id,
                        problem.jobs[u.job].service_point_id,
                        problem.jobs[u.job].key,
                        names.get(problem.jobs[u.job].key, ""),
                        str(u.reason),
                        u.detail,
                    )
                    for u in solution.unserved
                ],
            )
    return plan_id, tuple(run_ids)


async def _queue_commands(
    conn: AsyncConnection[Any], tenant_id: int, run_ids: list[int], replaces: dict[int, int]
) -> None:
    tenant = await fleet.get_tenant_by_id(conn, tenant_id)
    devices: dict[int, list[tuple[int, str]]] = {}
    for device in await fleet.list_devices(conn, tenant_id):
        if (
            device.vehicle_id is not None
            and device.kind is fleet.DeviceKind.TRUCK
            and device.active
        ):
            devices.setdefault(device.vehicle_id, []).append((device.id, device.slug))
    runs = [await get_route_run(conn, tenant_id, run_id) for run_id in run_ids]
    await queue_route_commands(
        conn, tenant.slug, [(run, replaces.get(run.vehicle_id)) for run in runs], devices
    )
