"""Plans as the office reads them back: the summary, the stops left unserved and why, and
each person's task list for the day (the runs they are crew of)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from planning.errors import NotFound


@dataclass(frozen=True, slots=True)
class UnservedStop:
    service_point_id: int
    code: str
    name: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class PlanRecord:
    id: int
    local_date: dt.date
    depot_geofence_id: int
    reason: str
    replans_id: int | None
    engine: str
    time_limit_s: float
    runtime_s: float
    matrix: str
    summary: dict[str, Any]
    note: str
    created_by: str
    created_at: dt.datetime
    run_ids: tuple[int, ...]
    unserved: tuple[UnservedStop, ...]


@dataclass(frozen=True, slots=True)
class Task:
    """One person's part in one run: drive it, or collect along it."""

    staff_id: int
    role: str
    route_run_id: int
    run_name: str
    vehicle_id: int
    status: str
    stops: int
    planned_start: dt.datetime
    planned_end: dt.datetime


_COLUMNS = (
    "id, local_date, depot_geofence_id, reason, replans_id, engine, time_limit_s, runtime_s,"
    " matrix, summary, note, created_by, created_at,"
    " ARRAY(SELECT r.id FROM route_runs r WHERE r.plan_id = plans.id ORDER BY r.id)"
)


async def list_plans(
    conn: AsyncConnection[Any], tenant_id: int, local_date: dt.date
) -> list[PlanRecord]:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM plans WHERE tenant_id = %s AND local_date = %s ORDER BY id",
        (tenant_id, local_date),
    )
    rows = await cursor.fetchall()
    return [await _record(conn, row) for row in rows]


async def get_plan(conn: AsyncConnection[Any], tenant_id: int, plan_id: int) -> PlanRecord:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM plans WHERE tenant_id = %s AND id = %s", (tenant_id, plan_id)
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"plan {plan_id}")
    return await _record(conn, row)


async def _record(conn: AsyncConnection[Any], row: tuple[Any, ...]) -> PlanRecord:
    cursor = await conn.execute(
        "SELECT service_point_id, code, name, reason, detail FROM plan_unserved"
        " WHERE plan_id = %s ORDER BY code",
        (row[0],),
    )
    unserved = tuple(UnservedStop(*r) for r in await cursor.fetchall())
    return PlanRecord(
        id=row[0],
        local_date=row[1],
        depot_geofence_id=row[2],
        reason=row[3],
        replans_id=row[4],
        engine=row[5],
        time_limit_s=row[6],
        runtime_s=row[7],
        matrix=row[8],
        summary=row[9],
        note=row[10],
        created_by=row[11],
        created_at=row[12],
        run_ids=tuple(row[13]),
        unserved=unserved,
    )


async def task_lists(conn: AsyncConnection[Any], tenant_id: int, local_date: dt.date) -> list[Task]:
    """Everyone's tasks on the date, by person then start time; cancelled runs left out."""
    cursor = await conn.execute(
        "SELECT c.staff_id, c.role, r.id, r.name, r.vehicle_id, r.status,"
        " (SELECT count(*) FROM route_stops s WHERE s.route_run_id = r.id AND s.kind = 'collect'),"
        " r.planned_start, r.planned_end"
        " FROM route_run_crew c JOIN route_runs r ON r.id = c.route_run_id"
        " WHERE r.tenant_id = %s AND r.local_date = %s AND r.status <> 'cancelled'"
        " ORDER BY c.staff_id, r.planned_start, r.id",
        (tenant_id, local_date),
    )
    return [Task(*row) for row in await cursor.fetchall()]
