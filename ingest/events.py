"""Device events (topic ``sanitrack/{tenant}/dev/{device}/evt``): decoding and validation.

One message carries one event object::

    {"ts": "2026-12-04T08:15:30.250Z",  # or integer epoch milliseconds; required
     "type": "bin_lift",                 # ignition | bin_lift | panic | incident | stop_confirm
     "lat": 20.97, "lon": 105.77,        # optional; both or neither
     "value": true,                      # ignition: required (on / off)
     "route_run_id": 812, "stop_seq": 4, # stop_confirm: required, positive
     "note": "bin damaged"}              # optional text, at most 500 characters

The rules are the fixes' (ingest.decode): never raises on input, the time is
neither too far ahead nor older than retention, a position is valid and not
(0, 0); each rejection names the field, the value and what is allowed.
Fields not listed above are ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from ingest.decode import (
    Limits,
    Reason,
    Rejection,
    _boolean,
    _integer,
    _Invalid,
    _position,
    _show,
    _time,
)
from ingest.fix import DeviceEvent, EventKind

MAX_NOTE_CHARS = 500
_MAX_ROUTE_RUN_ID = 2**63 - 1  # route_runs.id is a bigint
_MAX_STOP_SEQ = 2**31 - 1  # route_stops.seq is an integer
_KINDS = ", ".join(EventKind)


def decode_event(
    payload: bytes, limits: Limits, now: dt.datetime, *, device_id: int, tenant_id: int
) -> DeviceEvent | Rejection:
    """Decode one evt message of a resolved device; ``now`` is when it was received."""
    max_bytes = min(limits.max_event_bytes, limits.max_payload_bytes)
    if len(payload) > max_bytes:
        return Rejection(
            Reason.PAYLOAD_TOO_LARGE,
            f"payload is {len(payload)} bytes; an event is at most {max_bytes}",
            payload,
        )
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return Rejection(Reason.NOT_JSON, str(exc)[:300], payload)
    if not isinstance(document, dict):
        return Rejection(Reason.WRONG_SHAPE, "expected one event object", payload)
    try:
        return _event(document, limits, now, device_id, tenant_id)
    except _Invalid as invalid:
        return Rejection(invalid.reason, invalid.detail, payload)


def _event(
    doc: dict[str, Any], limits: Limits, now: dt.datetime, device_id: int, tenant_id: int
) -> DeviceEvent:
    kind = _kind(doc)
    time = _time(doc, "ts", limits, now)
    lat, lon = _optional_position(doc)
    value = _boolean(doc, "value")
    route_run_id = _integer(doc, "route_run_id", 1, _MAX_ROUTE_RUN_ID)
    stop_seq = _integer(doc, "stop_seq", 1, _MAX_STOP_SEQ)
    if kind is EventKind.IGNITION and value is None:
        raise _Invalid(
            Reason.MISSING_FIELD, "value is required for ignition (true: on, false: off)"
        )
    if kind is EventKind.STOP_CONFIRM:
        if route_run_id is None:
            raise _Invalid(Reason.MISSING_FIELD, "route_run_id is required for stop_confirm")
        if stop_seq is None:
            raise _Invalid(Reason.MISSING_FIELD, "stop_seq is required for stop_confirm")
    return DeviceEvent(
        device_id=device_id,
        tenant_id=tenant_id,
        kind=kind,
        time=time,
        received_at=now,
        lat=lat,
        lon=lon,
        value=value,
        route_run_id=route_run_id,
        stop_seq=stop_seq,
        note=_note(doc),
    )


def _kind(doc: dict[str, Any]) -> EventKind:
    value = doc.get("type")
    if value is None:
        raise _Invalid(Reason.MISSING_FIELD, "type is required")
    if not isinstance(value, str):
        raise _Invalid(Reason.BAD_TYPE, f"type={_show(value)}: must be text, one of {_KINDS}")
    try:
        return EventKind(value)
    except ValueError:
        raise _Invalid(
            Reason.UNKNOWN_EVENT_TYPE, f"type={_show(value)}: must be one of {_KINDS}"
        ) from None


def _optional_position(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    has_lat, has_lon = doc.get("lat") is not None, doc.get("lon") is not None
    if not has_lat and not has_lon:
        return None, None
    if has_lat != has_lon:
        given, missing = ("lat", "lon") if has_lat else ("lon", "lat")
        raise _Invalid(
            Reason.MISSING_FIELD, f"{missing} is required with {given}={_show(doc[given])}"
        )
    return _position(doc, "lat", "lon")


def _note(doc: dict[str, Any]) -> str | None:
    value = doc.get("note")
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(Reason.BAD_TYPE, f"note={_show(value)}: must be text")
    if len(value) > MAX_NOTE_CHARS:
        raise _Invalid(
            Reason.OUT_OF_RANGE,
            f"note={_show(value)}: {len(value)} characters; at most {MAX_NOTE_CHARS}",
        )
    if "\x00" in value:  # PostgreSQL text and jsonb cannot hold it
        raise _Invalid(Reason.BAD_TYPE, f"note={_show(value)}: contains a NUL character")
    return value
