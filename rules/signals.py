"""Building alert signals: who they are about, their keys and their times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from alerts import AlertKind, AlertSignal, Change, Resolution, Severity


@dataclass(frozen=True, slots=True)
class Subject:
    """The device (and vehicle) an alert is about."""

    tenant_id: int
    device_id: int
    vehicle_id: int | None
    label: str  # plate or person, for messages


def moment(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def alert_key(kind: AlertKind, subject: Subject, t: float, *parts: object) -> str:
    """Names an alert for good: the same evidence always gives the same key."""
    tail = ":".join(str(p) for p in parts)
    return f"{kind}:{subject.device_id}:{tail}:{round(t * 1000)}"


def stored_keys(signals: Iterable[AlertSignal]) -> Callable[[str], str]:
    """The key the store holds each alert under once ``signals`` are applied: an opening
    that ``replaces`` a key renames that alert (late data moved its start)."""
    renames = {s.replaces: s.key for s in signals if s.replaces is not None}

    def stored(key: str) -> str:
        while key in renames:
            key = renames[key]
        return key

    return stored


def key_stem(key: str) -> str:
    """What an alert is about (kind, device, run, stop...): its key less the time it opened."""
    return key.rpartition(":")[0]


def signal(
    change: Change,
    key: str,
    kind: AlertKind,
    severity: Severity,
    subject: Subject,
    t: float,
    message: str,
    evidence: dict[str, Any],
    *,
    route_run_id: int | None = None,
    stop_seq: int | None = None,
    resolution: Resolution | None = None,
) -> AlertSignal:
    return AlertSignal(
        change=change,
        key=key,
        kind=kind,
        severity=severity,
        tenant_id=subject.tenant_id,
        device_id=subject.device_id,
        vehicle_id=subject.vehicle_id,
        route_run_id=route_run_id,
        stop_seq=stop_seq,
        at=moment(t),
        message=message,
        evidence=evidence,
        resolution=resolution,
    )


def fix_evidence(t: float, lat: float, lon: float, **facts: float | None) -> dict[str, Any]:
    """One fix as evidence: its time, where it was and what was measured there."""
    document: dict[str, Any] = {
        "at": moment(t).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "lat": round(lat, 7),
        "lon": round(lon, 7),
    }
    for name, value in facts.items():
        if value is not None:
            document[name] = round(value, 1)
    return document
