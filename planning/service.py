"""Route-run storage: the only code that reads or writes route_runs, route_stops and their crew.

Every function takes an open connection; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.types.json import Jsonb

import alerts
from planning.errors import Conflict, NotFound
from planning.models import (
    CrewMember,
    CrewRole,
    NewRouteRun,
    RouteRun,
    RouteStop,
    RunSource,
    RunStatus,
    StopKind,
)

_RUN_COLUMNS = (
    "id, tenant_id, vehicle_id, local_date, name, planned_start, planned_end, corridor_m,"
    " expected_path, path_length_m, status, source"
)
_STOP_COLUMNS = (
    "route_run_id, seq, kind, service_point_id, geofence_id, lat, lon, path_offset_m,"
    " planned_arrival, window_start, window_end, demand_kg, service_s, dwell_radius_m"
)


async def create_route_run(conn: AsyncConnection[Any], tenant_id: int, run: NewRouteRun) -> int:
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO route_runs (tenant_id, vehicle_id, local_date, name, planned_start,"
                " planned_end, corridor_m, expected_path, path_length_m, source)"
                " SELECT %s, v.id, %s, %s, %s, %s, %s, %s, %s, %s"
                " FROM vehicles v WHERE v.id = %s AND v.tenant_id = %s RETURNING id",
                (
                    tenant_id,
                    run.local_date,
                    run.name,
                    run.planned_start,
                    run.planned_end,
                    run.corridor_m,
                    Jsonb({"type": "LineString", "coordinates": run.expected_path}),
                    run.path_length_m,
                    str(run.source),
                    run.vehicle_id,
                    tenant_id,
                ),
            )
            row = await cursor.fetchone()
            if row is None:
                raise NotFound(f"vehicle {run.vehicle_id}")
            run_id = int(row[0])
            async with conn.cursor() as many:
                await many.executemany(
                    f"INSERT INTO route_stops (tenant_id, {_STOP_COLUMNS})"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            tenant_id,
                            run_id,
                            s.seq,
                            str(s.kind),
                            s.service_point_id,
                            s.geofence_id,
                            s.lat,
                            s.lon,
                            s.path_offset_m,
                            s.planned_arrival,
                            s.window_start,
                            s.window_end,
                            s.demand_kg,
                            s.service_s,
                            s.dwell_radius_m,
                        )
                        for s in run.stops
                    ],
                )
                await many.executemany(
                    "INSERT INTO route_run_crew (route_run_id, staff_id, role) VALUES (%s, %s, %s)",
                    [(run_id, member.staff_id, str(member.role)) for member in run.crew],
                )
    except errors.UniqueViolation:
        raise Conflict(
            f"route run {run.name!r} exists for vehicle {run.vehicle_id} on {run.local_date}"
        ) from None
    except errors.ForeignKeyViolation as exc:
        raise NotFound(f"a service point, geofence or staff member of the run: {exc}") from None
    return run_id


async def get_route_run(conn: AsyncConnection[Any], tenant_id: int, run_id: int) -> RouteRun:
    runs = await _runs(conn, "tenant_id = %s AND id = %s", (tenant_id, run_id))
    if not runs:
        raise NotFound(f"route run {run_id}")
    return runs[0]


async def list_route_runs(
    conn: AsyncConnection[Any], tenant_id: int, local_date: dt.date
) -> list[RouteRun]:
    return await _runs(
        conn, "tenant_id = %s AND local_date = %s ORDER BY id", (tenant_id, local_date)
    )


async def set_run_status(
    conn: AsyncConnection[Any], tenant_id: int, run_id: int, status: RunStatus
) -> None:
    if status is RunStatus.CANCELLED:
        if not await cancel_runs(conn, tenant_id, [run_id]):
            await get_route_run(conn, tenant_id, run_id)  # NotFound when missing
        return
    cursor = await conn.execute(
        "UPDATE route_runs SET status = %s WHERE tenant_id = %s AND id = %s",
        (str(status), tenant_id, run_id),
    )
    if cursor.rowcount != 1:
        raise NotFound(f"route run {run_id}")


async def cancel_runs(
    conn: AsyncConnection[Any], tenant_id: int, run_ids: Sequence[int]
) -> list[int]:
    """Cancel these runs (those not already cancelled); return the ids cancelled."""
    return await _cancel(conn, tenant_id, "id = ANY(%s)", (list(run_ids),))


async def cancel_planned_runs(
    conn: AsyncConnection[Any],
    tenant_id: int,
    local_date: dt.date,
    source: RunSource,
    *,
    started_too: bool = False,
    depot_geofence_id: int | None = None,
) -> int:
    """Cancel the runs from ``source`` that have not started (``started_too``: and those
    under way, as when a simulation starts again): a new plan replaces them.
    ``depot_geofence_id``: only the runs of plans from that depot."""
    statuses = ["planned", "active"] if started_too else ["planned"]
    condition = "local_date = %s AND source = %s AND status = ANY(%s)"
    params: tuple[Any, ...] = (local_date, str(source), statuses)
    if depot_geofence_id is not None:
        condition += (
            " AND plan_id IN (SELECT id FROM plans WHERE tenant_id = %s AND depot_geofence_id = %s)"
        )
        params += (tenant_id, depot_geofence_id)
    return len(await _cancel(conn, tenant_id, condition, params))


async def _cancel(
    conn: AsyncConnection[Any], tenant_id: int, condition: str, params: tuple[Any, ...]
) -> list[int]:
    """Cancel the tenant's runs that meet ``condition``, and resolve their open alerts with
    them: the rules engine stops tracking a cancelled run, so nothing else would."""
    async with conn.transaction():
        cursor = await conn.execute(
            "UPDATE route_runs SET status = 'cancelled' WHERE tenant_id = %s"
            f" AND status <> 'cancelled' AND {condition} RETURNING id",
            (tenant_id, *params),
        )
        run_ids = [row[0] for row in await cursor.fetchall()]
        await alerts.notify(conn, await alerts.resolve_for_cancelled_runs(conn, tenant_id, run_ids))
    return run_ids


async def _runs(conn: AsyncConnection[Any], where: str, params: tuple[Any, ...]) -> list[RouteRun]:
    cursor = await conn.execute(f"SELECT {_RUN_COLUMNS} FROM route_runs WHERE {where}", params)
    rows = await cursor.fetchall()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    stops: dict[int, list[RouteStop]] = {run_id: [] for run_id in ids}
    cursor = await conn.execute(
        f"SELECT {_STOP_COLUMNS} FROM route_stops WHERE route_run_id = ANY(%s)"
        " ORDER BY route_run_id, seq",
        (ids,),
    )
    for row in await cursor.fetchall():
        stops[row[0]].append(
            RouteStop(
                seq=row[1],
                kind=StopKind(row[2]),
                service_point_id=row[3],
                geofence_id=row[4],
                lat=row[5],
                lon=row[6],
                path_offset_m=row[7],
                planned_arrival=row[8],
                window_start=row[9],
                window_end=row[10],
                demand_kg=row[11],
                service_s=row[12],
                dwell_radius_m=row[13],
            )
        )
    crew: dict[int, list[CrewMember]] = {run_id: [] for run_id in ids}
    cursor = await conn.execute(
        "SELECT route_run_id, staff_id, role FROM route_run_crew WHERE route_run_id = ANY(%s)"
        " ORDER BY route_run_id, role, staff_id",
        (ids,),
    )
    for run_id, staff_id, role in await cursor.fetchall():
        crew[run_id].append(CrewMember(staff_id=staff_id, role=CrewRole(role)))
    return [
        RouteRun(
            id=row[0],
            tenant_id=row[1],
            vehicle_id=row[2],
            local_date=row[3],
            name=row[4],
            planned_start=row[5],
            planned_end=row[6],
            corridor_m=row[7],
            expected_path=tuple(tuple(p) for p in row[8]["coordinates"]),
            path_length_m=row[9],
            status=RunStatus(row[10]),
            source=RunSource(row[11]),
            stops=tuple(stops[row[0]]),
            crew=tuple(crew[row[0]]),
        )
        for row in rows
    ]


async def runs_fingerprint(
    conn: AsyncConnection[Any], tenant_id: int, local_dates: list[dt.date]
) -> str:
    """A digest of which runs exist on these dates and their statuses: a reader that keeps
    runs in memory reloads only when it changes (runs are otherwise never edited)."""
    cursor = await conn.execute(
        "SELECT md5(coalesce(string_agg(id || ':' || status, ',' ORDER BY id), ''))"
        " FROM route_runs WHERE tenant_id = %s AND local_date = ANY(%s)",
        (tenant_id, local_dates),
    )
    row = await cursor.fetchone()
    return str(row[0]) if row else ""


async def run_vehicles(
    conn: AsyncConnection[Any], tenant_id: int, run_ids: Sequence[int]
) -> set[int]:
    """The vehicles of these route runs (of this tenant)."""
    if not run_ids:
        return set()
    cursor = await conn.execute(
        "SELECT DISTINCT vehicle_id FROM route_runs WHERE tenant_id = %s AND id = ANY(%s)",
        (tenant_id, list(run_ids)),
    )
    return {int(row[0]) for row in await cursor.fetchall()}
