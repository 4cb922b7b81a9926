"""What each device sends, in order: fixes from its Track, events, and the message faults.

A device's script is a generator of Emissions in non-decreasing scenario time; the runner
merges all scripts by time. Everything is drawn from the device's own random generator, so
the same seed gives the same bytes. Truth entries are recorded when the script emits them.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from geo import LocalProjection
from simulator.actors import fix_noise
from simulator.faults import FaultKind, FaultRates, TruthEntry, TruthLog
from simulator.track import Track

JUMP_M = (300.0, 1000.0)
# What can happen between two fixes; at the same instant, the lower number goes first.
_EVENT, _BAD_LOGIN, _BACK_ONLINE, _GONE_OFFLINE = range(4)
SKEW_WINDOW_S = (600.0, 1800.0)


class Action(enum.IntEnum):
    PUBLISH = 0
    DROP = 1  # the connection is lost (no DISCONNECT: the broker sends the will)
    RECONNECT = 2
    BAD_LOGIN = 3  # a login attempt with a wrong secret, on a connection of its own


@dataclass(frozen=True, slots=True)
class Emission:
    at_s: float
    action: Action
    topic: str = ""
    payload: bytes = b""
    retain: bool = False


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    at_s: float
    kind: str  # "ignition" or "bin_lift"
    value: bool | None = None


@dataclass(slots=True)
class DeviceScript:
    """Everything one device will send; ``emissions()`` yields it."""

    tenant: str
    slug: str
    truck: bool
    track: Track
    interval_s: float
    phase_s: float
    owntracks: bool = False
    events: list[DeviceEvent] = field(default_factory=list)
    route_truth: list[TruthEntry] = field(default_factory=list)
    ignition_s: tuple[float, float | None] | None = None  # on, off (trucks)
    battery_pct: float = 100.0
    noise_m: float | None = None  # GPS noise everywhere, instead of the streets' own

    @property
    def username(self) -> str:
        return f"{self.slug}@{self.tenant}"

    @property
    def position_topic(self) -> str:
        if self.owntracks:
            return f"owntracks/{self.username}/{self.slug}"
        return f"sanitrack/{self.tenant}/dev/{self.slug}/pos"

    @property
    def native_topic(self) -> str:
        return f"sanitrack/{self.tenant}/dev/{self.slug}/pos"

    @property
    def status_topic(self) -> str:
        return f"sanitrack/{self.tenant}/dev/{self.slug}/status"

    @property
    def event_topic(self) -> str:
        return f"sanitrack/{self.tenant}/dev/{self.slug}/evt"


def _windows(
    rng: random.Random, per_hour: float, length_s: tuple[float, float], until_s: float
) -> list[tuple[float, float]]:
    """Non-overlapping windows starting as a Poisson process of ``per_hour``."""
    windows: list[tuple[float, float]] = []
    if per_hour <= 0:
        return windows
    t = rng.expovariate(per_hour / 3600.0)
    while t < until_s:
        end = t + rng.uniform(*length_s)
        windows.append((t, end))
        t = end + rng.expovariate(per_hour / 3600.0)
    return windows


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


MALFORMED: tuple[tuple[str, bytes], ...] = (
    ("not_json", b'{"ts": "2026-12-04T08:15:30Z", "lat": 20.97,'),
    ("bad_encoding", b"\xff\xfe\x00garbage"),
    ("missing_field", b'{"lat": 20.97123, "lon": 105.77231}'),
    ("out_of_range", b'{"ts": "%s", "lat": 95.5, "lon": 105.77231}'),
    ("bad_type", b'{"ts": "%s", "lat": "twenty", "lon": 105.77231}'),
    ("null_island", b'{"ts": "%s", "lat": 0, "lon": 0}'),
)


def emissions(
    script: DeviceScript,
    start: dt.datetime,
    until_s: float,
    rates: FaultRates,
    truth: TruthLog,
    rng: random.Random,
    projection: LocalProjection,
) -> Iterator[Emission]:
    """Yield the device's emissions from ``0`` to ``until_s`` scenario seconds."""
    kind = FaultKind.DROPOUT if script.truck else FaultKind.STORE_AND_FORWARD
    offline = _windows(
        rng,
        rates.dropout_per_device_hour if script.truck else rates.store_and_forward_per_phone_hour,
        rates.dropout_s if script.truck else rates.store_and_forward_s,
        until_s,
    )
    pending_truth = list(script.route_truth)
    skew: tuple[float, float, float] | None = None
    if rng.random() < rates.clock_skew_device_share:
        begins = rng.uniform(0.0, until_s)
        size = round(rng.uniform(*rates.clock_skew_s) * rng.choice((-1.0, 1.0)), 3)
        skew = (begins, begins + rng.uniform(*SKEW_WINDOW_S), size)
        pending_truth.append(
            TruthEntry(
                FaultKind.CLOCK_SKEW, script.slug, skew[0], skew[1], details={"skew_s": size}
            )
        )
    pending_truth.sort(key=lambda e: e.start_s)
    bad_logins = [
        w[0] for w in _windows(rng, rates.wrong_credentials_per_device_hour, (1, 1), until_s)
    ]
    events = sorted(script.events, key=lambda e: e.at_s)
    seq = 0
    held: bytes | None = None  # a fix held back to arrive after the next one
    buffered: list[dict[str, Any]] = []
    dropped = False
    window = 0
    t = script.phase_s

    while t < until_s:
        while pending_truth and pending_truth[0].start_s <= t:
            truth.record(pending_truth.pop(0))
        # What happened since the last fix, in time order: events, wrong logins, coverage
        # lost and regained.
        while True:
            if window < len(offline) and not dropped and offline[window][1] <= t:
                window += 1  # lost and regained between two fixes: nothing to tell
                continue
            due: list[tuple[float, int]] = []
            if events and events[0].at_s <= t:
                due.append((events[0].at_s, _EVENT))
            if bad_logins and bad_logins[0] <= t:
                due.append((bad_logins[0], _BAD_LOGIN))
            if window < len(offline):
                begins, ends = offline[window]
                if dropped and ends <= t:
                    due.append((ends, _BACK_ONLINE))
                elif not dropped and begins <= t:
                    due.append((begins, _GONE_OFFLINE))
            if not due:
                break
            at, what = min(due)
            if what == _EVENT:
                event = events.pop(0)
                if not dropped:  # a device out of coverage loses its events too
                    payload = _event_payload(event, start, script.track, projection)
                    yield Emission(at, Action.PUBLISH, script.event_topic, payload)
            elif what == _BAD_LOGIN:
                bad_logins.pop(0)
                truth.record(TruthEntry(FaultKind.WRONG_CREDENTIALS, script.slug, at, at))
                yield Emission(at, Action.BAD_LOGIN)
            elif what == _BACK_ONLINE:
                yield from _reconnect(script, at, buffered)
                buffered, dropped = [], False
                window += 1
            else:
                fixes = math.ceil((min(ends, until_s) - t) / script.interval_s)
                truth.record(TruthEntry(kind, script.slug, begins, ends, details={"fixes": fixes}))
                yield Emission(begins, Action.DROP)
                dropped = True
        # Drawn even when it is lost, so a dropout does not shift the rest of the stream.
        fix = _fix(script, t, seq, start, rng, rates, projection, skew, truth)
        seq += 1
        if dropped:
            if not script.truck:
                buffered.append(fix)
            t += script.interval_s
            continue
        payload = _encode(script, fix)
        if held is not None:
            yield Emission(t, Action.PUBLISH, script.position_topic, payload)
            yield Emission(t, Action.PUBLISH, script.position_topic, held)
            held = None
        elif rng.random() < rates.out_of_order_share:
            held = payload
            truth.record(
                TruthEntry(
                    FaultKind.OUT_OF_ORDER,
                    script.slug,
                    t,
                    t + script.interval_s,
                    details={"seq": seq - 1},
                )
            )
        else:
            yield Emission(t, Action.PUBLISH, script.position_topic, payload)
            if rng.random() < rates.duplicate_share:
                truth.record(
                    TruthEntry(FaultKind.DUPLICATE, script.slug, t, t, details={"seq": seq - 1})
                )
                yield Emission(t, Action.PUBLISH, script.position_topic, payload)
        if rng.random() < rates.malformed_share:
            reason, template = MALFORMED[rng.randrange(len(MALFORMED))]
            bad = template.replace(b"%s", _iso(start + dt.timedelta(seconds=t)).encode())
            truth.record(
                TruthEntry(FaultKind.MALFORMED, script.slug, t, t, details={"reason": reason})
            )
            yield Emission(t, Action.PUBLISH, script.native_topic, bad)
        t += script.interval_s
    if held is not None:
        yield Emission(until_s, Action.PUBLISH, script.position_topic, held)
    if dropped and offline[window][1] <= until_s:
        yield from _reconnect(script, offline[window][1], buffered)
    while pending_truth and pending_truth[0].start_s < until_s:
        truth.record(pending_truth.pop(0))


def _reconnect(
    script: DeviceScript, at_s: float, buffered: list[dict[str, Any]]
) -> Iterator[Emission]:
    yield Emission(at_s, Action.RECONNECT)
    if not buffered:
        return
    if script.owntracks:  # the OwnTracks app sends its queue one message at a time
        for fix in buffered:
            yield Emission(at_s, Action.PUBLISH, script.position_topic, _encode(script, fix))
        return
    for first in range(0, len(buffered), 1000):  # a batch holds at most 1,000 fixes
        chunk = buffered[first : first + 1000]
        yield Emission(at_s, Action.PUBLISH, script.position_topic, orjson.dumps(chunk))


def _fix(
    script: DeviceScript,
    t: float,
    seq: int,
    start: dt.datetime,
    rng: random.Random,
    rates: FaultRates,
    projection: LocalProjection,
    skew: tuple[float, float, float] | None,
    truth: TruthLog,
) -> dict[str, Any]:
    sample = script.track.at(t)
    noise_m = sample.noise_m if script.noise_m is None else script.noise_m
    dx, dy = fix_noise(rng, noise_m)
    accuracy_m = round(noise_m * rng.uniform(0.8, 1.2), 1)
    if rng.random() < rates.gps_jump_share:
        distance_m, bearing = rng.uniform(*JUMP_M), rng.uniform(0.0, 2 * math.pi)
        dx, dy = distance_m * math.sin(bearing), distance_m * math.cos(bearing)
        truth.record(
            TruthEntry(
                FaultKind.GPS_JUMP,
                script.slug,
                t,
                t,
                details={"seq": seq, "distance_m": round(distance_m, 1)},
            )
        )
    lat, lon = projection.to_latlon(sample.x_m + dx, sample.y_m + dy)
    stamp = t
    if skew is not None and skew[0] <= t < skew[1]:
        stamp += skew[2]
    moment = start + dt.timedelta(seconds=stamp)
    speed = max(0.0, sample.speed_kmh + rng.gauss(0.0, 1.0)) if sample.moving else 0.0
    fix: dict[str, Any] = {
        "ts": _iso(moment) if script.truck else round(moment.timestamp() * 1000),
        "lat": round(lat, 7),
        "lon": round(lon, 7),
        "speed_kmh": round(speed, 1),
        "heading_deg": round(sample.heading_deg, 1),
        "accuracy_m": accuracy_m,
        "seq": seq,
    }
    if script.truck:
        on = (
            script.ignition_s is not None
            and script.ignition_s[0] <= t
            and (script.ignition_s[1] is None or t < script.ignition_s[1])
        )
        fix["ignition"] = on
        fix["sats"] = max(4, min(14, round(14 - noise_m / 3 + rng.uniform(-1, 1))))
        fix["odometer_m"] = round(sample.distance_m)
    else:
        fix["battery_pct"] = max(5, round(script.battery_pct - t / 3600.0 * 4.0))
    return fix


def _encode(script: DeviceScript, fix: dict[str, Any]) -> bytes:
    if not script.owntracks:
        return orjson.dumps(fix)
    return orjson.dumps(
        {
            "_type": "location",
            "tst": fix["ts"] // 1000,
            "lat": fix["lat"],
            "lon": fix["lon"],
            "acc": round(fix["accuracy_m"]),
            "vel": round(fix["speed_kmh"]),
            "cog": round(fix["heading_deg"]) % 360,
            "batt": fix["battery_pct"],
            "tid": script.slug[-2:],
        }
    )


def _event_payload(
    event: DeviceEvent, start: dt.datetime, track: Track, projection: LocalProjection
) -> bytes:
    sample = track.at(event.at_s)
    lat, lon = projection.to_latlon(sample.x_m, sample.y_m)
    document: dict[str, Any] = {
        "ts": _iso(start + dt.timedelta(seconds=event.at_s)),
        "type": event.kind,
        "lat": round(lat, 7),
        "lon": round(lon, 7),
    }
    if event.value is not None:
        document["value"] = event.value
    return orjson.dumps(document)
