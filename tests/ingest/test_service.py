"""Ingest end to end: real broker (amqtt, and Mosquitto when configured) into real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import aiomqtt
import orjson
import pytest

from ingest import IngestService
from storage import Pool, count_positions
from tests.support import (
    BrokerUnderTest,
    DeviceUnderTest,
    ingest_settings,
    make_devices,
    running_ingest,
    wait_for,
)

# Far enough back that 1,000 fixes at 5 s stay in the past.
BASE = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)


def fix(n: int, **extra: object) -> dict[str, object]:
    """The n-th fix of a truck creeping north through Hà Đông at ~14 km/h."""
    return {
        "ts": (BASE + dt.timedelta(seconds=5 * n)).isoformat().replace("+00:00", "Z"),
        "lat": 20.9700 + n * 0.00002,
        "lon": 105.7750,
        "speed_kmh": 14.0,
        "accuracy_m": 6.0,
        "seq": n,
        **extra,
    }


async def publish(
    broker: BrokerUnderTest,
    device: DeviceUnderTest,
    payloads: list[bytes],
    topic: str | None = None,
) -> None:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=device.username,
        password=device.secret,
        identifier=f"{device.username}-{id(payloads)}",
        max_inflight_messages=200,
    ) as client:
        for start in range(0, len(payloads), 200):
            await asyncio.gather(
                *(
                    client.publish(topic or device.topic, payload, qos=1)
                    for payload in payloads[start : start + 200]
                )
            )


async def rows(pool: Pool) -> int:
    async with pool.connection() as conn:
        return await count_positions(conn)


async def letters(pool: Pool, tenant: str, reason: str | None = None) -> int:
    """Dead letters of this test's tenant (others may publish on a shared broker)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM dead_letters WHERE (topic LIKE %s OR topic LIKE %s)"
            " AND (%s::text IS NULL OR reason = %s)",
            (f"sanitrack/{tenant}/%", f"owntracks/%@{tenant}/%", reason, reason),
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def test_ten_thousand_fixes_become_ten_thousand_rows(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    devices = await make_devices(pool, 10)
    async with running_ingest(pool, broker) as service:
        await asyncio.gather(
            *(
                publish(broker, device, [orjson.dumps(fix(n)) for n in range(1000)])
                for device in devices
            )
        )
        assert await wait_for(lambda: rows(pool), 10_000) == 10_000
        # Resent messages (a device that did not see its PUBACK) are stored once.
        await publish(broker, devices[0], [orjson.dumps(fix(n)) for n in range(500)])
        await wait_for(
            lambda: asyncio.sleep(0, int(service.metrics.duplicates._value.get())), 500, 15
        )
        await service.flush()
    assert await rows(pool) == 10_000
    assert await letters(pool, devices[0].tenant) == 0
    assert service.metrics.duplicates._value.get() == 500
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(DISTINCT device_id), min(seq), max(seq) FROM positions"
        )
        assert await cursor.fetchone() == (10, 0, 999)


async def test_batch_with_one_bad_fix_keeps_the_good_ones(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    batch = [fix(0), fix(1), {**fix(2), "lat": 123.0}, fix(3), {"lat": 20.97}, fix(4)]
    async with running_ingest(pool, broker):
        await publish(broker, device, [orjson.dumps(batch)])
        assert await wait_for(lambda: letters(pool, device.tenant), 2) == 2
        assert await wait_for(lambda: rows(pool), 4) == 4
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT reason, detail, payload, device_id FROM dead_letters ORDER BY detail"
        )
        found = await cursor.fetchall()
    assert [(r[0], r[1].split(":")[0]) for r in found] == [
        ("out_of_range", "fix[2]"),
        ("missing_field", "fix[4]"),
    ]
    assert orjson.loads(found[0][2])["lat"] == 123.0  # the bad fix itself is kept
    assert {r[3] for r in found} == {device.device_id}


async def test_garbage_lands_in_dead_letters_and_does_not_block_good_fixes(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    garbage = [
        b"",
        b"\xff\xfe\x00",
        b"{",
        b"[]",
        b"null",
        b"42",
        b'"text"',
        b"[" * 5000 + b"]" * 5000,
        b'{"ts": "2026-12-04T08:00:00Z", "lat": NaN, "lon": 105.7}',
        b'{"ts": "2026-12-04T08:00:00Z", "lat": 1e999, "lon": 105.7}',
        orjson.dumps({**fix(1), "speed_kmh": "fast"}),
        orjson.dumps({**fix(1), "ts": "yesterday"}),
        orjson.dumps({**fix(1), "lat": 0, "lon": 0}),
        orjson.dumps({**fix(1), "ts": "2099-01-01T00:00:00Z"}),
        '{"ts": "2026-12-04T08:00:00Z", "lat": "Hà Đông"}'.encode(),
        b"x" * (300 * 1024),
    ]
    async with running_ingest(pool, broker):
        await publish(broker, device, [*garbage, orjson.dumps(fix(0))])
        assert await wait_for(lambda: letters(pool, device.tenant), len(garbage)) == len(garbage)
        assert await wait_for(lambda: rows(pool), 1) == 1
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT reason, count(*), max(payload_size), max(length(payload)) FROM dead_letters"
            " WHERE topic LIKE %s GROUP BY reason",
            (f"sanitrack/{device.tenant}/%",),
        )
        by_reason = {r[0]: r[1:] for r in await cursor.fetchall()}
    assert by_reason["payload_too_large"] == (1, 300 * 1024, 64 * 1024)  # cut at 64 KiB
    assert by_reason["not_json"][0] == 6  # empty, bad UTF-8, '{', deep nesting, NaN, 1e999
    assert by_reason["wrong_shape"][0] == 3
    assert {"empty_batch", "bad_type", "null_island", "future"} <= by_reason.keys()


async def test_unknown_devices_and_topics_are_dead_lettered(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    if broker.checks_credentials:
        pytest.skip("this broker refuses unknown devices at login; see tests/broker")
    [device] = await make_devices(pool, 1)
    async with running_ingest(pool, broker):
        await publish(
            broker, device, [orjson.dumps(fix(0))], topic=f"sanitrack/{device.tenant}/dev/ghost/pos"
        )
        assert await wait_for(lambda: letters(pool, device.tenant, "unknown_device"), 1) == 1
    assert await rows(pool) == 0


async def test_owntracks_location_is_stored_and_other_types_dead_lettered(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [phone] = await make_devices(pool, 1)
    topic = f"owntracks/{phone.username}/pixel"
    tst = int((BASE + dt.timedelta(minutes=3)).timestamp())
    location = {
        "_type": "location",
        "tst": tst,
        "lat": 20.9712,
        "lon": 105.7791,
        "acc": 12,
        "vel": 4,
        "cog": 90,
        "batt": 64,
        "tid": "px",
    }
    async with running_ingest(pool, broker):
        await publish(
            broker,
            phone,
            [orjson.dumps(location), orjson.dumps({"_type": "lwt", "tst": tst})],
            topic=topic,
        )
        assert await wait_for(lambda: rows(pool), 1) == 1
        assert await wait_for(lambda: letters(pool, phone.tenant, "unsupported_type"), 1) == 1
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT source, accuracy_m, speed_kmh, battery_pct, extract(epoch FROM time)"
            " FROM positions"
        )
        assert await cursor.fetchone() == ("owntracks", 12.0, 4.0, 64, tst)


async def test_out_of_order_fixes_reach_consumers_in_fix_time_order(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    seen: list[int] = []
    settings = ingest_settings(reorder_window_ms=1500)  # wide: CI machines stall
    async with running_ingest(pool, broker, settings) as service:
        service._consumers.append(lambda item: seen.append(item.fix.seq or 0))
        order = [3, 1, 4, 0, 2, 6, 5]
        await publish(broker, device, [orjson.dumps(fix(n)) for n in order])
        assert await wait_for(lambda: asyncio.sleep(0, len(seen)), len(order), 10) == len(order)
    assert seen == sorted(order)


async def reading_paused(service: IngestService, timeout_s: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while service.metrics.reading_paused._value.get() == 0:
        assert asyncio.get_running_loop().time() < deadline, "reading never paused"
        await asyncio.sleep(0.05)


async def test_a_slow_database_pauses_reading_and_loses_nothing(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    """A lock holds every write; the pending bound is reached, reading pauses, then all lands."""
    devices = await make_devices(pool, 4)
    settings = ingest_settings(max_pending_messages=50, batch_max_rows=20)
    async with running_ingest(pool, broker, settings) as service, pool.connection() as blocker:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE positions IN ACCESS EXCLUSIVE MODE")
            publishing = asyncio.gather(
                *(
                    publish(broker, device, [orjson.dumps(fix(n)) for n in range(100)])
                    for device in devices
                )
            )
            await reading_paused(service)
            assert service.status().pending_messages <= 50 + 1
            assert service.metrics.rows_written._value.get() == 0  # (positions is locked)
        await publishing
        assert await wait_for(lambda: rows(pool), 400) == 400
    assert await letters(pool, devices[0].tenant) == 0


async def test_a_paused_ingest_stops_cleanly(pool: Pool, broker: BrokerUnderTest) -> None:
    """SIGTERM while reading is paused (database stuck) must not hang the shutdown."""
    devices = await make_devices(pool, 2)
    settings = ingest_settings(max_pending_messages=20, batch_max_rows=10)
    service = IngestService(settings, pool, broker.service_endpoint())
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(service.subscribed.wait(), timeout=15)
    async with pool.connection() as blocker:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE positions IN ACCESS EXCLUSIVE MODE")
            publishing = asyncio.gather(
                *(
                    publish(broker, device, [orjson.dumps(fix(n)) for n in range(60)])
                    for device in devices
                )
            )
            await reading_paused(service)
            task.cancel()
            await asyncio.sleep(1)
        # The lock is gone: the service stores what it can and stops, within its bounds.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=30)
    await asyncio.wait_for(publishing, timeout=30)


async def test_lost_database_connections_are_retried_without_loss(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    async with running_ingest(pool, broker) as service:
        await publish(broker, device, [orjson.dumps(fix(n)) for n in range(50)])
        assert await wait_for(lambda: rows(pool), 50) == 50
        async with pool.connection() as conn:  # kill every other session of the pool
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        await pool.check()  # let the pool replace the connections we just killed
        await publish(broker, device, [orjson.dumps(fix(n)) for n in range(50, 100)])
        assert await wait_for(lambda: rows(pool), 100) == 100
        assert service.status().last_write_ok
