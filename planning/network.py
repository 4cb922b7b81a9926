"""The planner's travel times and the paths it draws, behind one interface.

`StraightLine` guesses from great-circle distances (no street map yet); `StreetNetwork`
drives the tenant's streets: fastest paths by time, one-way streets and closed streets
respected, each point snapped to its nearest open street.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from geo.projection import EARTH_RADIUS_M, haversine_m
from planning.errors import InvalidValue, PlanningError
from planning.problem import TravelMatrix
from planning.street_graph import XY, BoolArray, FloatArray, IntArray, Move, Place, StreetGraph
from planning.street_search import UNREACHED_MS, SearchGraph, dijkstra
from planning.streets import MapStreet, StreetKind

# What an unreachable pair costs in the matrix (seconds and metres): finite, so that solvers
# keep working, and far above any real day's driving, so that no plan uses it.
UNREACHABLE = 10**7

DEFAULT_SPEED_KMH: Mapping[StreetKind, float] = {
    StreetKind.ARTERIAL: 35.0,
    StreetKind.PRIMARY: 30.0,
    StreetKind.SECONDARY: 22.0,
    StreetKind.RESIDENTIAL: 18.0,
    StreetKind.ALLEY: 10.0,
    StreetKind.OTHER: 15.0,
}
_MAX_SPEED_KMH = 150.0

LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Leg:
    """A drivable path: first point is where a snapped onto the streets, last is b's."""

    points: tuple[tuple[float, float], ...]  # [lon, lat], GeoJSON order
    length_m: float
    duration_s: float


class MatrixProvider(Protocol):
    def travel(self, points: Sequence[LatLon]) -> TravelMatrix:
        """Durations and distances between (lat, lon) points, rows in the same order."""
        ...

    def path(self, a: LatLon, b: LatLon) -> Leg:
        """The drivable path from a to b."""
        ...


class NoPath(PlanningError):
    """No open street leads from a to b (a one-way trap or a piece cut off)."""

    def __init__(self, a: LatLon, b: LatLon) -> None:
        super().__init__(f"no drivable path from {a} to {b}")
        self.a, self.b = a, b


@dataclass(frozen=True, slots=True)
class StraightLine:
    """Great-circle distance × circuity at one speed: for a tenant without a street map."""

    circuity: float = 1.35  # road distance over straight distance, typical of a city grid
    speed_kmh: float = 18.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.circuity <= 3.0:
            raise InvalidValue(f"circuity: {self.circuity} must be within [1, 3]")
        if not 0.0 < self.speed_kmh <= _MAX_SPEED_KMH:
            raise InvalidValue(f"speed_kmh: {self.speed_kmh} must be within (0, 150] km/h")

    def travel(self, points: Sequence[LatLon]) -> TravelMatrix:
        latlon = np.radians(np.asarray(points, dtype=np.float64).reshape(-1, 2))
        lat, lon = latlon[:, 0], latlon[:, 1]
        half_chord = (
            np.sin((lat[None, :] - lat[:, None]) / 2) ** 2
            + np.cos(lat[:, None])
            * np.cos(lat[None, :])
            * np.sin((lon[None, :] - lon[:, None]) / 2) ** 2
        )
        straight_m = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, half_chord)))
        road_m = straight_m * self.circuity
        return _matrix(road_m / (self.speed_kmh / 3.6), road_m)

    def path(self, a: LatLon, b: LatLon) -> Leg:
        road_m = haversine_m(*a, *b) * self.circuity
        return Leg(((a[1], a[0]), (b[1], b[0])), road_m, road_m / (self.speed_kmh / 3.6))


class StreetNetwork:
    """Fastest paths on the tenant's streets. Build with `from_streets`."""

    def __init__(self, graph: StreetGraph, street_count: int, blocked: frozenset[int]) -> None:
        self._graph = graph
        self._street_count = street_count
        self._blocked = blocked
        self._open: BoolArray = ~np.isin(graph.link_street, sorted(blocked))
        if not self._open.any():
            raise InvalidValue("blocked: every street is closed, nothing can be driven")
        self._open_segments: BoolArray = self._open[graph.segment_link]
        self._search = SearchGraph(graph, self._open)

    @classmethod
    def from_streets(
        cls,
        streets: Sequence[MapStreet],
        *,
        speed_kmh_by_kind: Mapping[StreetKind, float] | None = None,
        speed_factor: float = 0.91,
        blocked: frozenset[int] = frozenset(),
    ) -> StreetNetwork:
        """A street's speed is its own `speed_kmh`, else its kind's (`speed_kmh_by_kind` over
        `DEFAULT_SPEED_KMH`); a loaded truck plans at `speed_factor` of it."""
        if not 0.0 < speed_factor <= 2.0:
            raise InvalidValue(f"speed_factor: {speed_factor} must be within (0, 2]")
        speeds = {**DEFAULT_SPEED_KMH, **(speed_kmh_by_kind or {})}
        for kind, speed in speeds.items():
            if not 0.0 < speed <= _MAX_SPEED_KMH:
                raise InvalidValue(f"speed_kmh_by_kind[{kind}]: {speed} must be within (0, 150]")
        if not streets:
            raise InvalidValue("streets: at least one street is needed")
        for n, street in enumerate(streets):
            _check_street(n, street)
        graph = StreetGraph.build(
            [street.line for street in streets],
            [street.one_way for street in streets],
            [(street.speed_kmh or speeds[street.kind]) * speed_factor for street in streets],
        )
        return cls(graph, len(streets), frozenset()).with_blocked(blocked)

    @property
    def blocked(self) -> frozenset[int]:
        """Indexes (in the streets it was built from) of the streets closed to traffic."""
        return self._blocked

    def with_blocked(self, street_indexes: Iterable[int]) -> StreetNetwork:
        """A copy with these streets closed as well (sharing this network's geometry)."""
        closing = frozenset(street_indexes)
        for index in closing:
            if not 0 <= index < self._street_count:
                raise InvalidValue(f"blocked: street {index} not within [0, {self._street_count})")
        if closing <= self._blocked:
            return self
        return StreetNetwork(self._graph, self._street_count, self._blocked | closing)

    def streets_near(self, lat: float, lon: float, radius_m: float) -> list[int]:
        """Street indexes with some part within `radius_m` of the point, nearest first."""
        if not 0.0 <= radius_m <= 10_000.0:
            raise InvalidValue(f"radius_m: {radius_m} must be within [0, 10000]")
        x, y = self._graph.projection.to_xy(lat, lon)
        nearest: dict[int, float] = {}
        for distance_m, segment in self._graph.index.within(x, y, radius_m):
            street = int(self._graph.link_street[self._graph.segment_link[segment]])
            nearest[street] = min(distance_m, nearest.get(street, distance_m))
        return sorted(nearest, key=lambda street: (nearest[street], street))

    def travel(self, points: Sequence[LatLon]) -> TravelMatrix:
        places = self._places(points)
        exits = [self._search.exits(place) for place in places]
        entries = [self._search.entries(place) for place in places]
        out_junctions = sorted({move.junction for moves in exits for move in moves})
        in_junctions = sorted({move.junction for moves in entries for move in moves})
        between_ms, between_m = self._between(out_junctions, in_junctions)
        out_column, out_ms, out_m = _moves_table(exits, out_junctions)
        in_column, in_ms, in_m = _moves_table(entries, in_junctions)
        best_ms = np.full((len(places), len(places)), np.inf)
        best_m = np.full_like(best_ms, np.inf)
        # Every way of leaving a's link, crossing the junctions and entering b's link.
        for leave in range(2):
            rows_ms, rows_m = between_ms[out_column[:, leave]], between_m[out_column[:, leave]]
            for enter in range(2):
                ms = out_ms[:, leave, None] + rows_ms[:, in_column[:, enter]]
                ms += in_ms[None, :, enter]
                metres = out_m[:, leave, None] + rows_m[:, in_column[:, enter]]
                metres += in_m[None, :, enter]
                _keep_better(best_ms, best_m, ms, metres)
        self._along_links(places, best_ms, best_m)
        np.fill_diagonal(best_ms, 0.0)
        np.fill_diagonal(best_m, 0.0)
        return _matrix(best_ms / 1000, best_m)

    def unreachable(self, points: Sequence[LatLon]) -> list[int]:
        """Indexes of the points that cannot be reached from point 0 (the depot) or cannot
        get back to it."""
        places = self._places(points)
        if not places:
            return []
        search, depot = self._search, places[0]
        from_depot = dijkstra(search.forward, search.exits(depot)).duration_ms
        to_depot = dijkstra(search.reverse, search.entries(depot)).duration_ms
        stranded = []
        for n, place in enumerate(places[1:], start=1):
            reached = any(from_depot[m.junction] < UNREACHED_MS for m in search.entries(place))
            returns = any(to_depot[m.junction] < UNREACHED_MS for m in search.exits(place))
            reached = reached or self._graph.along_link(depot, place) is not None
            returns = returns or self._graph.along_link(place, depot) is not None
            if not (reached and returns):
                stranded.append(n)
        return stranded

    def path(self, a: LatLon, b: LatLon) -> Leg:
        graph = self._graph
        start, end = self._places([a, b])
        exits, entries = self._search.exits(start), self._search.entries(end)
        tree = dijkstra(self._search.forward, exits, [move.junction for move in entries])
        along = graph.along_link(start, end)
        best: tuple[float, float, Move | None] = (np.inf, np.inf, None)
        if along is not None:
            best = (*along, None)
        for move in entries:
            via_ms = tree.duration_ms[move.junction] + move.duration_ms
            via_m = tree.length_m[move.junction] + move.length_m
            if via_ms < UNREACHED_MS and (via_ms, via_m) < best[:2]:
                best = (via_ms, via_m, move)
        ms, metres, entry = best
        if ms == np.inf:
            raise NoPath(a, b)
        if entry is None:
            xy = graph.stretch(start.link, start.offset_m, end.offset_m)
        else:
            xy = self._drawn(start, end, exits, entry, tree.arc_in)
        return Leg(self._lonlat(xy), float(metres), float(ms) / 1000)

    def _drawn(
        self, start: Place, end: Place, exits: list[Move], entry: Move, arc_in: list[int]
    ) -> list[XY]:
        """The shape of a search's path: out of the start's link, the arcs back from the
        entry's junction to the junction the search started from, into the end's link."""
        graph = self._graph
        arcs: list[int] = []
        junction = entry.junction
        while arc_in[junction] >= 0:
            arcs.append(arc_in[junction])
            junction = graph.arc_start(arcs[-1])
        # The exit the path began with: the cheapest into that junction, as in the search.
        leave = min((m for m in exits if m.junction == junction), key=_cost)
        xy = graph.stretch(start.link, start.offset_m, leave.end_offset_m)
        for arc in [leave.spur_arc, *reversed(arcs), entry.spur_arc]:
            xy += graph.arc_shape(arc) if arc >= 0 else []
        return xy + graph.stretch(end.link, entry.end_offset_m, end.offset_m)

    def _places(self, points: Sequence[LatLon]) -> list[Place]:
        """Each point's place on its nearest open street."""
        latlon = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if not ((np.abs(latlon[:, 0]) <= 90).all() and (np.abs(latlon[:, 1]) <= 180).all()):
            raise InvalidValue("points: every point must be (lat, lon) in degrees")
        xy = self._graph.projection.to_xy_array(latlon[:, 0], latlon[:, 1])
        places = []
        for x, y in xy.tolist():
            segment, fraction, _ = self._graph.index.nearest(x, y, self._open_segments)
            places.append(self._graph.place(segment, fraction))
        return places

    def _between(
        self, out_junctions: list[int], in_junctions: list[int]
    ) -> tuple[FloatArray, FloatArray]:
        """Fastest (milliseconds, metres) from each out-junction to each in-junction, inf
        when unreachable, plus a last row and column of inf for a missing move: one search
        per junction of the smaller side, on the forward or the reverse graph."""
        ms = np.full((len(out_junctions) + 1, len(in_junctions) + 1), np.inf)
        metres = np.full_like(ms, np.inf)
        forward = len(out_junctions) <= len(in_junctions)
        sources, targets = (
            (out_junctions, in_junctions) if forward else (in_junctions, out_junctions)
        )
        adjacency = self._search.forward if forward else self._search.reverse
        for k, source in enumerate(sources):
            tree = dijkstra(adjacency, [Move(source, 0, 0.0, 0.0)], targets)
            row_ms = np.asarray(tree.duration_ms, dtype=np.float64)[targets]
            row_ms[row_ms >= UNREACHED_MS] = np.inf
            row_m = np.asarray(tree.length_m)[targets]
            if forward:
                ms[k, :-1], metres[k, :-1] = row_ms, row_m
            else:
                ms[:-1, k], metres[:-1, k] = row_ms, row_m
        return ms, metres

    def _along_links(self, places: list[Place], best_ms: FloatArray, best_m: FloatArray) -> None:
        """Points on one link may also drive straight along it (forwards on a one-way)."""
        by_link: defaultdict[int, list[int]] = defaultdict(list)
        for n, place in enumerate(places):
            by_link[place.link].append(n)
        for link, members in by_link.items():
            if len(members) < 2:
                continue
            offsets = np.array([places[n].offset_m for n in members])
            ahead_m = offsets[None, :] - offsets[:, None]  # from row to column
            metres = np.abs(ahead_m)
            if self._graph.link_one_way[link]:
                metres = np.where(ahead_m >= 0, metres, np.inf)
            share = metres / self._graph.link_length_m[link]
            ms = np.rint(share * self._graph.link_duration_ms[link])
            block = np.ix_(members, members)
            ms_block, metres_block = best_ms[block], best_m[block]
            _keep_better(ms_block, metres_block, ms, metres)
            best_ms[block], best_m[block] = ms_block, metres_block

    def _lonlat(self, xy: list[XY]) -> tuple[tuple[float, float], ...]:
        """[lon, lat] points without repeats (a place exactly at a junction); two at least."""
        kept = [xy[0]] + [p for q, p in itertools.pairwise(xy) if math.dist(p, q) > 1e-6]
        if len(kept) == 1:
            kept.append(kept[0])
        latlon = self._graph.projection.to_latlon_array(kept)
        return tuple((lon, lat) for lat, lon in latlon.tolist())


def _cost(move: Move) -> tuple[int, float]:
    return move.duration_ms, move.length_m


def _check_street(n: int, street: MapStreet) -> None:
    if len(street.line) < 2:
        raise InvalidValue(f"streets[{n}].line: needs at least 2 positions")
    for lon, lat in street.line:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InvalidValue(f"streets[{n}].line: ({lon}, {lat}) is not [lon, lat]")
    if street.speed_kmh is not None and not 0.0 < street.speed_kmh <= _MAX_SPEED_KMH:
        raise InvalidValue(f"streets[{n}].speed_kmh: {street.speed_kmh} must be within (0, 150]")


def _moves_table(
    moves: list[list[Move]], junctions: list[int]
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Each point's (up to two) moves as (n, 2) arrays: the junction's position in
    `junctions`, the milliseconds and metres; a missing move is column -1 (the padding of
    `_between`) and costs infinity."""
    position = {junction: k for k, junction in enumerate(junctions)}
    column = np.full((len(moves), 2), -1, dtype=np.int64)
    ms = np.full((len(moves), 2), np.inf)
    metres = np.full((len(moves), 2), np.inf)
    for n, point_moves in enumerate(moves):
        for k, move in enumerate(point_moves):
            column[n, k] = position[move.junction]
            ms[n, k], metres[n, k] = move.duration_ms, move.length_m
    return column, ms, metres


def _keep_better(
    best_ms: FloatArray, best_m: FloatArray, ms: FloatArray, metres: FloatArray
) -> None:
    """Faster wins; of equally fast ways the shorter (as the search decides)."""
    better = (ms < best_ms) | ((ms == best_ms) & (metres < best_m))
    best_ms[better] = ms[better]
    best_m[better] = metres[better]


def _matrix(seconds: FloatArray, metres: FloatArray) -> TravelMatrix:
    unreachable = ~np.isfinite(seconds)
    durations_s = np.rint(np.where(unreachable, UNREACHABLE, seconds)).astype(np.int64)
    distances_m = np.rint(np.where(unreachable, UNREACHABLE, metres)).astype(np.int64)
    return TravelMatrix(durations_s=durations_s, distances_m=distances_m)
