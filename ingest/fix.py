"""What travels through the pipeline per device: fixes (position reports) and device events."""

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
    late: bool = False  # released after a newer item of the same device
    # Rejected by the jump filter: dead-lettered, not in positions, but the rules
    # engine sees it (in order) to report a gps_jump alert.
    jump: bool = False

    @property
    def time(self) -> dt.datetime:
        return self.fix.time


class EventKind(enum.StrEnum):
    IGNITION = "ignition"  # value: on (true) or off (false)
    BIN_LIFT = "bin_lift"  # the truck's lift sensor emptied a bin
    PANIC = "panic"  # a person pressed the panic button
    INCIDENT = "incident"  # an incident report, with an optional note
    STOP_CONFIRM = "stop_confirm"  # a collector's phone confirms a route stop was served


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A validated device event (topic ``.../evt``), resolved to its device."""

    device_id: int
    tenant_id: int
    kind: EventKind
    time: dt.datetime  # aware, UTC: when it happened on the device
    received_at: dt.datetime
    lat: float | None = None  # both or neither
    lon: float | None = None
    value: bool | None = None  # ignition: on or off
    route_run_id: int | None = None  # stop_confirm
    stop_seq: int | None = None  # stop_confirm
    note: str | None = None  # incident (any kind may carry one)
    late: bool = False  # released after a newer item of the same device


# One device's items, released to consumers in time order by the reorder buffer.
DeviceItem = DeviceFix | DeviceEvent
