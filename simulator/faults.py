"""What the simulator does wrong on purpose, how often, and the record of it (ground truth)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import IO, Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator


class FaultKind(enum.StrEnum):
    WRONG_ROUTE = "wrong_route"  # a different street for a while (or for good)
    SKIPPED_STOP = "skipped_stop"  # driven past without dwelling
    LATE_STOP = "late_stop"  # served after its time window closed
    GPS_JUMP = "gps_jump"  # one fix hundreds of metres off
    DROPOUT = "dropout"  # offline for minutes; the fixes are lost
    STORE_AND_FORWARD = "store_and_forward"  # offline; the fixes arrive later as one batch
    DUPLICATE = "duplicate"  # the same message twice
    OUT_OF_ORDER = "out_of_order"  # a fix delivered after the next one
    CLOCK_SKEW = "clock_skew"  # the device's clock runs off for a while
    MALFORMED = "malformed"  # a payload the server must refuse (dead letter)
    WRONG_CREDENTIALS = "wrong_credentials"  # a login with a wrong secret


class FaultRates(BaseModel):
    """Each fault's rate; ``per_hour`` rates are per device (or vehicle) and hour of operation,
    ``share`` rates are the fraction of opportunities (fixes, messages, stops, runs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wrong_route_per_vehicle_hour: float = Field(default=0.4, ge=0, le=20)
    wrong_route_never_back_share: float = Field(default=0.1, ge=0, le=1)
    skipped_stop_share: float = Field(default=0.02, ge=0, le=1)
    late_run_share: float = Field(default=0.2, ge=0, le=1)
    gps_jump_share: float = Field(default=0.002, ge=0, le=0.5)
    dropout_per_device_hour: float = Field(default=0.2, ge=0, le=20)
    dropout_s: tuple[float, float] = (60.0, 600.0)
    store_and_forward_per_phone_hour: float = Field(default=0.3, ge=0, le=20)
    store_and_forward_s: tuple[float, float] = (120.0, 900.0)
    duplicate_share: float = Field(default=0.005, ge=0, le=0.5)
    out_of_order_share: float = Field(default=0.005, ge=0, le=0.5)
    clock_skew_device_share: float = Field(default=0.02, ge=0, le=1)
    clock_skew_s: tuple[float, float] = (30.0, 240.0)
    malformed_share: float = Field(default=0.002, ge=0, le=0.5)
    wrong_credentials_per_device_hour: float = Field(default=0.05, ge=0, le=20)

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        for name in ("dropout_s", "store_and_forward_s", "clock_skew_s"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name}: ({low}, {high}) must be 0 < low <= high")
        return self

    def scaled(self, factor: float) -> FaultRates:
        """Every rate times ``factor`` (durations and shares of kinds unchanged)."""
        kept = {"wrong_route_never_back_share", "dropout_s", "store_and_forward_s", "clock_skew_s"}
        values: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if name not in kept:
                upper = next((m.le for m in info.metadata if hasattr(m, "le")), None)
                value = value * factor if upper is None else min(upper, value * factor)
            values[name] = value
        return FaultRates(**values)


PRESETS: dict[str, FaultRates] = {
    "none": FaultRates().scaled(0.0),
    "light": FaultRates().scaled(0.25),
    "default": FaultRates(),
    "heavy": FaultRates().scaled(4.0),
}


def fault_rates(preset: str, overrides: dict[str, Any] | None = None) -> FaultRates:
    """A preset by name, with some rates replaced (``{"duplicate_share": 0.01}``)."""
    if preset not in PRESETS:
        raise ValueError(f"faults={preset!r}: choose one of {', '.join(PRESETS)}")
    if not overrides:
        return PRESETS[preset]
    return FaultRates(**{**PRESETS[preset].model_dump(), **overrides})


@dataclass(frozen=True, slots=True)
class TruthEntry:
    """One thing the simulator did wrong on purpose, in scenario seconds."""

    kind: FaultKind
    device: str
    start_s: float
    end_s: float | None  # None: it never ended (a truck that never came back)
    route_run: str | None = None
    stop: int | None = None
    service_point: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def document(self, start: dt.datetime) -> dict[str, Any]:
        def at(seconds: float | None) -> str | None:
            if seconds is None:
                return None
            moment = start + dt.timedelta(seconds=seconds)
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

        return {
            "kind": str(self.kind),
            "device": self.device,
            "route_run": self.route_run,
            "stop": self.stop,
            "service_point": self.service_point,
            "start": at(self.start_s),
            "end": at(self.end_s),
            "details": self.details,
        }


class TruthLog:
    """Collects truth entries as the stream emits them; writes them as JSON lines."""

    def __init__(self, start: dt.datetime, sink: IO[bytes] | None = None) -> None:
        self.start = start
        self.entries: list[TruthEntry] = []
        self.counts: dict[FaultKind, int] = dict.fromkeys(FaultKind, 0)
        self._sink = sink

    def record(self, entry: TruthEntry) -> None:
        self.entries.append(entry)
        self.counts[entry.kind] += 1
        if self._sink is not None:
            self._sink.write(orjson.dumps(entry.document(self.start)) + b"\n")

    def __len__(self) -> int:
        return len(self.entries)
