"""The street network as a directed graph in a local metric projection: junctions, the links
between them with their shapes, places on links and the moves between a place and the ends
of its link. `planning.street_search` searches it.

Line vertices within `MERGE_M` of each other are one point, so lines that share an end (to
the rounding of their coordinates) connect. Junctions are the points where lines end, meet
or branch; a link is the stretch of one line between two junctions, with every vertex in
between as its shape. Searching over junctions and links, not vertices, keeps the search
small on OpenStreetMap lines with many vertices; snapping still uses every segment.

Durations are whole milliseconds: the search's integer heap keys are fast and exact, and a
millisecond per link is far below the whole seconds of the matrix.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.projection import LocalProjection
from planning.errors import InvalidValue
from planning.segment_index import SegmentIndex

MERGE_M = 0.5
# The search packs a junction into the low bits of an integer heap key.
JUNCTION_BITS = 24

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
XY = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Place:
    """A point on a link, `offset_m` metres along it from its first vertex."""

    link: int
    offset_m: float


@dataclass(frozen=True, slots=True)
class Move:
    """Driving along a place's own link between the place and one of the link's ends."""

    junction: int
    duration_ms: int
    length_m: float
    end_offset_m: float  # where that end is along the link: 0 or the link's length
    # A dead end's link driven as well, from the dead end to the junction searched from
    # (leaving) or back (arriving); -1 when none. See `planning.street_search`.
    spur_arc: int = -1


@dataclass(frozen=True, slots=True)
class StreetGraph:
    """Junctions and links in metres, shared (never changed) by every network built on the
    same streets, whatever their closures."""

    projection: LocalProjection
    junction_xy: FloatArray  # (junctions, 2)
    link_ends: IntArray  # (links, 2): first and last junction in line order
    link_street: IntArray  # index of the street (line) each link is part of
    link_one_way: BoolArray
    link_length_m: FloatArray
    link_duration_ms: IntArray  # at the truck's planned speed
    link_shapes: tuple[FloatArray, ...]  # each link's vertices, (k, 2)
    link_offsets_m: tuple[FloatArray, ...]  # distance along the link of each vertex
    segment_link: IntArray
    index: SegmentIndex

    @classmethod
    def build(
        cls,
        lines_lonlat: Sequence[Sequence[tuple[float, float]]],
        one_way: Sequence[bool],
        speeds_kmh: Sequence[float],
    ) -> StreetGraph:
        lonlat = np.array([p for line in lines_lonlat for p in line], dtype=np.float64)
        west, south = lonlat.min(axis=0)
        east, north = lonlat.max(axis=0)
        projection = LocalProjection((south + north) / 2, (west + east) / 2)
        vertex_point, point_xy = _merge_vertices(projection.to_xy_array(lonlat[:, 1], lonlat[:, 0]))
        runs = _point_runs(vertex_point, [len(line) for line in lines_lonlat])
        junction_of = _junctions(runs, len(point_xy))
        ends: list[tuple[int, int]] = []
        streets: list[int] = []
        shapes: list[FloatArray] = []
        for street, run in enumerate(runs):
            cuts = [k for k, point in enumerate(run) if junction_of[point] >= 0]
            for first, last in itertools.pairwise(cuts):
                ends.append((junction_of[run[first]], junction_of[run[last]]))
                streets.append(street)
                shapes.append(point_xy[run[first : last + 1]])
        if not shapes:
            raise InvalidValue(f"streets: every line is shorter than {MERGE_M} m")
        offsets = [
            np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(s, axis=0).T)))) for s in shapes
        ]
        length_m = np.array([o[-1] for o in offsets], dtype=np.float64)
        street_array = np.array(streets, dtype=np.int64)
        speed_ms = np.asarray(speeds_kmh, dtype=np.float64)[street_array] / 3.6
        junction_xy = np.zeros((max(junction_of) + 1, 2))
        for point, junction in enumerate(junction_of):
            if junction >= 0:
                junction_xy[junction] = point_xy[point]
        if len(junction_xy) >= 1 << JUNCTION_BITS:
            raise InvalidValue(
                f"streets: {len(junction_xy)} junctions, at most {1 << JUNCTION_BITS}"
            )
        segment_link = np.repeat(np.arange(len(shapes)), [len(s) - 1 for s in shapes])
        return cls(
            projection=projection,
            junction_xy=junction_xy,
            link_ends=np.array(ends, dtype=np.int64).reshape(-1, 2),
            link_street=street_array,
            link_one_way=np.asarray(one_way, dtype=np.bool_)[street_array],
            link_length_m=length_m,
            # At least 1 ms, so that a settled junction is never improved on.
            link_duration_ms=np.maximum(1, np.rint(length_m / speed_ms * 1000)).astype(np.int64),
            link_shapes=tuple(shapes),
            link_offsets_m=tuple(offsets),
            segment_link=segment_link.astype(np.int64),
            index=SegmentIndex(
                np.concatenate([s[:-1] for s in shapes]).reshape(-1, 2),
                np.concatenate([s[1:] for s in shapes]).reshape(-1, 2),
            ),
        )

    def place(self, segment: int, fraction: float) -> Place:
        """The place `fraction` of the way along a segment (as the index finds it)."""
        link = int(self.segment_link[segment])
        k = segment - int(np.searchsorted(self.segment_link, link))  # segment within its link
        offsets = self.link_offsets_m[link]
        return Place(link, float(offsets[k] + (offsets[k + 1] - offsets[k]) * fraction))

    def exits(self, place: Place) -> list[Move]:
        """How a truck at `place` joins the junctions: towards either end of its link, only
        forwards on a one-way link unless it already stands at the first junction."""
        return self._moves(place, leaving=True)

    def entries(self, place: Place) -> list[Move]:
        """From which junctions a truck can drive along the link to `place`."""
        return self._moves(place, leaving=False)

    def _moves(self, place: Place, *, leaving: bool) -> list[Move]:
        link = place.link
        first, last = (int(j) for j in self.link_ends[link])
        length_m = float(self.link_length_m[link])
        # The end the link's direction allows, and the other one: on a two-way link, or when
        # the place is at it already (a depot at a one-way street's corner).
        allowed, other = (last, first) if leaving else (first, last)
        allowed_end_m, other_end_m = (length_m, 0.0) if leaving else (0.0, length_m)
        moves = [self._move(place, allowed, allowed_end_m)]
        if not self.link_one_way[link] or abs(other_end_m - place.offset_m) <= MERGE_M:
            moves.append(self._move(place, other, other_end_m))
        return moves

    def _move(self, place: Place, junction: int, end_offset_m: float) -> Move:
        length_m = abs(end_offset_m - place.offset_m)
        return Move(junction, self.duration_ms(place.link, length_m), length_m, end_offset_m)

    def duration_ms(self, link: int, length_m: float) -> int:
        share = length_m / float(self.link_length_m[link])
        return round(int(self.link_duration_ms[link]) * share)

    def along_link(self, a: Place, b: Place) -> tuple[int, float] | None:
        """(milliseconds, metres) straight along a shared link from a to b, when allowed."""
        if a.link != b.link or (b.offset_m < a.offset_m and self.link_one_way[a.link]):
            return None
        length_m = abs(b.offset_m - a.offset_m)
        return self.duration_ms(a.link, length_m), length_m

    # An arc is a link driven one way: 2 * link, + 1 against its line's order.

    def arc_start(self, arc: int) -> int:
        return int(self.link_ends[arc >> 1, arc & 1])

    def arc_shape(self, arc: int) -> list[XY]:
        shape = [(float(x), float(y)) for x, y in self.link_shapes[arc >> 1]]
        return shape[::-1] if arc & 1 else shape

    def stretch(self, link: int, from_m: float, to_m: float) -> list[XY]:
        """The link's shape between two offsets, in driving order."""
        if from_m > to_m:
            return self.stretch(link, to_m, from_m)[::-1]
        offsets = self.link_offsets_m[link]
        inner = self.link_shapes[link][(offsets > from_m) & (offsets < to_m)].tolist()
        return [self.point_at(link, from_m), *inner, self.point_at(link, to_m)]

    def point_at(self, link: int, offset_m: float) -> XY:
        shape, offsets = self.link_shapes[link], self.link_offsets_m[link]
        k = min(max(int(np.searchsorted(offsets, offset_m, side="right")) - 1, 0), len(shape) - 2)
        t = (offset_m - offsets[k]) / (offsets[k + 1] - offsets[k])
        if t >= 1.0:  # exactly the vertex, so that repeated points compare equal
            return float(shape[k + 1, 0]), float(shape[k + 1, 1])
        return (
            float(shape[k, 0] + (shape[k + 1, 0] - shape[k, 0]) * max(t, 0.0)),
            float(shape[k, 1] + (shape[k + 1, 1] - shape[k, 1]) * max(t, 0.0)),
        )


def _merge_vertices(vertex_xy: FloatArray) -> tuple[list[int], FloatArray]:
    """The point of each vertex, and the points' positions: a vertex within `MERGE_M` of an
    earlier point is that point."""
    cells: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
    point_xy: list[XY] = []
    vertex_point: list[int] = []
    for x, y in vertex_xy.tolist():
        ci, cj = math.floor(x / MERGE_M), math.floor(y / MERGE_M)
        near = (
            point
            for i in (ci - 1, ci, ci + 1)
            for j in (cj - 1, cj, cj + 1)
            for point in cells.get((i, j), ())
            if math.dist(point_xy[point], (x, y)) <= MERGE_M
        )
        point = next(near, -1)
        if point < 0:
            point = len(point_xy)
            point_xy.append((x, y))
            cells[ci, cj].append(point)
        vertex_point.append(point)
    return vertex_point, np.array(point_xy, dtype=np.float64).reshape(-1, 2)


def _point_runs(vertex_point: list[int], line_sizes: list[int]) -> list[list[int]]:
    """Each line as its points, with repeats (vertices merged into one point) dropped; a
    line shorter than `MERGE_M` becomes a single point and makes no link."""
    runs = []
    first = 0
    for size in line_sizes:
        points = vertex_point[first : first + size]
        first += size
        runs.append([points[0]] + [q for p, q in itertools.pairwise(points) if q != p])
    return runs


def _junctions(runs: list[list[int]], point_count: int) -> list[int]:
    """The junction number of each point, -1 for a point only inside one line's shape (it
    has exactly two segments and ends no line)."""
    segments = [0] * point_count
    is_junction = [False] * point_count
    for run in runs:
        if len(run) < 2:
            continue
        is_junction[run[0]] = is_junction[run[-1]] = True
        for point in run:
            segments[point] += 2
        segments[run[0]] -= 1
        segments[run[-1]] -= 1
    junction_of = [-1] * point_count
    count = 0
    for point in range(point_count):
        if is_junction[point] or segments[point] not in (0, 2):
            junction_of[point] = count
            count += 1
    return junction_of
