"""Ingest end to end: real broker (amqtt, and Mosquitto when configured) into real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import aiomqtt
import orjson
import pytest

import fleet
from ingest import DeviceFix, DeviceItem, IngestService, MqttEndpoint
from storage import Pool, count_positions
from storage.device_events import count_device_events
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


def event(seconds: float, kind: str, **extra: object) -> dict[str, object]:
    """A device event ``seconds`` after fix 0 (fixes come every 5 s)."""
    return {
        "ts": (BASE + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
        "type": kind,
        **extra,
    }


def event_topic(device: DeviceUnderTest) -> str:
    return f"sanitrack/{device.tenant}/dev/{device.slug}/evt"


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


async def events(pool: Pool) -> int:
    async with pool.connection() as conn:
        return await count_device_events(conn)


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
        service._consumers.append(
            lambda item: seen.append((item.fix.seq or 0) if isinstance(item, DeviceFix) else -1)
        )
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


def label(item: DeviceItem) -> str:
    if isinstance(item, DeviceFix):
        return f"fix {item.fix.seq}" + (" (jump)" if item.jump else "")
    return str(item.kind)


async def test_events_are_stored_once_and_reach_consumers_between_their_fixes(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    seen: list[DeviceItem] = []
    sent = [
        event(7.5, "bin_lift", lat=20.97015, lon=105.775),
        event(2, "ignition", value=True),
        event(12, "stop_confirm", route_run_id=812, stop_seq=4),
        event(16, "incident", note="Thùng rác bị hỏng nắp"),
    ]
    settings = ingest_settings(reorder_window_ms=1500)  # wide: CI machines stall
    async with running_ingest(pool, broker, settings) as service:
        service._consumers.append(seen.append)
        # The events arrive before the fixes they happened between.
        await publish(broker, device, [orjson.dumps(e) for e in sent], topic=event_topic(device))
        await publish(broker, device, [orjson.dumps(fix(n)) for n in range(4)])
        assert await wait_for(lambda: asyncio.sleep(0, len(seen)), 8, 10) == 8
        # A device that missed its PUBACK sends again: stored once, passed on once.
        await publish(broker, device, [orjson.dumps(sent[0])], topic=event_topic(device))
        await wait_for(lambda: asyncio.sleep(0, int(service.metrics.duplicates._value.get())), 1)
        assert await wait_for(lambda: events(pool), 4) == 4
    assert [label(item) for item in seen] == [
        "fix 0",
        "ignition",
        "fix 1",
        "bin_lift",
        "fix 2",
        "stop_confirm",
        "fix 3",
        "incident",
    ]
    assert not any(item.late for item in seen)
    assert service.metrics.events_accepted._value.get() == 4
    assert service.metrics.duplicates._value.get() == 1
    assert await events(pool) == 4
    assert await letters(pool, device.tenant) == 0
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT kind, device_id, extract(epoch FROM time - %s), lat, lon, value, details"
            " FROM device_events ORDER BY time",
            (BASE,),
        )
        assert await cursor.fetchall() == [
            ("ignition", device.device_id, 2, None, None, True, {}),
            ("bin_lift", device.device_id, 7.5, 20.97015, 105.775, None, {}),
            (
                "stop_confirm",
                device.device_id,
                12,
                None,
                None,
                None,
                {"route_run_id": 812, "stop_seq": 4},
            ),
            ("incident", device.device_id, 16, None, None, None, {"note": "Thùng rác bị hỏng nắp"}),
        ]


async def test_bad_events_are_dead_lettered_with_their_reason(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    bad = [
        event(1, "tipping"),
        event(2, "ignition"),
        event(3, "stop_confirm", route_run_id=812),
        event(4, "bin_lift", lat=0, lon=0),
        {"type": "panic"},
        b"not json",
    ]
    async with running_ingest(pool, broker):
        payloads = [p if isinstance(p, bytes) else orjson.dumps(p) for p in bad]
        await publish(
            broker, device, [*payloads, orjson.dumps(event(5, "panic"))], topic=event_topic(device)
        )
        assert await wait_for(lambda: letters(pool, device.tenant), len(bad)) == len(bad)
        assert await wait_for(lambda: events(pool), 1) == 1
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT reason, detail, device_id FROM dead_letters ORDER BY id"
        )
        found = await cursor.fetchall()
    named = [(reason, detail.split(":")[0]) for reason, detail, _ in found if reason != "not_json"]
    assert [reason for reason, _, _ in found].count("not_json") == 1
    assert sorted(named) == [
        ("missing_field", "stop_seq is required for stop_confirm"),
        ("missing_field", "ts is required"),
        ("missing_field", "value is required for ignition (true"),
        ("null_island", "lat=0, lon=0"),
        ("unknown_event_type", "type='tipping'"),
    ]
    assert {device_id for _, _, device_id in found} == {device.device_id}


async def test_events_of_unknown_and_inactive_devices_are_dead_lettered(pool: Pool) -> None:
    [device, retired] = await make_devices(pool, 2)
    async with pool.connection() as conn:
        await fleet.set_active(conn, retired.device_id, False)
        await conn.commit()
    service = IngestService(ingest_settings(), pool, MqttEndpoint("127.0.0.1", 1))
    lift = orjson.dumps(event(0, "bin_lift"))
    await service.handle(f"sanitrack/{device.tenant}/dev/ghost/evt", lift, 1, 1)
    await service.handle(event_topic(retired), lift, 2, 1)
    await service.handle(f"sanitrack/{device.tenant}/dev/{device.slug}/status", b"online", 3, 1)
    await service.flush()
    assert await events(pool) == 0
    assert await letters(pool, device.tenant, "unknown_device") == 1
    assert await letters(pool, device.tenant, "inactive_device") == 1
    assert await letters(pool, device.tenant, "unknown_topic") == 1
    assert service.status().pending_messages == 0


async def test_a_jump_reaches_consumers_flagged_and_stays_out_of_positions(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    seen: list[DeviceItem] = []
    settings = ingest_settings(reorder_window_ms=1500)
    async with running_ingest(pool, broker, settings) as service:
        service._consumers.append(seen.append)
        await publish(broker, device, [orjson.dumps(fix(0)), orjson.dumps(fix(1))])
        # 59 km north in 5 s, then back on the track.
        await publish(broker, device, [orjson.dumps(fix(2, lat=21.5)), orjson.dumps(fix(3))])
        assert await wait_for(lambda: asyncio.sleep(0, len(seen)), 4, 10) == 4
        assert await wait_for(lambda: rows(pool), 3) == 3
        assert await wait_for(lambda: letters(pool, device.tenant, "jump"), 1) == 1
    assert [label(item) for item in seen] == ["fix 0", "fix 1", "fix 2 (jump)", "fix 3"]
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT seq FROM positions ORDER BY time")
        assert await cursor.fetchall() == [(0,), (1,), (3,)]
    assert service.metrics.fixes_accepted._value.get() == 3
