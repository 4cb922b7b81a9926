"""Hand-built vehicle timelines: legs of standing and driving, laid out in metres (x east,
y north) and turned into fixes, each leg remembering where its fixes begin and end."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from geo import LocalProjection
from storage import TrackFix

ORIGIN = LocalProjection(20.97, 105.78)


@dataclass(frozen=True, slots=True)
class Leg:
    kind: str  # "park", "drive" or "gap"
    first: dt.datetime  # the leg's first fix
    last: dt.datetime  # and its last
    distance_m: float  # as laid out: steps times step length


@dataclass
class Timeline:
    """Fixes every ``interval_s`` from ``start``, where the first one stands at the origin."""

    start: dt.datetime
    interval_s: float = 5.0
    device_id: int = 1
    with_speed: bool = True
    t_s: float = 0.0
    x_m: float = 0.0
    y_m: float = 0.0
    fixes: list[TrackFix] = field(default_factory=list)
    legs: list[Leg] = field(default_factory=list)

    def at(self, t_s: float) -> dt.datetime:
        return self.start + dt.timedelta(seconds=t_s)

    def park(self, duration_s: float, ignition: bool | None = None) -> Timeline:
        """Stand still: a fix every interval for ``duration_s`` (the first one interval on)."""
        steps = round(duration_s / self.interval_s)
        first = len(self.fixes)
        if not self.fixes:  # the day's first fix stands at the origin at the start
            self.fixes.append(self._fix(0.0, ignition))
        for _ in range(steps):
            self.t_s += self.interval_s
            self.fixes.append(self._fix(0.0, ignition))
        self._leg("park", first, 0.0)
        return self

    def drive(self, distance_m: float, speed_kmh: float, heading_deg: float = 90.0) -> Timeline:
        """Drive straight at ``speed_kmh``; the distance is rounded to whole steps."""
        step_m = speed_kmh / 3.6 * self.interval_s
        steps = max(1, round(distance_m / step_m))
        dx = math.sin(math.radians(heading_deg)) * step_m
        dy = math.cos(math.radians(heading_deg)) * step_m
        if not self.fixes:
            self.fixes.append(self._fix(0.0, True))
        first = len(self.fixes)
        for _ in range(steps):
            self.t_s += self.interval_s
            self.x_m += dx
            self.y_m += dy
            self.fixes.append(self._fix(speed_kmh, True))
        self._leg("drive", first, steps * step_m)
        return self

    def gap(self, duration_s: float, move_m: float = 0.0, heading_deg: float = 90.0) -> Timeline:
        """No fix for ``duration_s`` while the vehicle moves ``move_m``; the next leg's first
        fix comes one interval after."""
        self.t_s += duration_s - self.interval_s
        self.x_m += math.sin(math.radians(heading_deg)) * move_m
        self.y_m += math.cos(math.radians(heading_deg)) * move_m
        return self

    def _leg(self, kind: str, first: int, distance_m: float) -> None:
        self.legs.append(Leg(kind, self.fixes[first].time, self.fixes[-1].time, distance_m))

    def _fix(self, speed_kmh: float, ignition: bool | None) -> TrackFix:
        lat, lon = ORIGIN.to_latlon(self.x_m, self.y_m)
        return TrackFix(
            device_id=self.device_id,
            time=self.at(self.t_s),
            lat=lat,
            lon=lon,
            speed_kmh=speed_kmh if self.with_speed else None,
            heading_deg=None,
            ignition=ignition,
            odometer_m=None,
        )


def position_row(fix: TrackFix, tenant_id: int) -> tuple[object, ...]:
    """The fix as a row for storage.write_positions (POSITION_COLUMNS order)."""
    return (
        fix.device_id,
        fix.time,
        tenant_id,
        fix.time,
        fix.lat,
        fix.lon,
        fix.speed_kmh,
        fix.heading_deg,
        5.0,
        None,
        9,
        None,
        fix.ignition,
        None,
        fix.odometer_m,
        "native",
    )
