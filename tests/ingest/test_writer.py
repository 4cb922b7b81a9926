"""The batch writer against real PostgreSQL: refusals do not block, missing days are created."""

from __future__ import annotations

import datetime as dt

from ingest.acks import AckTracker
from ingest.metrics import IngestMetrics
from ingest.writer import BatchWriter
from sanitrack.clock import SystemClock
from sanitrack.settings import load_settings
from storage import Pool, count_dead_letters, count_positions
from tests.support import make_devices

NOW = dt.datetime.now(dt.UTC)


def row(device_id: int, minutes_ago: float, battery_pct: int = 80) -> tuple[object, ...]:
    return (
        device_id,
        NOW - dt.timedelta(minutes=minutes_ago),
        1,
        NOW,
        20.97,
        105.77,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        battery_pct,
        None,
        "native",
    )


async def test_a_row_postgresql_refuses_is_dead_lettered_and_the_rest_stored(pool: Pool) -> None:
    [device] = await make_devices(pool, 1)
    sent: list[int] = []
    acks = AckTracker(lambda mid, qos: sent.append(mid))
    settings = load_settings()
    writer = BatchWriter(
        pool, acks, settings.ingest, settings.positions, IngestMetrics(), SystemClock()
    )
    good, bad = acks.begin(1, 1), acks.begin(2, 1)
    writer.add_position(row(device.device_id, 2), good)
    writer.add_position(row(device.device_id, 1, battery_pct=40_000), bad)  # beyond smallint
    writer.add_position(row(device.device_id, 0), good)
    acks.seal(good)
    acks.seal(bad)
    await writer.flush_all()
    async with pool.connection() as conn:
        assert await count_positions(conn) == 2
        assert await count_dead_letters(conn, "storage_refused") == 1
    assert sent == [1, 2]  # both messages are accounted for, so both are acknowledged


async def test_a_fix_on_a_day_without_partition_gets_one(pool: Pool) -> None:
    [device] = await make_devices(pool, 1)
    acks = AckTracker(lambda mid, qos: None)
    settings = load_settings()
    writer = BatchWriter(
        pool, acks, settings.ingest, settings.positions, IngestMetrics(), SystemClock()
    )
    async with pool.connection() as conn:
        day = NOW.date() + dt.timedelta(days=1)
        await conn.execute(f"DROP TABLE positions_p{day:%Y%m%d}")  # maintenance fell behind
    delivery = acks.begin(1, 1)
    writer.add_position(row(device.device_id, -24 * 60), delivery)  # tomorrow
    acks.seal(delivery)
    await writer.flush_all()
    async with pool.connection() as conn:
        assert await count_positions(conn) == 1
    assert acks.acked == 1
