"""Linear referencing on a route run's expected path, in a local metric projection.

Where along the path is a fix? The nearest point of the whole path is the wrong answer for
routes that loop, U-turn or drive a street twice: a truck on its second lap is also a few
metres from the first. So a fix is located near the vehicle's last progress: among the
path's segments within a window behind and ahead of it, the nearest one wins. The caller
sizes the window from the time since the last fix and a top speed.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_PYTHON_WINDOW = 48  # segments; above this numpy wins


@dataclass(frozen=True, slots=True)
class Located:
    offset_m: float  # distance along the path to the nearest point
    distance_m: float  # from the fix to that point
    segment: int


class PathIndex:
    """A polyline (metres) with the cumulative distance at each vertex.

    Each number is kept once, in compact arrays (``array.array``: 8 bytes a value, read
    fast one by one from Python for a window of a few segments) that numpy views without
    copying for long stretches: thousands of routes of thousands of vertices fit in memory.
    """

    def __init__(self, xy: Sequence[tuple[float, float]]) -> None:
        points = np.asarray(xy, dtype=np.float64)
        if points.ndim != 2 or points.shape[0] < 2 or points.shape[1] != 2:
            raise ValueError(f"xy: a path needs at least 2 (x, y) points, got {points.shape}")
        delta = points[1:] - points[:-1]
        length = np.hypot(delta[:, 0], delta[:, 1])
        self._x0 = array("d", points[:-1, 0].tobytes())
        self._y0 = array("d", points[:-1, 1].tobytes())
        self._dx = array("d", delta[:, 0].tobytes())
        self._dy = array("d", delta[:, 1].tobytes())
        self._len = array("d", length.tobytes())
        self._sq = array("d", np.where(length > 0, length**2, 1.0).tobytes())
        self._cum = array("d", np.concatenate(([0.0], np.cumsum(length))).tobytes())

    def _view(self, values: array[float]) -> npt.NDArray[np.float64]:
        return np.frombuffer(values, dtype=np.float64)

    def distance_m(self, x: float, y: float) -> float:
        """Distance from ``(x, y)`` to the nearest point of the whole path: what "off the
        route" means, whichever part of the route the vehicle is near. (Asked only when the
        stretch near the progress is far, so the whole path is searched with numpy.)"""
        return self.locate(x, y).distance_m

    @property
    def length_m(self) -> float:
        return self._cum[-1]

    def point_at(self, offset_m: float) -> tuple[float, float]:
        """The path's point ``offset_m`` from its start (clamped to the path)."""
        offset_m = min(max(offset_m, 0.0), self.length_m)
        segment = min(bisect.bisect_right(self._cum, offset_m) - 1, len(self._len) - 1)
        length = self._len[segment]
        share = (offset_m - self._cum[segment]) / length if length > 0 else 0.0
        return self._x0[segment] + self._dx[segment] * share, self._y0[segment] + self._dy[
            segment
        ] * share

    def locate(
        self,
        x: float,
        y: float,
        around_m: float | None = None,
        behind_m: float = 50.0,
        ahead_m: float = 500.0,
        accept_m: float = 0.0,
    ) -> Located:
        """Where ``(x, y)`` is along the path: on the whole path when ``around_m`` is None,
        else on the stretch from ``around_m - behind_m`` to ``around_m + ahead_m``.

        ``distance_m`` is to the nearest point of that stretch. ``offset_m`` is the point
        that best explains the fix as progress: going back costs as much as being off
        the path by as many metres, so on a street driven there and back (a dead-end
        alley) the way out wins over the way in, and progress never slides backwards.
        Ahead, the first point within ``accept_m`` of the fix wins over nearer ones
        farther on: a vehicle coming back to its route, or driving into an alley it will
        drive out of, is at the earliest place along the route that explains the fix.
        """
        first, last = 0, len(self._len)
        low, high = 0.0, self.length_m
        if around_m is not None:
            low, high = max(0.0, around_m - behind_m), min(self.length_m, around_m + ahead_m)
            first = max(0, bisect.bisect_right(self._cum, low) - 1)
            last = min(last, bisect.bisect_left(self._cum, high) + 1)
            last = max(last, first + 1)
        if last - first <= _PYTHON_WINDOW:
            return self._locate_small(x, y, first, last, around_m, low, high, accept_m)
        offsets, distances = self._project(x, y, first, last, low, high)
        nearest = int(np.argmin(distances))
        best = nearest
        if around_m is not None:
            forward = (distances <= accept_m) & (offsets >= around_m)
            if forward.any():
                best = int(np.argmin(np.where(forward, offsets, np.inf)))
            else:
                best = int(np.argmin(distances + np.maximum(0.0, around_m - offsets)))
        return Located(float(offsets[best]), float(distances[nearest]), first + best)

    def _locate_small(
        self,
        x: float,
        y: float,
        first: int,
        last: int,
        around_m: float | None,
        low: float,
        high: float,
        accept_m: float,
    ) -> Located:
        x0, y0, dx, dy, sq, cum, length = (
            self._x0,
            self._y0,
            self._dx,
            self._dy,
            self._sq,
            self._cum,
            self._len,
        )
        nearest = best_score = first_ahead = math.inf
        best_segment, best_offset, first_segment = first, 0.0, first
        for k in range(first, last):
            rx, ry = x - x0[k], y - y0[k]
            share = (rx * dx[k] + ry * dy[k]) / sq[k]
            # Within the segment, and within the window (a long segment reaches past it).
            lowest = (low - cum[k]) / length[k] if length[k] > 0 else 0.0
            highest = (high - cum[k]) / length[k] if length[k] > 0 else 1.0
            share = min(max(share, 0.0, lowest), 1.0, highest)
            ex, ey = rx - dx[k] * share, ry - dy[k] * share
            distance = math.sqrt(ex * ex + ey * ey)
            offset = cum[k] + share * length[k]
            if distance < nearest:
                nearest = distance
            score = distance
            if around_m is not None:
                if offset < around_m:
                    score += around_m - offset
                elif distance <= accept_m and offset < first_ahead:
                    first_ahead, first_segment = offset, k
            if score < best_score:
                best_score, best_segment, best_offset = score, k, offset
        if first_ahead < math.inf:
            return Located(first_ahead, nearest, first_segment)
        return Located(best_offset, nearest, best_segment)

    def _project(
        self, x: float, y: float, first: int, last: int, low: float, high: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        x0, y0 = self._view(self._x0)[first:last], self._view(self._y0)[first:last]
        dx, dy = self._view(self._dx)[first:last], self._view(self._dy)[first:last]
        cumulative = self._view(self._cum)[first:last]
        length = self._view(self._len)[first:last]
        rx, ry = x - x0, y - y0
        share = (rx * dx + ry * dy) / self._view(self._sq)[first:last]
        safe_length = np.where(length > 0, length, 1.0)
        lowest = np.maximum(0.0, (low - cumulative) / safe_length)
        highest = np.minimum(1.0, (high - cumulative) / safe_length)
        share = np.minimum(np.maximum(share, lowest), highest)
        distances = np.hypot(rx - dx * share, ry - dy * share)
        offsets = cumulative + share * length
        return offsets, distances
