"""Hostile input through the real service into the real database: nothing escapes,
every item of every message is a stored row, a dead letter or a counted duplicate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from ingest import EventKind, IngestService, Limits, MqttEndpoint, TopicKind, decode
from storage import Pool, count_dead_letters, count_positions
from storage.device_events import count_device_events
from tests.support import ingest_settings, make_devices

NOW = dt.datetime.now(dt.UTC)


def collect(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """Draw ``count`` examples from a strategy (the test itself is async)."""
    drawn: list[Any] = []

    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None)
    @given(strategy)
    def draw(value: Any) -> None:
        drawn.append(value)

    draw()
    return drawn


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
fixes = st.fixed_dictionaries(
    {
        "ts": st.one_of(
            st.integers(),
            st.text(max_size=30),
            st.just((NOW - dt.timedelta(minutes=1)).isoformat()),
        ),
        "lat": st.one_of(scalars, st.floats(-91, 91)),
        "lon": st.one_of(scalars, st.floats(-181, 181)),
    },
    optional={"speed_kmh": scalars, "seq": scalars, "ignition": scalars},
)


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A plausible value four times in five, any scalar otherwise."""
    return st.integers(0, 4).flatmap(lambda n: scalars if n == 0 else good)


now_ms = int(NOW.timestamp() * 1000)
events = st.fixed_dictionaries(
    {
        "ts": mostly(
            st.integers(0, 60_000).map(lambda ms: (NOW - dt.timedelta(milliseconds=ms)).isoformat())
            | st.integers(now_ms - 60_000, now_ms)
        ),
        "type": mostly(st.sampled_from(EventKind)),
    },
    optional={
        "lat": mostly(st.floats(-91, 91)),
        "lon": mostly(st.floats(-181, 181)),
        "value": mostly(st.booleans()),
        "route_run_id": mostly(st.integers(-1, 2**64)),
        "stop_seq": mostly(st.integers(-1, 2**32)),
        "note": mostly(st.text(max_size=600)),
    },
)


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return orjson.dumps(value)
    except TypeError:  # integers past 64 bits: send their text, which orjson then refuses
        return repr(value).encode()


async def test_hostile_messages_are_all_accounted_for(pool: Pool) -> None:
    [device] = await make_devices(pool, 1)
    payloads = [
        as_bytes(p)
        for p in collect(
            st.binary(max_size=600)
            | fixes
            | st.lists(fixes, max_size=5)
            | st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=10),
            300,
        )
    ]
    service = IngestService(ingest_settings(), pool, MqttEndpoint("127.0.0.1", 1))
    topic = device.topic
    for mid, payload in enumerate(payloads, start=1):
        await service.handle(topic, payload, mid, 0)
    await service.handle("sanitrack/../../etc/passwd", b"{}", 10_000, 0)
    await service.handle("owntracks/not-a-login/x", b"{}", 10_001, 0)
    await service.flush()
    limits = Limits(max_age_s=90 * 86_400)
    items = sum(
        len(d.fixes) + len(d.rejections)
        for d in (decode(p, TopicKind.POSITIONS, limits, dt.datetime.now(dt.UTC)) for p in payloads)
    )
    async with pool.connection() as conn:
        rows = await count_positions(conn)
        letters = await count_dead_letters(conn)
        assert await count_dead_letters(conn, "unknown_topic") == 2
    duplicates = int(service.metrics.duplicates._value.get())
    assert rows + (letters - 2) + duplicates == items
    assert service.status().pending_messages == 0  # every message was completed


async def test_hostile_events_are_all_accounted_for(pool: Pool) -> None:
    """Whatever the decoder lets through, the device_events table accepts."""
    [device] = await make_devices(pool, 1)
    payloads = [
        as_bytes(p)
        for p in collect(
            st.sampled_from(  # half of them event objects
                [st.binary(max_size=300), st.lists(events, max_size=2), scalars, *[events] * 3]
            ).flatmap(lambda shape: shape),
            300,
        )
    ]
    service = IngestService(ingest_settings(), pool, MqttEndpoint("127.0.0.1", 1))
    topic = f"sanitrack/{device.tenant}/dev/{device.slug}/evt"
    for mid, payload in enumerate(payloads, start=1):
        await service.handle(topic, payload, mid, 0)
    await service.flush()
    async with pool.connection() as conn:
        stored = await count_device_events(conn)
        letters = await count_dead_letters(conn)
        assert await count_dead_letters(conn, "storage_refused") == 0
    duplicates = int(service.metrics.duplicates._value.get())
    assert stored + letters + duplicates == len(payloads)
    assert stored > 0, (stored, letters, duplicates)
    assert service.status().pending_messages == 0
