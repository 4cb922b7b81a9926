"""The batch writer against real PostgreSQL: refusals do not block, missing days are created."""

from __future__ import annotations

import datetime as dt

from ingest.acks import AckTracker
from ingest.metrics import IngestMetrics
from ingest.writer import BatchWriter
from sanitrack.clock import SystemClock
from sanitrack.settings import load_settings
from storage import Pool, count_dead_letters, count_positions
from storage.device_events import DeviceEventRow, count_device_events
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


async def tenant_of(pool: Pool, device_id: int) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT tenant_id FROM devices WHERE id = %s", (device_id,))
        found = await cursor.fetchone()
    assert found is not None
    return int(found[0])


def lift(device_id: int, tenant_id: int, seconds_ago: float) -> DeviceEventRow:
    return DeviceEventRow(
        tenant_id=tenant_id,
        device_id=device_id,
        time=NOW - dt.timedelta(seconds=seconds_ago),
        received_at=NOW,
        kind="bin_lift",
        lat=20.97,
        lon=105.77,
    )


def new_writer(pool: Pool, acks: AckTracker, metrics: IngestMetrics) -> BatchWriter:
    settings = load_settings()
    return BatchWriter(pool, acks, settings.ingest, settings.positions, metrics, SystemClock())


async def test_events_are_stored_once_with_their_details(pool: Pool) -> None:
    [device] = await make_devices(pool, 1)
    tenant_id = await tenant_of(pool, device.device_id)
    sent: list[int] = []
    acks = AckTracker(lambda mid, qos: sent.append(mid))
    metrics = IngestMetrics()
    writer = new_writer(pool, acks, metrics)
    confirm = DeviceEventRow(
        tenant_id=tenant_id,
        device_id=device.device_id,
        time=NOW,
        received_at=NOW,
        kind="stop_confirm",
        details={"route_run_id": 812, "stop_seq": 4},
    )
    first, resent = acks.begin(1, 1), acks.begin(2, 1)
    writer.add_event(lift(device.device_id, tenant_id, 5), first)
    writer.add_event(confirm, first)
    writer.add_event(lift(device.device_id, tenant_id, 5), resent)  # in the same batch
    acks.seal(first)
    acks.seal(resent)
    await writer.flush_all()
    later = acks.begin(3, 1)
    writer.add_event(confirm, later)  # in a later batch (after a restart, say)
    acks.seal(later)
    await writer.flush_all()
    async with pool.connection() as conn:
        assert await count_device_events(conn) == 2
        cursor = await conn.execute("SELECT kind, lat, details FROM device_events ORDER BY time")
        assert await cursor.fetchall() == [
            ("bin_lift", 20.97, {}),
            ("stop_confirm", None, {"route_run_id": 812, "stop_seq": 4}),
        ]
    assert sent == [1, 2, 3]
    assert metrics.events_written._value.get() == 2
    assert metrics.duplicates._value.get() == 2


async def test_an_event_postgresql_refuses_is_dead_lettered_and_the_rest_stored(
    pool: Pool,
) -> None:
    [device] = await make_devices(pool, 1)
    tenant_id = await tenant_of(pool, device.device_id)
    sent: list[int] = []
    acks = AckTracker(lambda mid, qos: sent.append(mid))
    writer = new_writer(pool, acks, IngestMetrics())
    unconfirmed = DeviceEventRow(  # the table checks what the decoder checks
        tenant_id=tenant_id,
        device_id=device.device_id,
        time=NOW,
        received_at=NOW,
        kind="stop_confirm",
    )
    good, bad = acks.begin(1, 1), acks.begin(2, 1)
    writer.add_position(row(device.device_id, 1), good)
    writer.add_event(lift(device.device_id, tenant_id, 3), good)
    writer.add_event(unconfirmed, bad)
    acks.seal(good)
    acks.seal(bad)
    await writer.flush_all()
    async with pool.connection() as conn:
        assert await count_positions(conn) == 1
        assert await count_device_events(conn) == 1
        cursor = await conn.execute("SELECT topic, reason, device_id FROM dead_letters")
        assert await cursor.fetchall() == [("(stored event)", "storage_refused", device.device_id)]
    assert sent == [1, 2]
