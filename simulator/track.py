"""A device's true motion: a piecewise-linear path in time, in the city's metric projection.

Built from drive and dwell steps; sampled at fix times. Knot times never decrease; a dwell is
two knots at the same place. Everything the stream publishes and everything the ground truth
says is read off one Track, so the two cannot disagree.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sample:
    x_m: float
    y_m: float
    speed_kmh: float
    heading_deg: float
    noise_m: float  # the GPS accuracy where the device is
    moving: bool
    street_id: int | None  # the street being driven, None while dwelling or off the network
    distance_m: float  # travelled since the track began (an odometer)


@dataclass(slots=True)
class TrackBuilder:
    """Appends steps; ``build()`` freezes them into a Track."""

    start_s: float
    x_m: float
    y_m: float
    noise_m: float
    _t: list[float] = field(default_factory=list)
    _x: list[float] = field(default_factory=list)
    _y: list[float] = field(default_factory=list)
    _noise: list[float] = field(default_factory=list)  # per segment
    _street: list[int | None] = field(default_factory=list)  # per segment
    _d: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._d.append(0.0)
        self._t.append(self.start_s)
        self._x.append(self.x_m)
        self._y.append(self.y_m)

    @property
    def now_s(self) -> float:
        return self._t[-1]

    @property
    def here(self) -> tuple[float, float]:
        return self._x[-1], self._y[-1]

    def dwell(self, seconds: float, noise_m: float | None = None) -> None:
        if seconds <= 0:
            return
        self._append(self._x[-1], self._y[-1], self._t[-1] + seconds, noise_m, None)

    def drive(
        self,
        points_xy: Sequence[tuple[float, float]],
        speeds_kmh: Sequence[float],
        street_ids: Sequence[int],
        noise_m: Sequence[float],
        speed_factor: float = 1.0,
    ) -> None:
        """Follow a polyline from its first point (which must be where the track is)."""
        for k in range(len(points_xy) - 1):
            (x0, y0), (x1, y1) = points_xy[k], points_xy[k + 1]
            length_m = math.hypot(x1 - x0, y1 - y0)
            if length_m < 1e-9:
                continue
            speed_mps = max(0.5, speeds_kmh[k] * speed_factor / 3.6)
            self._append(x1, y1, self._t[-1] + length_m / speed_mps, noise_m[k], street_ids[k])

    def _append(
        self, x: float, y: float, t: float, noise_m: float | None, street_id: int | None
    ) -> None:
        self._d.append(self._d[-1] + math.hypot(x - self._x[-1], y - self._y[-1]))
        self._t.append(t)
        self._x.append(x)
        self._y.append(y)
        if noise_m is None:  # a dwell keeps the accuracy of where the device stopped
            noise_m = self._noise[-1] if self._noise else self.noise_m
        self._noise.append(noise_m)
        self._street.append(street_id)

    def build(self) -> Track:
        return Track(
            tuple(self._t),
            tuple(self._x),
            tuple(self._y),
            tuple(self._noise),
            tuple(self._street),
            tuple(self._d),
        )


@dataclass(frozen=True, slots=True)
class Track:
    t_s: tuple[float, ...]
    x_m: tuple[float, ...]
    y_m: tuple[float, ...]
    noise_m: tuple[float, ...]  # per segment
    street_ids: tuple[int | None, ...]  # per segment
    d_m: tuple[float, ...]  # distance travelled at each knot

    @property
    def start_s(self) -> float:
        return self.t_s[0]

    @property
    def end_s(self) -> float:
        return self.t_s[-1]

    def at(self, t: float) -> Sample:
        """Where the device is at ``t``; before the start and after the end it stands still."""
        times = self.t_s
        if len(times) == 1 or t <= times[0]:
            return self._still(0, 0)
        if t >= times[-1]:
            return self._still(len(times) - 1, len(times) - 2)
        k = bisect.bisect_right(times, t) - 1
        t0, t1 = times[k], times[k + 1]
        x0, y0, x1, y1 = self.x_m[k], self.y_m[k], self.x_m[k + 1], self.y_m[k + 1]
        dx, dy = x1 - x0, y1 - y0
        length_m = math.hypot(dx, dy)
        if length_m < 1e-9 or t1 <= t0:
            return Sample(
                x0, y0, 0.0, self._heading_before(k), self.noise_m[k], False, None, self.d_m[k]
            )
        share = (t - t0) / (t1 - t0)
        return Sample(
            x0 + dx * share,
            y0 + dy * share,
            length_m / (t1 - t0) * 3.6,
            math.degrees(math.atan2(dx, dy)) % 360.0,
            self.noise_m[k],
            True,
            self.street_ids[k],
            self.d_m[k] + length_m * share,
        )

    def _still(self, knot: int, segment: int) -> Sample:
        noise = self.noise_m[segment] if self.noise_m else 5.0
        return Sample(
            self.x_m[knot],
            self.y_m[knot],
            0.0,
            self._heading_before(knot),
            noise,
            False,
            None,
            self.d_m[knot],
        )

    def _heading_before(self, knot: int) -> float:
        """The direction of the last movement up to ``knot`` (a parked truck keeps its heading)."""
        for k in range(min(knot, len(self.t_s) - 1), 0, -1):
            dx, dy = self.x_m[k] - self.x_m[k - 1], self.y_m[k] - self.y_m[k - 1]
            if abs(dx) + abs(dy) > 1e-9:
                return math.degrees(math.atan2(dx, dy)) % 360.0
        return 0.0

    def stationary_intervals(self) -> list[tuple[float, float, float, float]]:
        """Every stretch of standing still: ``(start_s, end_s, x_m, y_m)``, merged."""
        found: list[tuple[float, float, float, float]] = []
        for k in range(len(self.t_s) - 1):
            if self.x_m[k] == self.x_m[k + 1] and self.y_m[k] == self.y_m[k + 1]:
                if self.t_s[k + 1] <= self.t_s[k]:
                    continue
                if (
                    found
                    and found[-1][1] == self.t_s[k]
                    and found[-1][2:]
                    == (
                        self.x_m[k],
                        self.y_m[k],
                    )
                ):
                    found[-1] = (found[-1][0], self.t_s[k + 1], self.x_m[k], self.y_m[k])
                else:
                    found.append((self.t_s[k], self.t_s[k + 1], self.x_m[k], self.y_m[k]))
        return found
