"""The fix: one validated position report of one device."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class FixSource(enum.StrEnum):
    NATIVE = "native"
    OWNTRACKS = "owntracks"


@dataclass(frozen=True, slots=True)
class Fix:
    time: dt.datetime  # aware, UTC
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    alt_m: float | None = None
    sats: int | None = None
    seq: int | None = None
    ignition: bool | None = None
    battery_pct: int | None = None
    odometer_m: int | None = None
    source: FixSource = FixSource.NATIVE


@dataclass(frozen=True, slots=True)
class DeviceFix:
    """A fix resolved to its device, as it travels through the pipeline."""

    device_id: int
    tenant_id: int
    fix: Fix
    received_at: dt.datetime
    late: bool = False  # released after a newer fix of the same device
