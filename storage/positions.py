"""The positions table: its layout upkeep, the batch write and the reads.

Two layouts, one set of queries (ARCHITECTURE §5):

* ``timescaledb``: a hypertable; chunk interval, compression segmented by
  device and retention are TimescaleDB policies set from settings. This
  branch is only the few documented calls in ``_apply_timescale_policies``.
* ``native``: ``PARTITION BY RANGE (time)`` with one partition per UTC day,
  created from the retention horizon to a few days ahead and dropped when
  they fall out of retention.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

from psycopg import AsyncConnection, errors, sql

from sanitrack.settings import PositionsSettings

log = logging.getLogger(__name__)

UTC = dt.UTC
# Column order of every row handed to write_positions.
POSITION_COLUMNS: tuple[str, ...] = (
    "device_id",
    "time",
    "tenant_id",
    "received_at",
    "lat",
    "lon",
    "speed_kmh",
    "heading_deg",
    "accuracy_m",
    "alt_m",
    "sats",
    "seq",
    "ignition",
    "battery_pct",
    "odometer_m",
    "source",
)
PositionRow = tuple[Any, ...]
# The staging table and its binary COPY types. Narrow columns (smallint, real) are
# staged wider: binary dumping would silently wrap an out-of-range value, while
# PostgreSQL's cast into positions refuses it (and the writer dead-letters that row).
_STAGING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("device_id", "int8"),
    ("time", "timestamptz"),
    ("tenant_id", "int8"),
    ("received_at", "timestamptz"),
    ("lat", "float8"),
    ("lon", "float8"),
    ("speed_kmh", "float8"),
    ("heading_deg", "float8"),
    ("accuracy_m", "float8"),
    ("alt_m", "float8"),
    ("sats", "int4"),
    ("seq", "int8"),
    ("ignition", "bool"),
    ("battery_pct", "int4"),
    ("odometer_m", "int8"),
    ("source", "text"),
)
_POSITION_TYPES = tuple(kind for _, kind in _STAGING_COLUMNS)
_STAGING_DDL = sql.SQL(
    "CREATE TEMP TABLE IF NOT EXISTS positions_staging ({}) ON COMMIT DELETE ROWS"
).format(
    sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, kind in _STAGING_COLUMNS
    )
)

_PARTITION_NAME = re.compile(r"^positions_p(\d{8})$")
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"sanitrack.positions").digest()[:8], "big", signed=True)


class PositionsBackend(enum.StrEnum):
    TIMESCALEDB = "timescaledb"
    NATIVE = "native"


def choose_backend(available_extensions: set[str]) -> PositionsBackend:
    """The rule migration 0002 applies: TimescaleDB only when it can be installed."""
    if "timescaledb" in available_extensions:
        return PositionsBackend.TIMESCALEDB
    return PositionsBackend.NATIVE


async def detect_backend(conn: AsyncConnection[Any]) -> PositionsBackend:
    """Which layout the existing positions table has."""
    cursor = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        " AND to_regclass('timescaledb_information.hypertables') IS NOT NULL"
    )
    row = await cursor.fetchone()
    if row and row[0]:
        cursor = await conn.execute(
            "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'positions'"
        )
        if await cursor.fetchone():
            return PositionsBackend.TIMESCALEDB
    return PositionsBackend.NATIVE


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    backend: PositionsBackend
    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


def partition_name(day: dt.date) -> str:
    return f"positions_p{day:%Y%m%d}"


def wanted_days(now: dt.datetime, settings: PositionsSettings) -> list[dt.date]:
    """Every UTC day from the retention horizon to ``partitions_ahead_days`` ahead."""
    today = now.astimezone(UTC).date()
    first = (now - dt.timedelta(days=settings.retention_days)).astimezone(UTC).date()
    last = today + dt.timedelta(days=settings.partitions_ahead_days)
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


async def maintain(
    conn: AsyncConnection[Any], settings: PositionsSettings, now: dt.datetime
) -> MaintenanceReport:
    """Create partitions ahead and drop expired ones (native), or set policies (TimescaleDB).

    Safe to run from several processes at once: the work is done under a
    transaction-scoped advisory lock.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        backend = await detect_backend(conn)
        if backend is PositionsBackend.TIMESCALEDB:
            await _apply_timescale_policies(conn, settings)
            return MaintenanceReport(backend)
        existing = await _native_partitions(conn)
        wanted = wanted_days(now, settings)
        created = []
        for day in wanted:
            name = partition_name(day)
            if name in existing:
                continue
            start = dt.datetime.combine(day, dt.time(), UTC)
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF positions FOR VALUES FROM ({}) TO ({})"
                ).format(
                    sql.Identifier(name),
                    sql.Literal(start),
                    sql.Literal(start + dt.timedelta(days=1)),
                )
            )
            created.append(name)
        dropped = []
        for name, day in sorted(existing.items()):
            if day < wanted[0]:
                await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                dropped.append(name)
    if created or dropped:
        log.info("positions partitions: %d created, %d dropped", len(created), len(dropped))
    return MaintenanceReport(backend, tuple(created), tuple(dropped))


async def _native_partitions(conn: AsyncConnection[Any]) -> dict[str, dt.date]:
    cursor = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'positions'::regclass"
    )
    partitions = {}
    for (name,) in await cursor.fetchall():
        match = _PARTITION_NAME.match(name)
        if match:
            partitions[name] = dt.datetime.strptime(match[1], "%Y%m%d").date()
    return partitions


async def _apply_timescale_policies(
    conn: AsyncConnection[Any], settings: PositionsSettings
) -> None:
    """Chunk interval, compression by device and retention, from settings.

    Every call is documented TimescaleDB 2.x API. Compression options are set
    once (TimescaleDB refuses to change them while a compression policy
    exists); a policy is replaced only when its setting changed, so the
    hourly upkeep does not churn jobs.
    """
    chunk = dt.timedelta(hours=settings.chunk_interval_hours)
    await conn.execute("SELECT set_chunk_time_interval('positions', %s)", (chunk,))
    cursor = await conn.execute(
        "SELECT compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'positions'"
    )
    row = await cursor.fetchone()
    if row is not None and not row[0]:
        await conn.execute(
            "ALTER TABLE positions SET (timescaledb.compress,"
            " timescaledb.compress_segmentby = 'device_id',"
            " timescaledb.compress_orderby = 'time DESC')"
        )
    await _ensure_policy(
        conn,
        "policy_compression",
        "compress_after",
        dt.timedelta(hours=settings.compress_after_hours),
        add="SELECT add_compression_policy('positions', compress_after => %s)",
        remove="SELECT remove_compression_policy('positions', if_exists => true)",
    )
    await _ensure_policy(
        conn,
        "policy_retention",
        "drop_after",
        dt.timedelta(days=settings.retention_days),
        add="SELECT add_retention_policy('positions', drop_after => %s)",
        remove="SELECT remove_retention_policy('positions', if_exists => true)",
    )


async def _ensure_policy(
    conn: AsyncConnection[Any],
    proc_name: str,
    key: str,
    wanted: dt.timedelta,
    *,
    add: LiteralString,
    remove: LiteralString,
) -> None:
    cursor = await conn.execute(
        "SELECT (config->>%s)::interval FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_name = 'positions'",
        (key, proc_name),
    )
    current = await cursor.fetchone()
    if current is not None and current[0] == wanted:
        return
    await conn.execute(remove)
    await conn.execute(add, (wanted,))


async def write_positions(conn: AsyncConnection[Any], rows: Sequence[PositionRow]) -> int:
    """COPY rows into a staging table, then insert them; duplicates are stored once.

    Runs inside the caller's transaction; returns the number of new rows.
    """
    if not rows:
        return 0
    await conn.execute(_STAGING_DDL)
    columns = sql.SQL(", ").join(map(sql.Identifier, POSITION_COLUMNS))
    cursor = conn.cursor()
    async with cursor.copy(
        sql.SQL("COPY positions_staging ({}) FROM STDIN (FORMAT BINARY)").format(columns)
    ) as copy:
        copy.set_types(_POSITION_TYPES)
        for row in rows:
            await copy.write_row(row)
    await cursor.execute(
        sql.SQL(
            "INSERT INTO positions ({cols}) SELECT DISTINCT ON (device_id, time) {cols}"
            " FROM positions_staging ON CONFLICT (device_id, time) DO NOTHING"
        ).format(cols=columns)
    )
    return max(cursor.rowcount, 0)


def is_missing_partition(exc: BaseException) -> bool:
    """True when an insert failed because no partition covers a row's time."""
    return isinstance(exc, errors.CheckViolation) and "no partition" in str(exc)


async def latest_positions(conn: AsyncConnection[Any], tenant_id: int) -> list[dict[str, Any]]:
    """The last stored fix of every device of a tenant (same SQL on both layouts)."""
    cursor = await conn.execute(
        "SELECT d.slug, p.time, p.lat, p.lon, p.speed_kmh, p.heading_deg"
        " FROM devices d CROSS JOIN LATERAL ("
        "   SELECT time, lat, lon, speed_kmh, heading_deg FROM positions"
        "   WHERE device_id = d.id ORDER BY time DESC LIMIT 1) p"
        " WHERE d.tenant_id = %s ORDER BY d.slug",
        (tenant_id,),
    )
    names = ("device", "time", "lat", "lon", "speed_kmh", "heading_deg")
    return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


LATEST_WITHIN = dt.timedelta(days=2)


async def latest_positions_by_device(
    conn: AsyncConnection[Any], now: dt.datetime
) -> list[tuple[int, int, dt.datetime, float, float, float | None, float | None]]:
    """(device id, tenant id, time, lat, lon, speed, heading) of the last stored fix of
    every device that sent one within LATEST_WITHIN of ``now`` (the caller's clock; bounded
    so only recent partitions are read)."""
    cursor = await conn.execute(
        "SELECT d.id, d.tenant_id, p.time, p.lat, p.lon, p.speed_kmh, p.heading_deg"
        " FROM devices d CROSS JOIN LATERAL ("
        "   SELECT time, lat, lon, speed_kmh, heading_deg FROM positions"
        "   WHERE device_id = d.id AND time > %s ORDER BY time DESC LIMIT 1) p"
        " ORDER BY d.id",
        (now - LATEST_WITHIN,),
    )
    return list(await cursor.fetchall())


async def count_positions(conn: AsyncConnection[Any], tenant_id: int | None = None) -> int:
    if tenant_id is None:
        cursor = await conn.execute("SELECT count(*) FROM positions")
    else:
        cursor = await conn.execute(
            "SELECT count(*) FROM positions WHERE tenant_id = %s", (tenant_id,)
        )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class StoredFix:
    device_id: int
    time: dt.datetime
    received_at: dt.datetime
    lat: float | None  # None only for a bin lift sent without a position
    lon: float | None
    speed_kmh: float | None
    accuracy_m: float | None
    ignition: bool | None
    bin_lift: bool = False  # not a fix: the truck's lift sensor emptied a bin (there)


async def fixes_by_device(
    conn: AsyncConnection[Any],
    device_ids: Sequence[int],
    since: dt.datetime,
    *,
    batch_rows: int = 10_000,
) -> AsyncIterator[tuple[int, list[StoredFix]]]:
    """The stored fixes of these devices from ``since``, and their bin lifts: one device at
    a time, in time order, a lift before a fix at the same time (what the rules engine
    replays to rebuild its state after a restart). Read through a server-side cursor
    ``batch_rows`` at a time, so a fleet's day is never held at once, only one device's.
    ``conn`` must not be in autocommit (the cursor lives in its transaction)."""
    device: int | None = None
    fixes: list[StoredFix] = []
    async with conn.cursor(name="fixes_by_device") as cursor:
        cursor.itersize = batch_rows
        await cursor.execute(
            "SELECT device_id, time, received_at, lat, lon, speed_kmh, accuracy_m, ignition,"
            " false AS bin_lift"
            " FROM positions WHERE device_id = ANY(%(devices)s) AND time >= %(since)s"
            " UNION ALL"
            " SELECT device_id, time, received_at, lat, lon, NULL, NULL, NULL, true"
            " FROM device_events WHERE device_id = ANY(%(devices)s) AND time >= %(since)s"
            " AND kind = 'bin_lift'"
            " ORDER BY device_id, time, bin_lift DESC",
            {"devices": list(device_ids), "since": since},
        )
        async for row in cursor:
            if row[0] != device and fixes:
                yield fixes[0].device_id, fixes
                fixes = []
            device = row[0]
            fixes.append(StoredFix(*row))
    if fixes:
        yield fixes[0].device_id, fixes
