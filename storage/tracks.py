"""Reading tracks out of the positions table: downsampled for drawing, whole for reports.

A vehicle-day at 5 s is 17,000 fixes; a map needs far fewer to draw the day's line, so the
database thins it: one point per device per time bucket. The point kept is the bucket's
*last* fix (a real position the vehicle was at, so the line never cuts corners through
averaged points) and the bucket's highest speed rides along, so thinning never hides
speeding. Both layouts read with the same SQL but the bucket function's name
(ARCHITECTURE §5): TimescaleDB's ``time_bucket``, PostgreSQL's own ``date_bin`` (14+),
given the same origin so they cut identical buckets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from storage.positions import PositionsBackend

UTC = dt.UTC
MAX_POINTS = 20_000
_BUCKET_FUNCTION = {
    PositionsBackend.TIMESCALEDB: "time_bucket",
    PositionsBackend.NATIVE: "date_bin",
}
# Each device's fixes in the range: the (device_id, time) key makes this an index range scan.
_IN_RANGE = (
    "tenant_id = %(tenant_id)s AND device_id = ANY(%(device_ids)s)"
    " AND time >= %(start)s AND time < %(end)s"
)
_RAW = sql.SQL(
    "SELECT device_id, time, lat, lon, speed_kmh, heading_deg, speed_kmh AS max_speed_kmh"
    " FROM positions"
    f" WHERE {_IN_RANGE} ORDER BY time, device_id LIMIT %(max_points)s"
)
_DOWNSAMPLED = sql.SQL(
    "SELECT device_id, time, lat, lon, speed_kmh, heading_deg, max_speed_kmh FROM ("
    " SELECT DISTINCT ON (device_id, bucket) device_id, time, lat, lon, speed_kmh, heading_deg,"
    "  max(speed_kmh) OVER (PARTITION BY device_id, bucket) AS max_speed_kmh"
    " FROM (SELECT device_id, time, lat, lon, speed_kmh, heading_deg,"
    "  {bucket}(make_interval(secs => %(bucket_s)s), time, TIMESTAMPTZ '2000-01-01') AS bucket"
    f"  FROM positions WHERE {_IN_RANGE}) fixes"
    " ORDER BY device_id, bucket, time DESC"
    ") last_fixes ORDER BY time, device_id LIMIT %(max_points)s"
)
_FIXES = (
    "SELECT device_id, time, lat, lon, speed_kmh, heading_deg, ignition, odometer_m"
    f" FROM positions WHERE {_IN_RANGE} ORDER BY time, device_id"
)


@dataclass(frozen=True, slots=True)
class TrackPoint:
    """One drawn point: the last fix of its bucket, with the bucket's highest speed."""

    device_id: int
    time: dt.datetime  # UTC
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None
    max_speed_kmh: float | None  # over the bucket; the fix's own speed for raw fixes


@dataclass(frozen=True, slots=True)
class TrackFix:
    """One stored fix with what reports need: motion, ignition and the odometer."""

    device_id: int
    time: dt.datetime  # UTC
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None
    ignition: bool | None
    odometer_m: int | None


async def downsampled_track(
    conn: AsyncConnection[Any],
    tenant_id: int,
    device_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    bucket_s: int,
    backend: PositionsBackend,
    *,
    max_points: int = MAX_POINTS,
) -> list[TrackPoint]:
    """The devices' fixes in [start, end), one per device per ``bucket_s`` bucket, in time
    order; ``bucket_s`` <= 1 gives the raw fixes. At most ``max_points``: the earliest ones.

    Only this tenant's fixes are read, whatever device ids are asked for.
    """
    query, params = _track_query(tenant_id, device_ids, start, end, bucket_s, backend, max_points)
    if query is None:
        return []
    # Binary rows: parsing 17,000 text timestamps is most of a day's read.
    cursor = await conn.execute(query, params, binary=True)
    return [TrackPoint(row[0], row[1].astimezone(UTC), *row[2:]) for row in await cursor.fetchall()]


async def downsampled_track_json(
    conn: AsyncConnection[Any],
    tenant_id: int,
    device_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    bucket_s: int,
    backend: PositionsBackend,
    *,
    max_points: int = MAX_POINTS,
) -> bytes:
    """The same points as ``downsampled_track``, as a JSON array written by PostgreSQL
    (``{"time": "…Z", "lat", "lon", "speed_kmh", "heading_deg", "max_speed_kmh"}``): an
    HTTP answer without a Python object per point."""
    query, params = _track_query(tenant_id, device_ids, start, end, bucket_s, backend, max_points)
    if query is None:
        return b"[]"
    cursor = await conn.execute(
        sql.SQL(
            "SELECT coalesce(json_agg(json_build_object("
            "'time', to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
            " 'lat', lat, 'lon', lon, 'speed_kmh', speed_kmh, 'heading_deg', heading_deg,"
            " 'max_speed_kmh', max_speed_kmh) ORDER BY time, device_id), '[]')::text"
            " FROM ({}) AS points"
        ).format(query),
        params,
    )
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0]).encode()


def _track_query(
    tenant_id: int,
    device_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
    bucket_s: int,
    backend: PositionsBackend,
    max_points: int,
) -> tuple[sql.SQL | sql.Composed | None, dict[str, Any]]:
    """The query of a track and its parameters; None when it can hold nothing."""
    _check_range(start, end)
    if bucket_s < 0:
        raise ValueError(f"bucket_s={bucket_s}: must be >= 0 (0 or 1: raw fixes)")
    if max_points < 1:
        raise ValueError(f"max_points={max_points}: must be >= 1")
    params = {
        "tenant_id": tenant_id,
        "device_ids": list(device_ids),
        "start": start,
        "end": end,
        "bucket_s": bucket_s,
        "max_points": max_points,
    }
    if not device_ids or end <= start:
        return None, params
    query: sql.SQL | sql.Composed = _RAW
    if bucket_s > 1:
        query = _DOWNSAMPLED.format(bucket=sql.SQL(_BUCKET_FUNCTION[backend]))
    return query, params


async def track_fixes(
    conn: AsyncConnection[Any],
    tenant_id: int,
    device_ids: Sequence[int],
    start: dt.datetime,
    end: dt.datetime,
) -> list[TrackFix]:
    """Every fix of the devices in [start, end), in time order (for reports, which need them
    all; the range bounds the size: a report asks for a day or a route run)."""
    _check_range(start, end)
    if not device_ids or end <= start:
        return []
    params = {"tenant_id": tenant_id, "device_ids": list(device_ids), "start": start, "end": end}
    cursor = await conn.execute(_FIXES, params, binary=True)
    return [TrackFix(row[0], row[1].astimezone(UTC), *row[2:]) for row in await cursor.fetchall()]


def _check_range(start: dt.datetime, end: dt.datetime) -> None:
    for name, moment in (("start", start), ("end", end)):
        if moment.utcoffset() is None:
            raise ValueError(f"{name}={moment!r}: has no time zone")
