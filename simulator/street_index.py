"""A uniform grid over street segments, for "which street is nearest to this point?".

Each cell lists the segments whose bounding box overlaps it. A query looks
at the point's cell, then rings of cells around it, and stops once the best
segment found is nearer than anything in the next ring could be.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from simulator.plane import Point

CELL_M = 100.0


class StreetIndex:
    """Nearest segment among `segments[i] = (start, end)`, by straight-line distance."""

    def __init__(self, segments: Sequence[tuple[Point, Point]], ids: Sequence[int]) -> None:
        if not segments:
            raise ValueError("segments must not be empty")
        self._segments = list(segments)
        self._ids = list(ids)
        cells: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        for k, ((x0, y0), (x1, y1)) in enumerate(self._segments):
            for i in range(_cell(min(x0, x1)), _cell(max(x0, x1)) + 1):
                for j in range(_cell(min(y0, y1)), _cell(max(y0, y1)) + 1):
                    cells[i, j].append(k)
        self._cells = dict(cells)
        self._i_range = (min(i for i, _ in self._cells), max(i for i, _ in self._cells))
        self._j_range = (min(j for _, j in self._cells), max(j for _, j in self._cells))

    def nearest(self, x: float, y: float) -> tuple[int, float, float]:
        """(id, fraction along the segment from its start, distance in metres); the lower id
        wins a tie."""
        ci, cj = _cell(x), _cell(y)
        (i_low, i_high), (j_low, j_high) = self._i_range, self._j_range
        # Rings nearer than the occupied cells are empty; rings past them add nothing.
        first = max(0, i_low - ci, ci - i_high, j_low - cj, cj - j_high)
        last = max(abs(ci - i_low), abs(ci - i_high), abs(cj - j_low), abs(cj - j_high))
        best = (math.inf, -1, 0.0)  # (distance, id, fraction)
        seen: set[int] = set()
        for ring in range(first, last + 1):
            for cell in _ring(ci, cj, ring, self._i_range, self._j_range):
                for k in self._cells.get(cell, ()):
                    if k in seen:
                        continue
                    seen.add(k)
                    fraction, distance = _foot(x, y, *self._segments[k])
                    if (distance, self._ids[k]) < best[:2]:
                        best = (distance, self._ids[k], fraction)
            # Anything in ring + 1 or beyond is at least `ring` whole cells away.
            if best[0] <= ring * CELL_M:
                break
        return best[1], best[2], best[0]


def _cell(coordinate: float) -> int:
    return math.floor(coordinate / CELL_M)


def _ring(
    ci: int, cj: int, ring: int, i_range: tuple[int, int], j_range: tuple[int, int]
) -> list[tuple[int, int]]:
    """The cells at Chebyshev distance `ring` from (ci, cj), within the given ranges."""
    if ring == 0:
        return [(ci, cj)]
    i_low, i_high = max(ci - ring, i_range[0]), min(ci + ring, i_range[1])
    j_low, j_high = max(cj - ring + 1, j_range[0]), min(cj + ring - 1, j_range[1])
    cells = []
    for j in (cj - ring, cj + ring):  # the bottom and top rows, corners included
        if j_range[0] <= j <= j_range[1]:
            cells += [(i, j) for i in range(i_low, i_high + 1)]
    for i in (ci - ring, ci + ring):  # the left and right columns, corners excluded
        if i_range[0] <= i <= i_range[1]:
            cells += [(i, j) for j in range(j_low, j_high + 1)]
    return cells


def _foot(x: float, y: float, a: Point, b: Point) -> tuple[float, float]:
    """Fraction along a -> b of the point nearest to (x, y), and the distance to it."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length_sq = dx * dx + dy * dy
    t = 0.0 if length_sq == 0 else ((x - a[0]) * dx + (y - a[1]) * dy) / length_sq
    t = min(1.0, max(0.0, t))
    return t, math.hypot(x - a[0] - t * dx, y - a[1] - t * dy)
