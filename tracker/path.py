"""Linear referencing on a route run's expected path, in a local metric projection.

Where along the path is a fix? The nearest point of the whole path is the wrong answer for
routes that loop, U-turn or drive a street twice: a truck on its second lap is also a few
metres from the first. So a fix is located near the vehicle's last progress: among the
path's segments within a window behind and ahead of it, the nearest one wins. The caller
sizes the window from the time since the last fix and a top speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Located:
    offset_m: float  # distance along the path to the nearest point
    distance_m: float  # from the fix to that point
    segment: int


class PathIndex:
    """A polyline (metres) with the cumulative distance at each vertex."""

    def __init__(self, xy: Sequence[tuple[float, float]]) -> None:
        points = np.asarray(xy, dtype=np.float64)
        if points.ndim != 2 or points.shape[0] < 2 or points.shape[1] != 2:
            raise ValueError(f"xy: a path needs at least 2 (x, y) points, got {points.shape}")
        self._start = points[:-1]
        self._delta = points[1:] - points[:-1]
        self._length = np.hypot(self._delta[:, 0], self._delta[:, 1])
        self._cumulative = np.concatenate(([0.0], np.cumsum(self._length)))
        self._squared = np.where(self._length > 0, self._length**2, 1.0)

    @property
    def length_m(self) -> float:
        return float(self._cumulative[-1])

    def point_at(self, offset_m: float) -> tuple[float, float]:
        """The path's point ``offset_m`` from its start (clamped to the path)."""
        offset_m = min(max(offset_m, 0.0), self.length_m)
        segment = int(np.searchsorted(self._cumulative, offset_m, side="right")) - 1
        segment = min(segment, len(self._length) - 1)
        share = (
            (offset_m - self._cumulative[segment]) / self._length[segment]
            if self._length[segment] > 0
            else 0.0
        )
        x, y = self._start[segment] + self._delta[segment] * share
        return float(x), float(y)

    def locate(
        self,
        x: float,
        y: float,
        around_m: float | None = None,
        behind_m: float = 50.0,
        ahead_m: float = 500.0,
    ) -> Located:
        """The nearest point of the path to ``(x, y)``: of the whole path when ``around_m``
        is None, else of the stretch from ``around_m - behind_m`` to ``around_m + ahead_m``."""
        first, last = 0, len(self._length)
        if around_m is not None:
            first = max(0, int(np.searchsorted(self._cumulative, around_m - behind_m)) - 1)
            last = min(last, int(np.searchsorted(self._cumulative, around_m + ahead_m)) + 1)
            last = max(last, first + 1)
        offsets, distances = self._project(x, y, first, last)
        best = int(np.argmin(distances))
        return Located(float(offsets[best]), float(distances[best]), first + best)

    def _project(
        self, x: float, y: float, first: int, last: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        start, delta = self._start[first:last], self._delta[first:last]
        relative = np.array([x, y]) - start
        share = np.clip((relative * delta).sum(axis=1) / self._squared[first:last], 0.0, 1.0)
        nearest = start + delta * share[:, None]
        distances = np.hypot(nearest[:, 0] - x, nearest[:, 1] - y)
        offsets = self._cumulative[first:last] + share * self._length[first:last]
        return offsets, distances
