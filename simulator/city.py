"""A deterministic synthetic street network around Hà Đông, Hanoi, and routing on it.

`generate_city(seed)` runs the layout pipeline (grid, landfill road, yards,
alleys, one-way streets) and returns a `City`: streets as node-to-node
segments, the fastest path between any two places, the nearest street to a
point and a GeoJSON view for maps.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geo import LocalProjection
from simulator.alleys import draw_alleys
from simulator.errors import NoPath
from simulator.network import Leg, Site, SiteKind, Street, StreetClass, StreetPosition
from simulator.one_way import choose_one_way
from simulator.sites import SitePlan, draw_landfill_road, place_yards
from simulator.street_index import StreetIndex
from simulator.streets import Layout

__all__ = [
    "City",
    "Leg",
    "NoPath",
    "Site",
    "SiteKind",
    "Street",
    "StreetClass",
    "StreetPosition",
    "generate_city",
]

HA_DONG_CENTRE = (20.9713, 105.7788)
_ALL_CLASSES = frozenset(StreetClass)
# Coordinates in GeoJSON are rounded to 1e-7 degrees (about 1 cm).
_GEOJSON_DIGITS = 7

Place = int | StreetPosition
# (street id, from point, to point): one straight piece of a path.
_Step = tuple[int, tuple[float, float], tuple[float, float]]


def generate_city(
    seed: int,
    width_m: float = 4000,
    height_m: float = 3000,
    centre: tuple[float, float] = HA_DONG_CENTRE,
) -> City:
    """The same city for the same arguments, every time."""
    if not 400 <= width_m <= 20_000:
        raise ValueError(f"width_m={width_m} must be within [400, 20000]")
    if not 400 <= height_m <= 20_000:
        raise ValueError(f"height_m={height_m} must be within [400, 20000]")
    layout = Layout(seed, width_m, height_m)
    layout.draw_grid()
    landfill = draw_landfill_road(layout)
    # The yards are placed before the alleys, so that no alley runs through a yard.
    depot, transfer_station = place_yards(layout)
    draw_alleys(layout)
    choose_one_way(layout)
    streets = layout.streets()
    projection = LocalProjection(*centre)
    half_w, half_h = width_m / 2, height_m / 2
    return City(
        seed=seed,
        projection=projection,
        node_xy=np.array(layout.xy, dtype=np.float64),
        streets=streets,
        sites=[_site(plan, layout, projection) for plan in (depot, transfer_station, landfill)],
        district_xy=(-half_w, -half_h, half_w, half_h),
    )


def _site(plan: SitePlan, layout: Layout, projection: LocalProjection) -> Site:
    lat, lon = projection.to_latlon(*layout.xy[plan.node])
    ring = tuple(projection.to_latlon(x, y) for x, y in plan.polygon_xy)
    return Site(kind=plan.kind, name=plan.name, node=plan.node, lat=lat, lon=lon, polygon=ring)


class City:
    """Streets (node-to-node segments, `streets[i].id == i`), nodes and sites in one projection."""

    def __init__(
        self,
        *,
        seed: int,
        projection: LocalProjection,
        node_xy: npt.NDArray[np.float64],
        streets: Sequence[Street],
        sites: Sequence[Site],
        district_xy: tuple[float, float, float, float],
    ) -> None:
        self.seed = seed
        self.projection = projection
        self.streets = tuple(streets)
        self.sites: dict[SiteKind, Site] = {site.kind: site for site in sites}
        self.district_xy = district_xy  # west, south, east, north in metres
        self._node_xy = node_xy.copy()
        self._node_xy.setflags(write=False)
        self._xy: list[tuple[float, float]] = [(float(x), float(y)) for x, y in self._node_xy]
        self._incident: list[list[int]] = [[] for _ in self._xy]
        # Out-going moves per node: (street id, next node, seconds), as one-way streets allow.
        self._moves: list[list[tuple[int, int, float]]] = [[] for _ in self._xy]
        for index, street in enumerate(self.streets):
            if street.id != index:
                raise ValueError(f"street id={street.id} must equal its index {index}")
            self._incident[street.start].append(street.id)
            self._incident[street.end].append(street.id)
            seconds = _seconds(street.length_m, street.speed_kmh)
            self._moves[street.start].append((street.id, street.end, seconds))
            if not street.one_way:
                self._moves[street.end].append((street.id, street.start, seconds))
        self._indexes: dict[frozenset[StreetClass], StreetIndex] = {}

    # ---------------------------------------------------------------- geometry

    def node_count(self) -> int:
        return len(self._xy)

    def node_xy(self, node: int) -> tuple[float, float]:
        return self._xy[node]

    def node_latlon(self, node: int) -> tuple[float, float]:
        return self.projection.to_latlon(*self._xy[node])

    def nodes_xy(self) -> npt.NDArray[np.float64]:
        """All node positions as a read-only (n, 2) array."""
        return self._node_xy

    def position_xy(self, place: StreetPosition) -> tuple[float, float]:
        street = self._street(place)
        t = place.offset_m / street.length_m
        if t >= 1.0:
            return self._xy[street.end]
        (x0, y0), (x1, y1) = self._xy[street.start], self._xy[street.end]
        # Exact at the start node, and on streets along the district's straight edges.
        return x0 + (x1 - x0) * t, y0 + (y1 - y0) * t

    def position_latlon(self, place: StreetPosition) -> tuple[float, float]:
        return self.projection.to_latlon(*self.position_xy(place))

    def streets_at(self, node: int) -> list[int]:
        return sorted(self._incident[node])

    def in_district(self, x: float, y: float) -> bool:
        west, south, east, north = self.district_xy
        return west <= x <= east and south <= y <= north

    def bounds_latlon(self) -> tuple[float, float, float, float]:
        """West, south, east, north of every street, the landfill road included."""
        latlon = self.projection.to_latlon_array(self._node_xy)
        return (
            float(latlon[:, 1].min()),
            float(latlon[:, 0].min()),
            float(latlon[:, 1].max()),
            float(latlon[:, 0].max()),
        )

    def district_bounds_latlon(self) -> tuple[float, float, float, float]:
        """West, south, east, north of the district (the service area)."""
        west, south, east, north = self.district_xy
        south_lat, west_lon = self.projection.to_latlon(west, south)
        north_lat, east_lon = self.projection.to_latlon(east, north)
        return west_lon, south_lat, east_lon, north_lat

    def nearest_street(
        self, x: float, y: float, classes: frozenset[StreetClass] | None = None
    ) -> tuple[StreetPosition, float]:
        """The closest point on any street (of `classes`) to (x, y), and its distance in metres.

        Of equally near streets the lowest id wins.
        """
        key = _ALL_CLASSES if classes is None else classes
        index = self._indexes.get(key)
        if index is None:
            ids = [s.id for s in self.streets if s.street_class in key]
            if not ids:
                raise ValueError(f"classes={sorted(key)} match no street")
            segments = [
                (self._xy[self.streets[i].start], self._xy[self.streets[i].end]) for i in ids
            ]
            index = self._indexes[key] = StreetIndex(segments, ids)
        street_id, fraction, distance_m = index.nearest(x, y)
        return StreetPosition(street_id, fraction * self.streets[street_id].length_m), distance_m

    def _street(self, place: StreetPosition) -> Street:
        if place.street_id >= len(self.streets):
            raise ValueError(f"street_id={place.street_id} must be < {len(self.streets)}")
        street = self.streets[place.street_id]
        if place.offset_m > street.length_m + 1e-9:
            raise ValueError(
                f"offset_m={place.offset_m} must be within [0, {street.length_m}] "
                f"on street {street.id}"
            )
        return street

    # ---------------------------------------------------------------- routing

    def path(self, start: Place, end: Place, avoid_streets: frozenset[int] = frozenset()) -> Leg:
        """The fastest drivable path, by free-flow time, respecting one-way streets.

        From a place on a street the truck may leave towards either end (only
        forwards on a one-way street), and likewise arrive. Streets in
        `avoid_streets` are never driven end to end, but the stretch of the
        start's or end's own street to or from the nearest node always is.
        """
        start_xy = self._place_xy(start)
        end_xy = self._place_xy(end)
        # Virtual edges from the start place into the graph, and from the graph to the end.
        departures = self._departures(start, start_xy)
        arrivals = {node: (seconds, step) for node, seconds, step in self._arrivals(end, end_xy)}
        best_seconds, best_steps = self._along_one_street(start, end, start_xy, end_xy)
        best_node = -1

        seconds_to: dict[int, float] = {}
        came_from: dict[int, tuple[int, _Step | None]] = {}  # node -> (previous node, step)
        heap: list[tuple[float, int]] = []
        for node, seconds, step in departures:
            if seconds < seconds_to.get(node, math.inf):
                seconds_to[node] = seconds
                came_from[node] = (-1, step)
                heapq.heappush(heap, (seconds, node))
        done: set[int] = set()
        while heap:
            seconds, node = heapq.heappop(heap)
            if seconds >= best_seconds:
                break
            if node in done:
                continue
            done.add(node)
            arrival = arrivals.get(node)
            if arrival is not None and seconds + arrival[0] < best_seconds:
                best_seconds, best_node = seconds + arrival[0], node
            for street_id, nxt, cost in self._moves[node]:
                if street_id in avoid_streets or nxt in done:
                    continue
                total = seconds + cost
                if total < seconds_to.get(nxt, math.inf):
                    seconds_to[nxt] = total
                    came_from[nxt] = (node, (street_id, self._xy[node], self._xy[nxt]))
                    heapq.heappush(heap, (total, nxt))

        if best_node >= 0:
            steps: list[_Step] = []
            last = arrivals[best_node][1]
            if last is not None:
                steps.append(last)
            node = best_node
            while node >= 0:
                previous, step = came_from[node]
                if step is not None:
                    steps.append(step)
                node = previous
            steps.reverse()
            best_steps = steps
        elif best_steps is None:
            raise NoPath(start, end)
        return self._leg(start_xy, best_steps)

    def _place_xy(self, place: Place) -> tuple[float, float]:
        if isinstance(place, StreetPosition):
            return self.position_xy(place)
        if not 0 <= place < len(self._xy):
            raise ValueError(f"node={place} must be within [0, {len(self._xy)})")
        return self._xy[place]

    def _departures(
        self, place: Place, xy: tuple[float, float]
    ) -> list[tuple[int, float, _Step | None]]:
        if not isinstance(place, StreetPosition):
            return [(place, 0.0, None)]
        street = self.streets[place.street_id]
        out: list[tuple[int, float, _Step | None]] = [
            (
                street.end,
                _seconds(street.length_m - place.offset_m, street.speed_kmh),
                (street.id, xy, self._xy[street.end]),
            )
        ]
        if not street.one_way:
            step = (street.id, xy, self._xy[street.start])
            out.append((street.start, _seconds(place.offset_m, street.speed_kmh), step))
        return out

    def _arrivals(
        self, place: Place, xy: tuple[float, float]
    ) -> list[tuple[int, float, _Step | None]]:
        if not isinstance(place, StreetPosition):
            return [(place, 0.0, None)]
        street = self.streets[place.street_id]
        out: list[tuple[int, float, _Step | None]] = [
            (
                street.start,
                _seconds(place.offset_m, street.speed_kmh),
                (street.id, self._xy[street.start], xy),
            )
        ]
        if not street.one_way:
            step = (street.id, self._xy[street.end], xy)
            seconds = _seconds(street.length_m - place.offset_m, street.speed_kmh)
            out.append((street.end, seconds, step))
        return out

    def _along_one_street(
        self, start: Place, end: Place, start_xy: tuple[float, float], end_xy: tuple[float, float]
    ) -> tuple[float, list[_Step] | None]:
        """Driving straight along a shared street, when the direction is allowed."""
        if not (isinstance(start, StreetPosition) and isinstance(end, StreetPosition)):
            return math.inf, None
        if start.street_id != end.street_id:
            return math.inf, None
        street = self.streets[start.street_id]
        if end.offset_m < start.offset_m and street.one_way:
            return math.inf, None
        seconds = _seconds(abs(end.offset_m - start.offset_m), street.speed_kmh)
        return seconds, [(street.id, start_xy, end_xy)]

    def _leg(self, start_xy: tuple[float, float], steps: list[_Step]) -> Leg:
        points = [start_xy]
        speeds: list[float] = []
        street_ids: list[int] = []
        length_m = duration_s = 0.0
        for street_id, _, to_xy in steps:
            piece_m = math.dist(points[-1], to_xy)
            if piece_m == 0.0:  # a place exactly on a node adds no segment
                continue
            speed = self.streets[street_id].speed_kmh
            points.append(to_xy)
            speeds.append(speed)
            street_ids.append(street_id)
            length_m += piece_m
            duration_s += _seconds(piece_m, speed)
        return Leg(
            points_xy=tuple(points),
            speeds_kmh=tuple(speeds),
            street_ids=tuple(street_ids),
            length_m=length_m,
            duration_s=duration_s,
        )

    # ---------------------------------------------------------------- GeoJSON

    def geojson(self) -> dict[str, Any]:
        """A FeatureCollection: one LineString per street, one Polygon per site ([lon, lat])."""
        latlon = np.round(self.projection.to_latlon_array(self._node_xy), _GEOJSON_DIGITS)
        features: list[dict[str, Any]] = []
        for street in self.streets:
            start, end = latlon[street.start], latlon[street.end]
            features.append(
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [
                            [float(start[1]), float(start[0])],
                            [float(end[1]), float(end[0])],
                        ],
                    },
                    "properties": {
                        "id": street.id,
                        "name": street.name,
                        "street_class": street.street_class.value,
                        "one_way": street.one_way,
                        "speed_kmh": street.speed_kmh,
                        "gps_noise_m": street.gps_noise_m,
                        "length_m": round(street.length_m, 2),
                    },
                }
            )
        for site in self.sites.values():
            ring = [
                [round(lon, _GEOJSON_DIGITS), round(lat, _GEOJSON_DIGITS)]
                for lat, lon in site.polygon
            ]
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                    "properties": {"kind": site.kind.value, "name": site.name, "node": site.node},
                }
            )
        return {"type": "FeatureCollection", "features": features}


def _seconds(length_m: float, speed_kmh: float) -> float:
    return length_m / (speed_kmh / 3.6)
