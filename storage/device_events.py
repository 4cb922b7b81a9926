"""The device_events table: ignition, bin lifts, panic, incidents, stop confirmations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class DeviceEventRow:
    tenant_id: int
    device_id: int
    time: dt.datetime
    received_at: dt.datetime
    kind: str
    lat: float | None = None
    lon: float | None = None
    value: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)  # route_run_id, stop_seq, note


_INSERT = (
    "INSERT INTO device_events"
    " (tenant_id, device_id, time, received_at, kind, lat, lon, value, details)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (device_id, time, kind) DO NOTHING"
)


async def write_device_events(conn: AsyncConnection[Any], rows: Sequence[DeviceEventRow]) -> int:
    """Insert within the caller's transaction; a resent event is stored once.

    Returns the number of new rows. Events are few next to fixes, so a plain
    (pipelined) executemany is enough.
    """
    if not rows:
        return 0
    cursor = conn.cursor()
    await cursor.executemany(
        _INSERT,
        [
            (
                row.tenant_id,
                row.device_id,
                row.time,
                row.received_at,
                row.kind,
                row.lat,
                row.lon,
                row.value,
                Jsonb(row.details),
            )
            for row in rows
        ],
    )
    return max(cursor.rowcount, 0)


async def count_device_events(conn: AsyncConnection[Any], tenant_id: int | None = None) -> int:
    if tenant_id is None:
        cursor = await conn.execute("SELECT count(*) FROM device_events")
    else:
        cursor = await conn.execute(
            "SELECT count(*) FROM device_events WHERE tenant_id = %s", (tenant_id,)
        )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def events_since(
    conn: AsyncConnection[Any],
    device_ids: Sequence[int],
    since: dt.datetime,
    kinds: Sequence[str] | None = None,
) -> list[DeviceEventRow]:
    """Stored events of these devices from ``since`` (of these kinds, or all), in time
    order (for replays)."""
    cursor = await conn.execute(
        "SELECT tenant_id, device_id, time, received_at, kind, lat, lon, value, details"
        " FROM device_events WHERE device_id = ANY(%s) AND time >= %s"
        " AND (%s::text[] IS NULL OR kind = ANY(%s::text[])) ORDER BY time",
        (list(device_ids), since, kinds, kinds),
    )
    return [DeviceEventRow(*row) for row in await cursor.fetchall()]
