"""Payload decoders and fix validation (ARCHITECTURE §3).

Never raises on input: every message yields valid fixes and rejections, and
a batch with one bad fix keeps the good ones. Validation is written by hand
rather than with a pydantic model because it runs for every fix on the hot
path; each rejection names the field, the value and the allowed range.
Device events (ingest.events) are read with the same field readers.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from dataclasses import dataclass
from typing import Any

import orjson

from ingest.fix import Fix, FixSource
from ingest.topics import TopicKind

UTC = dt.UTC
_EPOCH_MS_MIN = 946_684_800_000  # 2000-01-01; smaller integers are not epoch milliseconds


class Reason(enum.StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOT_JSON = "not_json"
    WRONG_SHAPE = "wrong_shape"
    EMPTY_BATCH = "empty_batch"
    BATCH_TOO_LARGE = "batch_too_large"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    OUT_OF_RANGE = "out_of_range"
    FUTURE = "future"
    STALE = "stale"
    NULL_ISLAND = "null_island"
    UNSUPPORTED_TYPE = "unsupported_type"
    UNKNOWN_TOPIC = "unknown_topic"
    UNKNOWN_DEVICE = "unknown_device"
    INACTIVE_DEVICE = "inactive_device"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    JUMP = "jump"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str
    payload: bytes  # the whole message, or the one bad fix of a batch


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_batch_fixes: int = 1000
    max_future_s: int = 300
    max_age_s: int = 90 * 86_400
    max_speed_kmh: float = 300.0
    max_event_bytes: int = 8 * 1024  # one event object; a 500-character note fits easily


@dataclass(slots=True)
class Decoded:
    fixes: list[Fix]
    rejections: list[Rejection]


class _Invalid(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode(payload: bytes, kind: TopicKind, limits: Limits, now: dt.datetime) -> Decoded:
    """Decode one MQTT message into valid fixes and rejections."""
    if len(payload) > limits.max_payload_bytes:
        return _whole(
            payload,
            Reason.PAYLOAD_TOO_LARGE,
            f"payload is {len(payload)} bytes; at most {limits.max_payload_bytes}",
        )
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return _whole(payload, Reason.NOT_JSON, str(exc)[:300])
    if kind is TopicKind.OWNTRACKS:
        return _decode_owntracks(document, payload, limits, now)
    if isinstance(document, dict):
        try:
            return Decoded([_native_fix(document, limits, now)], [])
        except _Invalid as invalid:
            return _whole(payload, invalid.reason, invalid.detail)
    if isinstance(document, list):
        return _decode_batch(document, payload, limits, now)
    return _whole(payload, Reason.WRONG_SHAPE, "expected a fix object or an array of fixes")


def _whole(payload: bytes, reason: Reason, detail: str) -> Decoded:
    return Decoded([], [Rejection(reason, detail, payload)])


def _decode_batch(items: list[Any], payload: bytes, limits: Limits, now: dt.datetime) -> Decoded:
    if not items:
        return _whole(payload, Reason.EMPTY_BATCH, "the batch array is empty")
    if len(items) > limits.max_batch_fixes:
        return _whole(
            payload,
            Reason.BATCH_TOO_LARGE,
            f"batch has {len(items)} fixes; at most {limits.max_batch_fixes}",
        )
    result = Decoded([], [])
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise _Invalid(Reason.WRONG_SHAPE, "batch item is not a fix object")
            result.fixes.append(_native_fix(item, limits, now))
        except _Invalid as invalid:
            result.rejections.append(
                Rejection(invalid.reason, f"fix[{index}]: {invalid.detail}", _dump(item))
            )
    return result


def _dump(item: Any) -> bytes:
    try:
        return orjson.dumps(item)
    except TypeError:  # cannot happen for decoded JSON, kept as a guard
        return repr(item).encode()


def _native_fix(doc: dict[str, Any], limits: Limits, now: dt.datetime) -> Fix:
    time = _time(doc, "ts", limits, now)
    lat, lon = _position(doc, "lat", "lon")
    return Fix(
        time=time,
        lat=lat,
        lon=lon,
        speed_kmh=_number(doc, "speed_kmh", 0.0, limits.max_speed_kmh),
        heading_deg=_number(doc, "heading_deg", 0.0, 360.0),
        accuracy_m=_number(doc, "accuracy_m", 0.0, 100_000.0),
        alt_m=_number(doc, "alt_m", -1000.0, 20_000.0),
        sats=_integer(doc, "sats", 0, 255),
        seq=_integer(doc, "seq", 0, 2**63 - 1),
        ignition=_boolean(doc, "ignition"),
        battery_pct=_integer_like(doc, "battery_pct", 0, 100),
        odometer_m=_integer(doc, "odometer_m", 0, 2**63 - 1),
        source=FixSource.NATIVE,
    )


def _decode_owntracks(document: Any, payload: bytes, limits: Limits, now: dt.datetime) -> Decoded:
    if not isinstance(document, dict):
        return _whole(payload, Reason.WRONG_SHAPE, "OwnTracks messages are JSON objects")
    message_type = document.get("_type")
    if message_type != "location":
        return _whole(
            payload,
            Reason.UNSUPPORTED_TYPE,
            f"_type={str(message_type)[:40]!r}: only 'location' carries a position",
        )
    try:
        if "tst" not in document:
            raise _Invalid(Reason.MISSING_FIELD, "tst is required")
        tst = document["tst"]
        if isinstance(tst, bool) or not isinstance(tst, int):
            raise _Invalid(Reason.BAD_TYPE, f"tst={tst!r}: must be integer epoch seconds")
        time = _check_time_range(_from_epoch_ms("tst", tst * 1000), "tst", limits, now)
        lat, lon = _position(document, "lat", "lon")
        fix = Fix(
            time=time,
            lat=lat,
            lon=lon,
            speed_kmh=_number(document, "vel", 0.0, limits.max_speed_kmh),
            heading_deg=_number(document, "cog", 0.0, 360.0),
            accuracy_m=_number(document, "acc", 0.0, 100_000.0),
            alt_m=_number(document, "alt", -1000.0, 20_000.0),
            battery_pct=_integer_like(document, "batt", 0, 100),
            source=FixSource.OWNTRACKS,
        )
    except _Invalid as invalid:
        return _whole(payload, invalid.reason, invalid.detail)
    return Decoded([fix], [])


def _position(doc: dict[str, Any], lat_key: str, lon_key: str) -> tuple[float, float]:
    lat = _number(doc, lat_key, -90.0, 90.0, required=True)
    lon = _number(doc, lon_key, -180.0, 180.0, required=True)
    if lat is None or lon is None:  # required=True has raised already
        raise _Invalid(Reason.MISSING_FIELD, f"{lat_key} and {lon_key} are required")
    if lat == 0.0 and lon == 0.0:
        raise _Invalid(Reason.NULL_ISLAND, f"{lat_key}=0, {lon_key}=0: a receiver without a fix")
    return lat, lon


def _number(
    doc: dict[str, Any], key: str, low: float, high: float, *, required: bool = False
) -> float | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise _Invalid(Reason.MISSING_FIELD, f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(Reason.BAD_TYPE, f"{key}={_show(value)}: must be a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise _Invalid(Reason.OUT_OF_RANGE, f"{key}={_show(value)}: must be in {low:g}..{high:g}")
    return number


def _integer(doc: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(Reason.BAD_TYPE, f"{key}={_show(value)}: must be an integer")
    if not low <= value <= high:
        raise _Invalid(Reason.OUT_OF_RANGE, f"{key}={_show(value)}: must be in {low}..{high}")
    return value


def _integer_like(doc: dict[str, Any], key: str, low: int, high: int) -> int | None:
    """An integer field that some devices send as a float (battery 87.0)."""
    number = _number(doc, key, low, high)
    return None if number is None else round(number)


def _boolean(doc: dict[str, Any], key: str) -> bool | None:
    value = doc.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _Invalid(Reason.BAD_TYPE, f"{key}={_show(value)}: must be true or false")


def _time(doc: dict[str, Any], key: str, limits: Limits, now: dt.datetime) -> dt.datetime:
    value = doc.get(key)
    if value is None:
        raise _Invalid(Reason.MISSING_FIELD, f"{key} is required")
    if isinstance(value, str):
        if len(value) > 40:
            raise _Invalid(Reason.BAD_TYPE, f"{key}={_show(value)}: not an ISO 8601 time")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _Invalid(Reason.BAD_TYPE, f"{key}={_show(value)}: not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise _Invalid(Reason.BAD_TYPE, f"{key}={_show(value)}: needs a UTC offset or Z")
        try:
            moment = parsed.astimezone(UTC)
        except OverflowError:
            raise _Invalid(Reason.OUT_OF_RANGE, f"{key}={_show(value)}: out of range") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        moment = _from_epoch_ms(key, value)
    else:
        raise _Invalid(
            Reason.BAD_TYPE, f"{key}={_show(value)}: ISO 8601 text or integer epoch milliseconds"
        )
    return _check_time_range(moment, key, limits, now)


def _from_epoch_ms(key: str, value: int) -> dt.datetime:
    if not _EPOCH_MS_MIN <= value <= 32_503_680_000_000:  # 2000-01-01 .. 3000-01-01
        raise _Invalid(
            Reason.OUT_OF_RANGE, f"{key}={value}: epoch milliseconds between 2000 and 3000"
        )
    return dt.datetime.fromtimestamp(value / 1000, UTC)


def _check_time_range(
    moment: dt.datetime, key: str, limits: Limits, now: dt.datetime
) -> dt.datetime:
    if moment > now + dt.timedelta(seconds=limits.max_future_s):
        raise _Invalid(
            Reason.FUTURE,
            f"{key}={moment.isoformat()}: more than {limits.max_future_s} s ahead of server time",
        )
    if moment < now - dt.timedelta(seconds=limits.max_age_s):
        raise _Invalid(Reason.STALE, f"{key}={moment.isoformat()}: older than the retention window")
    return moment


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
