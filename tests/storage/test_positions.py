from __future__ import annotations

import datetime as dt

from sanitrack.settings import PositionsSettings
from storage import (
    Pool,
    PositionsBackend,
    choose_backend,
    detect_backend,
    latest_positions,
    maintain,
    write_positions,
)
from storage.positions import partition_name
from tests.support import make_devices

NOW = dt.datetime.now(dt.UTC)


def test_timescaledb_is_chosen_only_when_the_extension_exists() -> None:
    assert choose_backend({"plpgsql", "timescaledb"}) is PositionsBackend.TIMESCALEDB
    assert choose_backend({"plpgsql", "pg_trgm"}) is PositionsBackend.NATIVE


async def test_this_server_has_no_timescaledb_so_positions_is_natively_partitioned(
    pool: Pool,
) -> None:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT name FROM pg_available_extensions")
        available = {row[0] for row in await cursor.fetchall()}
        assert await detect_backend(conn) is choose_backend(available)
        cursor = await conn.execute("SELECT relkind FROM pg_class WHERE relname = 'positions'")
        assert await cursor.fetchone() == ("p",)  # partitioned table, not a hypertable


async def test_partitions_are_created_ahead_and_dropped_by_retention(pool: Pool) -> None:
    settings = PositionsSettings(retention_days=10, partitions_ahead_days=3)
    async with pool.connection() as conn:
        report = await maintain(conn, settings, NOW)
        assert report.backend is PositionsBackend.NATIVE
        cursor = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'positions'::regclass"
        )
        names = {row[0] for row in await cursor.fetchall()}
        today = NOW.date()
        assert {partition_name(today + dt.timedelta(days=n)) for n in range(-10, 4)} <= names
        assert partition_name(today - dt.timedelta(days=12)) not in names  # the 90-day ones went
        # Forty days later, everything older than ten days before then is dropped.
        later = await maintain(conn, settings, NOW + dt.timedelta(days=40))
        assert partition_name(today) in later.dropped
        assert partition_name(today + dt.timedelta(days=43)) in later.created
        again = await maintain(conn, settings, NOW + dt.timedelta(days=40))
        assert (again.created, again.dropped) == ((), ())  # idempotent
        await maintain(conn, PositionsSettings(), NOW)  # put the session's layout back


async def test_the_same_queries_read_what_was_written_and_duplicates_are_stored_once(
    pool: Pool,
) -> None:
    [a, b] = await make_devices(pool, 2)
    rows = [
        (
            device.device_id,
            NOW - dt.timedelta(minutes=m),
            1,
            NOW,
            20.97 + m / 1000,
            105.77,
            10.0,
            90.0,
            5.0,
            None,
            None,
            m,
            True,
            None,
            None,
            "native",
        )
        for device in (a, b)
        for m in (1, 2, 3)
    ]
    async with pool.connection() as conn:
        assert await write_positions(conn, rows + rows[:2]) == 6
        await conn.commit()
        assert await write_positions(conn, rows) == 0
        await conn.commit()
        cursor = await conn.execute("SELECT id FROM tenants")
        (tenant_id,) = await cursor.fetchone() or (0,)
        latest = await latest_positions(conn, tenant_id)
    assert [(row["device"], round(row["lat"], 3)) for row in latest] == [
        ("dev-0", 20.971),
        ("dev-1", 20.971),
    ]
