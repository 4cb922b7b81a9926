"""Stop-visit storage: the only code that reads or writes ``stop_visits``, the proof of service.

Every function takes an open connection; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.types.json import Jsonb

from alerts.errors import InvalidValue, NotFound
from alerts.models import StopVisit, VisitEvidence, VisitStatus

# In the order of StopVisit's fields.
_COLUMNS = (
    "tenant_id, route_run_id, stop_seq, vehicle_id, device_id, service_point_id, status,"
    " evidence, arrival_at, departure_at, dwell_s, closest_m, lat, lon, late, details"
)
# The same stay recorded again only gains: a later departure, a longer dwell, a closer fix,
# stronger evidence. Probable evidence (a slow pass, an inference from time) never replaces
# the evidence recorded (nor downgrades a visit, nor moves where it stood).
_WEAKER = "(EXCLUDED.status = 'probable' AND stop_visits.status = 'visited')"
_RECORD = (
    "INSERT INTO stop_visits (tenant_id, route_run_id, stop_seq, stop_id, service_point_id,"
    " vehicle_id, device_id, status, evidence, arrival_at, departure_at, dwell_s, closest_m,"
    " lat, lon, late, details)"
    " SELECT r.tenant_id, r.id, %(stop_seq)s, (SELECT s.id FROM route_stops s"
    " WHERE s.route_run_id = r.id AND s.seq = %(stop_seq)s), %(service_point_id)s,"
    " %(vehicle_id)s, %(device_id)s, %(status)s, %(evidence)s, %(arrival_at)s,"
    " %(departure_at)s, %(dwell_s)s, %(closest_m)s, %(lat)s, %(lon)s, %(late)s, %(details)s"
    " FROM route_runs r WHERE r.id = %(route_run_id)s AND r.tenant_id = %(tenant_id)s"
    " ON CONFLICT (route_run_id, stop_seq, arrival_at) DO UPDATE SET"
    " departure_at = GREATEST(stop_visits.departure_at, EXCLUDED.departure_at),"
    " dwell_s = GREATEST(stop_visits.dwell_s, EXCLUDED.dwell_s),"
    " closest_m = LEAST(stop_visits.closest_m, EXCLUDED.closest_m),"
    f" status = CASE WHEN {_WEAKER} THEN stop_visits.status ELSE EXCLUDED.status END,"
    " evidence = CASE WHEN EXCLUDED.status = 'probable' THEN stop_visits.evidence"
    " ELSE EXCLUDED.evidence END,"
    f" lat = CASE WHEN {_WEAKER} THEN stop_visits.lat ELSE EXCLUDED.lat END,"
    f" lon = CASE WHEN {_WEAKER} THEN stop_visits.lon ELSE EXCLUDED.lon END,"
    " late = EXCLUDED.late,"
    " details = stop_visits.details || EXCLUDED.details,"
    " service_point_id = COALESCE(stop_visits.service_point_id, EXCLUDED.service_point_id),"
    " recorded_at = now()"
)


async def record_visits(conn: AsyncConnection[Any], visits: Sequence[StopVisit]) -> int:
    """Insert or improve the visits (keyed by run, stop and arrival); return how many rows
    were written. A visit whose run is not in its tenant is not written."""
    for visit in visits:
        _check_visit(visit)
    if not visits:
        return 0
    written = 0
    try:
        async with conn.pipeline():
            cursors = [await conn.execute(_RECORD, _params(visit)) for visit in visits]
    except errors.ForeignKeyViolation as exc:
        raise NotFound(f"a device, vehicle or service point named by a visit: {exc}") from None
    except errors.CheckViolation as exc:
        raise InvalidValue(f"a visit breaks a rule of the stop_visits table: {exc}") from None
    for cursor in cursors:
        written += max(cursor.rowcount, 0)
    return written


def _check_visit(visit: StopVisit) -> None:
    where = f"visit to stop {visit.stop_seq} of route run {visit.route_run_id}"
    if visit.stop_seq < 1:
        raise InvalidValue(f"{where}: stop_seq {visit.stop_seq} is not >= 1")
    for name, moment in (("arrival_at", visit.arrival_at), ("departure_at", visit.departure_at)):
        if moment is not None and moment.utcoffset() is None:
            raise InvalidValue(f"{where}: {name} {moment!r} has no time zone")
    if visit.departure_at is not None and visit.departure_at < visit.arrival_at:
        raise InvalidValue(f"{where}: departure_at {visit.departure_at} is before arrival_at")
    for name, value in (("dwell_s", visit.dwell_s), ("closest_m", visit.closest_m)):
        if not value >= 0:
            raise InvalidValue(f"{where}: {name} {value} is not >= 0")
    probable = visit.status is VisitStatus.PROBABLE
    if probable != (visit.evidence is VisitEvidence.SLOW_PASS):
        raise InvalidValue(
            f"{where}: status {visit.status} does not fit evidence {visit.evidence}"
            " (a slow pass is probable; a dwell, bin lift or staff confirmation is a visit)"
        )


def _params(visit: StopVisit) -> dict[str, Any]:
    return {
        "tenant_id": visit.tenant_id,
        "route_run_id": visit.route_run_id,
        "stop_seq": visit.stop_seq,
        "service_point_id": visit.service_point_id,
        "vehicle_id": visit.vehicle_id,
        "device_id": visit.device_id,
        "status": str(visit.status),
        "evidence": str(visit.evidence),
        "arrival_at": visit.arrival_at,
        "departure_at": visit.departure_at,
        "dwell_s": visit.dwell_s,
        "closest_m": visit.closest_m,
        "lat": visit.lat,
        "lon": visit.lon,
        "late": visit.late,
        "details": Jsonb(visit.details),
    }


async def list_visits(
    conn: AsyncConnection[Any], tenant_id: int, route_run_id: int
) -> list[StopVisit]:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM stop_visits WHERE tenant_id = %s AND route_run_id = %s"
        " ORDER BY stop_seq, arrival_at",
        (tenant_id, route_run_id),
    )
    return [_visit(row) for row in await cursor.fetchall()]


async def visits_since(conn: AsyncConnection[Any], since: dt.datetime) -> list[StopVisit]:
    """Every tenant's visits arriving at or after ``since``: what the rules engine resumes
    from, so a restart does not call served stops missed."""
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM stop_visits WHERE arrival_at >= %s"
        " ORDER BY arrival_at, route_run_id, stop_seq",
        (since,),
    )
    return [_visit(row) for row in await cursor.fetchall()]


async def find_visits(
    conn: AsyncConnection[Any], keys: Sequence[tuple[int, int, int, dt.datetime]]
) -> list[StopVisit]:
    """The visits with these (tenant_id, route_run_id, stop_seq, arrival_at) keys, in that
    order; missing ones left out."""
    if not keys:
        return []
    tenants, runs, seqs, arrivals = (list(column) for column in zip(*keys, strict=True))
    cursor = await conn.execute(
        f"SELECT {', '.join('v.' + c.strip() for c in _COLUMNS.split(','))}"
        " FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::timestamptz[])"
        " WITH ORDINALITY AS k (tenant_id, route_run_id, stop_seq, arrival_at, n)"
        " JOIN stop_visits v ON v.tenant_id = k.tenant_id AND v.route_run_id = k.route_run_id"
        " AND v.stop_seq = k.stop_seq AND v.arrival_at = k.arrival_at ORDER BY k.n",
        (tenants, runs, seqs, arrivals),
    )
    return [_visit(row) for row in await cursor.fetchall()]


def _visit(row: Sequence[Any]) -> StopVisit:
    return StopVisit(
        tenant_id=row[0],
        route_run_id=row[1],
        stop_seq=row[2],
        vehicle_id=row[3],
        device_id=row[4],
        service_point_id=row[5],
        status=VisitStatus(row[6]),
        evidence=VisitEvidence(row[7]),
        arrival_at=row[8],
        departure_at=row[9],
        dwell_s=row[10],
        closest_m=row[11],
        lat=row[12],
        lon=row[13],
        late=row[14],
        details=row[15],
    )


async def served_points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    point_ids: Sequence[int],
    since: dt.datetime,
    until: dt.datetime,
) -> set[int]:
    """Which of ``point_ids`` had a visit (not a probable pass) arriving in [since, until):
    "collected today" on the customer map."""
    if not point_ids:
        return set()
    cursor = await conn.execute(
        "SELECT DISTINCT service_point_id FROM stop_visits WHERE tenant_id = %s"
        " AND service_point_id = ANY(%s) AND status = 'visited'"
        " AND arrival_at >= %s AND arrival_at < %s",
        (tenant_id, list(point_ids), since, until),
    )
    return {int(row[0]) for row in await cursor.fetchall()}
