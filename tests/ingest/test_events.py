"""Device events: every evt message gives one event or one rejection that says why."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import DeviceEvent, EventKind, Limits, Reason, Rejection, decode_event

NOW = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)
LIMITS = Limits()


def event(kind: str = "bin_lift", **changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "ts": "2026-12-04T07:59:30.250Z",
        "type": kind,
        "lat": 20.97123,
        "lon": 105.77231,
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not ...}


def decoded(payload: object) -> DeviceEvent | Rejection:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return decode_event(raw, LIMITS, NOW, device_id=7, tenant_id=3)


def accepted(payload: object) -> DeviceEvent:
    result = decoded(payload)
    assert isinstance(result, DeviceEvent), result
    return result


def rejected(payload: object) -> Rejection:
    result = decoded(payload)
    assert isinstance(result, Rejection), result
    return result


def test_a_bin_lift_keeps_its_device_time_and_place() -> None:
    lift = accepted(event("bin_lift"))
    assert lift == DeviceEvent(
        device_id=7,
        tenant_id=3,
        kind=EventKind.BIN_LIFT,
        time=dt.datetime(2026, 12, 4, 7, 59, 30, 250_000, tzinfo=dt.UTC),
        received_at=NOW,
        lat=20.97123,
        lon=105.77231,
    )
    assert not lift.late


def test_ignition_carries_on_or_off_and_epoch_milliseconds_work() -> None:
    on = accepted(event("ignition", value=True, ts=int(NOW.timestamp() * 1000) - 1500))
    off = accepted(event("ignition", value=False, lat=..., lon=...))
    assert (on.kind, on.value, on.time) == (
        EventKind.IGNITION,
        True,
        NOW - dt.timedelta(seconds=1.5),
    )
    assert (off.value, off.lat, off.lon) == (False, None, None)


def test_panic_and_incident_with_a_note() -> None:
    panic = accepted(event("panic", lat=..., lon=...))
    assert (panic.kind, panic.lat, panic.note) == (EventKind.PANIC, None, None)
    note = "Thùng rác bị hỏng nắp ở ngõ 12" + "!" * 469  # 500 characters
    incident = accepted(event("incident", note=note))
    assert (incident.kind, incident.note) == (EventKind.INCIDENT, note)


def test_stop_confirm_names_the_route_run_and_the_stop() -> None:
    confirm = accepted(event("stop_confirm", route_run_id=812, stop_seq=4, lat=..., lon=...))
    assert (confirm.kind, confirm.route_run_id, confirm.stop_seq) == (
        EventKind.STOP_CONFIRM,
        812,
        4,
    )


def test_what_the_simulator_sends_is_accepted() -> None:
    for kind, value in (("ignition", True), ("bin_lift", None)):
        document = {"ts": "2026-12-04T07:59:59.5Z", "type": kind, "lat": 20.9, "lon": 105.8}
        if value is not None:
            document["value"] = value
        assert accepted(document).kind == kind


@pytest.mark.parametrize(
    ("document", "reason", "detail"),
    [
        (event(type=...), Reason.MISSING_FIELD, "type is required"),
        (event("tipping"), Reason.UNKNOWN_EVENT_TYPE, "type='tipping': must be one of ignition"),
        (event("BIN_LIFT"), Reason.UNKNOWN_EVENT_TYPE, "type='BIN_LIFT'"),
        (event(type=7), Reason.BAD_TYPE, "type=7: must be text"),
        (event(ts=...), Reason.MISSING_FIELD, "ts is required"),
        (event(ts="2026-12-04T07:59:30"), Reason.BAD_TYPE, "ts='2026-12-04T07:59:30'"),
        (event(ts=1.5e12), Reason.BAD_TYPE, "ts=1500000000000.0"),
        (event(ts="2026-12-04T08:05:01Z"), Reason.FUTURE, "ts=2026-12-04T08:05:01+00:00"),
        (event(ts="2026-08-01T00:00:00Z"), Reason.STALE, "ts=2026-08-01T00:00:00+00:00"),
        (event(lat=90.5), Reason.OUT_OF_RANGE, "lat=90.5: must be in -90..90"),
        (event(lon="105.7"), Reason.BAD_TYPE, "lon='105.7': must be a number"),
        (event(lat=0, lon=0), Reason.NULL_ISLAND, "lat=0, lon=0"),
        (event(lon=...), Reason.MISSING_FIELD, "lon is required with lat=20.97123"),
        (event(lat=...), Reason.MISSING_FIELD, "lat is required with lon=105.77231"),
        (event("ignition"), Reason.MISSING_FIELD, "value is required for ignition"),
        (event("ignition", value="on"), Reason.BAD_TYPE, "value='on': must be true or false"),
        (event("bin_lift", value=1), Reason.BAD_TYPE, "value=1: must be true or false"),
        (event("stop_confirm", stop_seq=4), Reason.MISSING_FIELD, "route_run_id is required"),
        (event("stop_confirm", route_run_id=8), Reason.MISSING_FIELD, "stop_seq is required"),
        (
            event("stop_confirm", route_run_id=0, stop_seq=4),
            Reason.OUT_OF_RANGE,
            "route_run_id=0: must be in 1..",
        ),
        (
            event("stop_confirm", route_run_id=8, stop_seq=-1),
            Reason.OUT_OF_RANGE,
            "stop_seq=-1: must be in 1..2147483647",
        ),
        (
            event("stop_confirm", route_run_id="8", stop_seq=4),
            Reason.BAD_TYPE,
            "route_run_id='8': must be an integer",
        ),
        (
            event("stop_confirm", route_run_id=8, stop_seq=4.0),
            Reason.BAD_TYPE,
            "stop_seq=4.0: must be an integer",
        ),
        (
            event("stop_confirm", route_run_id=True, stop_seq=4),
            Reason.BAD_TYPE,
            "route_run_id=True",
        ),
        (event("incident", note=42), Reason.BAD_TYPE, "note=42: must be text"),
        (event("incident", note="x" * 501), Reason.OUT_OF_RANGE, "501 characters; at most 500"),
        (event("incident", note="a\x00b"), Reason.BAD_TYPE, "note='a\\x00b': contains a NUL"),
    ],
)
def test_each_rule_rejects_with_its_reason_naming_field_and_value(
    document: dict[str, object], reason: Reason, detail: str
) -> None:
    rejection = rejected(document)
    assert rejection.reason is reason
    assert detail in rejection.detail
    assert rejection.payload == orjson.dumps(document)  # the message itself is kept


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.NOT_JSON),
        (b"{", Reason.NOT_JSON),
        (b"\xff\xfe", Reason.NOT_JSON),
        (b'{"type": "panic", "note": "\\ud800"}', Reason.NOT_JSON),  # a lone surrogate
        (b"null", Reason.WRONG_SHAPE),
        (b'"bin_lift"', Reason.WRONG_SHAPE),
        (orjson.dumps([event()]), Reason.WRONG_SHAPE),  # one event per message
    ],
)
def test_messages_that_are_not_one_event_object(payload: bytes, reason: Reason) -> None:
    assert rejected(payload).reason is reason


def test_payload_size_limit_is_checked_before_parsing() -> None:
    padded = orjson.dumps(event(padding="x" * (8 * 1024)))
    rejection = rejected(padded)
    assert rejection.reason is Reason.PAYLOAD_TOO_LARGE
    assert rejection.detail == f"payload is {len(padded)} bytes; an event is at most 8192"
    small = Limits(max_payload_bytes=1024)  # the general bound applies too when smaller
    result = decode_event(
        orjson.dumps(event(padding="x" * 1024)), small, NOW, device_id=1, tenant_id=1
    )
    assert isinstance(result, Rejection)
    assert result.reason is Reason.PAYLOAD_TOO_LARGE


def test_unknown_fields_are_ignored() -> None:
    assert accepted(event(firmware="2.1.7", extra={"a": [1, 2]})).kind is EventKind.BIN_LIFT


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def mostly(good: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Usually a plausible value for the field, sometimes any JSON value."""
    return st.integers(0, 9).flatmap(lambda n: json_values if n == 0 else good)


recent_ms = int(NOW.timestamp() * 1000)
near_events = st.fixed_dictionaries(
    {
        "ts": mostly(
            st.integers(recent_ms - 100 * 86_400_000, recent_ms + 600_000)
            | st.just((NOW - dt.timedelta(minutes=3)).isoformat())
        ),
        "type": mostly(st.sampled_from([*EventKind, "tipping"])),
    },
    optional={
        "lat": mostly(st.floats(-91, 91) | st.just(0)),
        "lon": mostly(st.floats(-181, 181) | st.just(0)),
        "value": mostly(st.booleans()),
        "route_run_id": mostly(st.integers(-1, 2**63)),
        "stop_seq": mostly(st.integers(-1, 2**31 + 1)),
        "note": mostly(st.text(max_size=520)),
        "extra": json_values,
    },
)
any_objects = st.dictionaries(
    st.sampled_from(["ts", "type", "lat", "lon", "value", "route_run_id", "stop_seq", "note"]),
    json_values,
    max_size=8,
)


@settings(max_examples=600, deadline=None)
@given(near_events | any_objects)
def test_any_json_object_is_an_event_inside_every_bound_or_a_rejection(
    document: dict[str, object],
) -> None:
    try:
        raw = orjson.dumps(document)
    except TypeError:  # integers beyond 64 bits: not expressible in our JSON
        return
    result = decode_event(raw, LIMITS, NOW, device_id=1, tenant_id=1)
    if isinstance(result, Rejection):
        assert result.reason in set(Reason)
        assert result.detail
        assert result.payload == raw
        return
    assert NOW - dt.timedelta(days=90) <= result.time <= NOW + dt.timedelta(minutes=5)
    assert (result.lat is None) == (result.lon is None)
    if result.lat is not None and result.lon is not None:
        assert -90 <= result.lat <= 90
        assert -180 <= result.lon <= 180
        assert (result.lat, result.lon) != (0, 0)
    if result.kind is EventKind.IGNITION:
        assert isinstance(result.value, bool)
    if result.kind is EventKind.STOP_CONFIRM:
        assert result.route_run_id is not None
        assert result.route_run_id >= 1
        assert result.stop_seq is not None
        assert 1 <= result.stop_seq <= 2**31 - 1
    assert result.note is None or (len(result.note) <= 500 and "\x00" not in result.note)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise(payload: bytes) -> None:
    assert isinstance(
        decode_event(payload, LIMITS, NOW, device_id=1, tenant_id=1), DeviceEvent | Rejection
    )
