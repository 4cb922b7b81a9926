"""Decoders and validation: every input gives fixes or rejections, never an exception."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import Limits, Reason, TopicKind, decode

NOW = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)
LIMITS = Limits()


def good(**changes: object) -> dict[str, object]:
    fix: dict[str, object] = {
        "ts": "2026-12-04T07:59:30.250Z",
        "lat": 20.97123,
        "lon": 105.77231,
        "speed_kmh": 23.4,
        "heading_deg": 181.0,
        "accuracy_m": 5.0,
        "alt_m": 12.0,
        "sats": 9,
        "seq": 12345,
        "ignition": True,
        "battery_pct": 87,
        "odometer_m": 123456,
    }
    fix.update(changes)
    return {k: v for k, v in fix.items() if v is not ...}


def one(payload: object, kind: TopicKind = TopicKind.POSITIONS) -> tuple[int, list[Reason]]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    result = decode(raw, kind, LIMITS, NOW)
    return len(result.fixes), [r.reason for r in result.rejections]


def test_a_full_native_fix_keeps_every_field() -> None:
    [fix] = decode(orjson.dumps(good()), TopicKind.POSITIONS, LIMITS, NOW).fixes
    assert fix.time == dt.datetime(2026, 12, 4, 7, 59, 30, 250_000, tzinfo=dt.UTC)
    assert (fix.lat, fix.lon, fix.speed_kmh, fix.heading_deg) == (20.97123, 105.77231, 23.4, 181.0)
    assert (fix.sats, fix.seq, fix.ignition, fix.battery_pct, fix.odometer_m) == (
        9,
        12345,
        True,
        87,
        123456,
    )


def test_epoch_milliseconds_and_offsets_are_the_same_instant() -> None:
    a = decode(
        orjson.dumps(good(ts=1_764_835_170_250)), TopicKind.POSITIONS, Limits(max_age_s=10**9), NOW
    ).fixes[0]
    b = decode(
        orjson.dumps(good(ts="2025-12-04T14:59:30.250+07:00")),
        TopicKind.POSITIONS,
        Limits(max_age_s=10**9),
        NOW,
    ).fixes[0]
    assert a.time == b.time == dt.datetime(2025, 12, 4, 7, 59, 30, 250_000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"lat": 90.5}, Reason.OUT_OF_RANGE),
        ({"lon": -180.01}, Reason.OUT_OF_RANGE),
        ({"lat": 0, "lon": 0}, Reason.NULL_ISLAND),
        ({"lat": ...}, Reason.MISSING_FIELD),
        ({"ts": ...}, Reason.MISSING_FIELD),
        ({"lat": "20.9"}, Reason.BAD_TYPE),
        ({"lat": True}, Reason.BAD_TYPE),
        ({"speed_kmh": 301}, Reason.OUT_OF_RANGE),
        ({"speed_kmh": -1}, Reason.OUT_OF_RANGE),
        ({"heading_deg": 360.5}, Reason.OUT_OF_RANGE),
        ({"sats": 2.5}, Reason.BAD_TYPE),
        ({"battery_pct": 101}, Reason.OUT_OF_RANGE),
        ({"ignition": "on"}, Reason.BAD_TYPE),
        ({"ts": "2026-12-04T07:59:30"}, Reason.BAD_TYPE),  # no offset: ambiguous
        ({"ts": "last tuesday"}, Reason.BAD_TYPE),
        ({"ts": 1.5e12}, Reason.BAD_TYPE),
        ({"ts": 12345}, Reason.OUT_OF_RANGE),
        ({"ts": "2026-12-04T08:05:01Z"}, Reason.FUTURE),
        ({"ts": "2026-08-01T00:00:00Z"}, Reason.STALE),
    ],
)
def test_each_bound_rejects_with_its_reason(changes: dict[str, object], reason: Reason) -> None:
    assert one(good(**changes)) == (0, [reason])


def test_five_minutes_ahead_is_still_accepted() -> None:
    assert one(good(ts="2026-12-04T08:05:00Z")) == (1, [])


def test_a_batch_keeps_its_good_fixes_and_names_the_bad_one() -> None:
    result = decode(
        orjson.dumps([good(), good(lat=95), "x", good(seq=2)]), TopicKind.POSITIONS, LIMITS, NOW
    )
    assert len(result.fixes) == 2
    assert [(r.reason, r.detail.split(":")[0]) for r in result.rejections] == [
        (Reason.OUT_OF_RANGE, "fix[1]"),
        (Reason.WRONG_SHAPE, "fix[2]"),
    ]
    assert orjson.loads(result.rejections[0].payload)["lat"] == 95


def test_batch_limits() -> None:
    assert one([]) == (0, [Reason.EMPTY_BATCH])
    assert one([good()] * 1001) == (0, [Reason.BATCH_TOO_LARGE])
    assert one([good()] * 1000)[0] == 1000


def test_payload_size_limit_is_checked_before_parsing() -> None:
    assert one(b" " * (256 * 1024 + 1)) == (0, [Reason.PAYLOAD_TOO_LARGE])


def test_owntracks_location_maps_to_a_fix() -> None:
    message = {
        "_type": "location",
        "tst": 1764835170,
        "lat": 20.97,
        "lon": 105.77,
        "acc": 12,
        "vel": 5,
        "cog": 270,
        "alt": 9,
        "batt": 55,
        "tid": "p1",
    }
    [fix] = decode(orjson.dumps(message), TopicKind.OWNTRACKS, Limits(max_age_s=10**9), NOW).fixes
    assert (fix.accuracy_m, fix.speed_kmh, fix.heading_deg, fix.battery_pct) == (12, 5, 270, 55)
    assert str(fix.source) == "owntracks"
    assert one({"_type": "transition", "tst": 1}, TopicKind.OWNTRACKS) == (
        0,
        [Reason.UNSUPPORTED_TYPE],
    )
    assert one([message], TopicKind.OWNTRACKS) == (0, [Reason.WRONG_SHAPE])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from(list(TopicKind)))
def test_random_bytes_never_raise(payload: bytes, kind: TopicKind) -> None:
    result = decode(payload, kind, LIMITS, NOW)
    assert result.fixes or result.rejections


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "ts",
                "lat",
                "lon",
                "speed_kmh",
                "heading_deg",
                "accuracy_m",
                "sats",
                "seq",
                "ignition",
                "battery_pct",
                "odometer_m",
                "alt_m",
                "extra",
            ]
        ),
        json_values,
        max_size=12,
    )
)
def test_random_fix_objects_are_valid_or_rejected_with_a_reason(doc: dict[str, object]) -> None:
    try:
        raw = orjson.dumps(doc)
    except TypeError:  # integers beyond 64 bits: not expressible in our JSON
        return
    result = decode(raw, TopicKind.POSITIONS, LIMITS, NOW)
    assert len(result.fixes) + len(result.rejections) == 1
    for fix in result.fixes:  # whatever passes is inside every bound
        assert -90 <= fix.lat <= 90
        assert -180 <= fix.lon <= 180
        assert (fix.lat, fix.lon) != (0, 0)
        assert NOW - dt.timedelta(days=90) <= fix.time <= NOW + dt.timedelta(minutes=5)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=3000))
def test_deep_nesting_is_rejected_not_crashed(depth: int) -> None:
    result = decode(b"[" * depth + b"]" * depth, TopicKind.POSITIONS, LIMITS, NOW)
    assert not result.fixes
    assert result.rejections[0].reason in {Reason.NOT_JSON, Reason.EMPTY_BATCH, Reason.WRONG_SHAPE}
