"""A uniform grid over straight street segments, for "which open segment is nearest to this
point?" and "which segments are within this radius?".

Each cell lists the segments whose bounding box overlaps it. A query reads the point's cell,
then rings of cells around it, and stops once the best segment found is nearer than anything
in the next ring could be.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# Near a typical street segment's length: a query reads a few cells, a long segment fills few.
CELL_M = 50.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class SegmentIndex:
    """Segment k runs from `starts_xy[k]` to `ends_xy[k]` (metres)."""

    def __init__(self, starts_xy: FloatArray, ends_xy: FloatArray) -> None:
        if len(starts_xy) == 0:
            raise ValueError("segments must not be empty")
        self._starts = starts_xy
        self._deltas = ends_xy - starts_xy
        self._length_sq = np.einsum("ij,ij->i", self._deltas, self._deltas)
        low = np.floor(np.minimum(starts_xy, ends_xy) / CELL_M).astype(np.int64)
        high = np.floor(np.maximum(starts_xy, ends_xy) / CELL_M).astype(np.int64)
        cells: dict[tuple[int, int], list[int]] = {}
        for segment, ((i0, j0), (i1, j1)) in enumerate(
            zip(low.tolist(), high.tolist(), strict=True)
        ):
            for i in range(i0, i1 + 1):
                for j in range(j0, j1 + 1):
                    cells.setdefault((i, j), []).append(segment)
        self._cells = {cell: np.array(found, dtype=np.int64) for cell, found in cells.items()}
        self._low = (int(low[:, 0].min()), int(low[:, 1].min()))
        self._high = (int(high[:, 0].max()), int(high[:, 1].max()))

    def nearest(self, x: float, y: float, open_segments: BoolArray) -> tuple[int, float, float]:
        """(segment, fraction along it, distance in metres) of the nearest open segment; the
        lower segment wins a tie. Segment -1 when none is open."""
        ci, cj = math.floor(x / CELL_M), math.floor(y / CELL_M)
        (i_low, j_low), (i_high, j_high) = self._low, self._high
        # Rings nearer than the occupied cells are empty; rings past them add nothing.
        first = max(0, i_low - ci, ci - i_high, j_low - cj, cj - j_high)
        last = max(abs(ci - i_low), abs(ci - i_high), abs(cj - j_low), abs(cj - j_high))
        best = (math.inf, -1, 0.0)  # (distance, segment, fraction)
        for ring in range(first, last + 1):
            found = [self._cells[c] for c in _ring(ci, cj, ring) if c in self._cells]
            if found:
                segments = np.concatenate(found) if len(found) > 1 else found[0]
                segments = segments[open_segments[segments]]
                if segments.size:
                    fractions, distances = self._feet(x, y, segments)
                    k = int(np.lexsort((segments, distances))[0])
                    if (float(distances[k]), int(segments[k])) < best[:2]:
                        best = (float(distances[k]), int(segments[k]), float(fractions[k]))
            # Anything in ring + 1 or beyond is at least `ring` whole cells away.
            if best[0] <= ring * CELL_M:
                break
        return best[1], best[2], best[0]

    def within(self, x: float, y: float, radius_m: float) -> list[tuple[float, int]]:
        """(distance in metres, segment) of every segment within `radius_m` of (x, y)."""
        reach = math.ceil(radius_m / CELL_M)
        ci, cj = math.floor(x / CELL_M), math.floor(y / CELL_M)
        found = [
            self._cells[i, j]
            for i in range(ci - reach, ci + reach + 1)
            for j in range(cj - reach, cj + reach + 1)
            if (i, j) in self._cells
        ]
        if not found:
            return []
        segments = np.unique(np.concatenate(found))
        _, distances = self._feet(x, y, segments)
        near = distances <= radius_m
        return list(zip(distances[near].tolist(), segments[near].tolist(), strict=True))

    def _feet(self, x: float, y: float, segments: IntArray) -> tuple[FloatArray, FloatArray]:
        """Fraction along each segment of its point nearest to (x, y), and the distance."""
        start, delta = self._starts[segments], self._deltas[segments]
        dx, dy = x - start[:, 0], y - start[:, 1]
        t = (dx * delta[:, 0] + dy * delta[:, 1]) / self._length_sq[segments]
        t = np.clip(t, 0.0, 1.0)
        return t, np.hypot(dx - t * delta[:, 0], dy - t * delta[:, 1])


def _ring(ci: int, cj: int, ring: int) -> list[tuple[int, int]]:
    """The cells at Chebyshev distance `ring` from (ci, cj)."""
    if ring == 0:
        return [(ci, cj)]
    cells = [(i, j) for j in (cj - ring, cj + ring) for i in range(ci - ring, ci + ring + 1)]
    cells += [(i, j) for i in (ci - ring, ci + ring) for j in range(cj - ring + 1, cj + ring)]
    return cells
