"""Route runs for the simulated trucks, until the planner lands: each truck gets a compact area
of service points, visits them in nearest-neighbour order (straight-line distance, driven along
the streets), unloads at the transfer station when full and at the landfill at the end.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from planning import StopKind
from simulator.city import City, Leg, Site, SiteKind, StreetPosition
from simulator.points import ServicePointKind, ServicePointSpec

# Seconds at a collection point, by kind of customer (low, high).
SERVICE_S = {
    ServicePointKind.HOUSEHOLD: (30.0, 60.0),
    ServicePointKind.BUSINESS_HOUSEHOLD: (40.0, 90.0),
    ServicePointKind.BUSINESS: (60.0, 180.0),
    ServicePointKind.AGENCY: (60.0, 180.0),
}
UNLOAD_S = 600.0
# The plan counts a leg at this share of the streets' free-flow speed (traffic, turns); the
# simulated trucks drive at 0.82-1.0 of it, so they keep to the plan on average.
PLANNED_SPEED_FACTOR = 0.91
# Shops and offices put their waste out for a window around the planned time.
WINDOW_HALF_S = 1800.0


@dataclass(frozen=True, slots=True)
class PlannedStop:
    seq: int
    kind: StopKind
    point: ServicePointSpec | None  # collect stops
    site: Site | None  # unload stops
    x_m: float
    y_m: float
    lat: float
    lon: float
    path_offset_m: float
    planned_arrival_s: float
    window_s: tuple[float, float] | None
    demand_kg: float
    service_s: float
    dwell_radius_m: float


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """One truck's run: ``legs[i]`` arrives at ``stops[i]``; the last leg returns to the depot."""

    vehicle: int
    stops: tuple[PlannedStop, ...]
    legs: tuple[Leg, ...]
    path_xy: tuple[tuple[float, float], ...]
    path_length_m: float
    planned_start_s: float
    planned_end_s: float
    corridor_m: float


def partition(points: Sequence[ServicePointSpec], city: City, areas: int) -> list[list[int]]:
    """Indexes of ``points`` split into ``areas`` compact groups of near-equal size
    (recursive bisection along the longer side)."""
    xy = [city.projection.to_xy(p.lat, p.lon) for p in points]

    def split(indexes: list[int], parts: int) -> list[list[int]]:
        if parts == 1:
            return [indexes]
        xs = [xy[i][0] for i in indexes]
        ys = [xy[i][1] for i in indexes]
        axis = 0 if max(xs) - min(xs) >= max(ys) - min(ys) else 1
        ordered = sorted(indexes, key=lambda i: (xy[i][axis], i))
        left_parts = parts // 2
        cut = round(len(ordered) * left_parts / parts)
        return split(ordered[:cut], left_parts) + split(ordered[cut:], parts - left_parts)

    return split(list(range(len(points))), areas)


def nearest_neighbour_order(
    start_xy: tuple[float, float], xy: Sequence[tuple[float, float]]
) -> list[int]:
    left = set(range(len(xy)))
    order: list[int] = []
    here = start_xy
    while left:
        best = min(left, key=lambda i: (math.dist(here, xy[i]), i))
        order.append(best)
        left.remove(best)
        here = xy[best]
    return order


def plan_route(
    city: City,
    vehicle: int,
    points: Sequence[ServicePointSpec],
    *,
    start_s: float,
    capacity_kg: float,
    dwell_radius_m: float,
    corridor_m: float,
    rng: random.Random,
) -> RoutePlan:
    depot = city.sites[SiteKind.DEPOT]
    transfer = city.sites[SiteKind.TRANSFER_STATION]
    landfill = city.sites[SiteKind.LANDFILL]
    xy = [city.position_xy(p.stop) for p in points]
    order = nearest_neighbour_order(city.node_xy(depot.node), xy)

    stops: list[PlannedStop] = []
    legs: list[Leg] = []
    path: list[tuple[float, float]] = [city.node_xy(depot.node)]
    offset_m = 0.0
    clock_s = start_s
    load_kg = 0.0
    here: int | StreetPosition = depot.node

    def go(to: int | StreetPosition) -> Leg:
        nonlocal offset_m, clock_s, here
        leg = city.path(here, to)
        legs.append(leg)
        path.extend(leg.points_xy[1:])
        offset_m += leg.length_m
        clock_s += leg.duration_s / PLANNED_SPEED_FACTOR
        here = to
        return leg

    def unload(site: Site) -> None:
        nonlocal clock_s, load_kg
        go(site.node)
        x, y = city.node_xy(site.node)
        stops.append(
            PlannedStop(
                len(stops) + 1,
                StopKind.UNLOAD,
                None,
                site,
                x,
                y,
                site.lat,
                site.lon,
                offset_m,
                clock_s,
                None,
                0.0,
                UNLOAD_S,
                max(dwell_radius_m, 50.0),
            )
        )
        clock_s += UNLOAD_S
        load_kg = 0.0

    for index in order:
        point = points[index]
        if load_kg + point.waste_kg_per_day > capacity_kg and load_kg > 0:
            unload(transfer)
        go(point.stop)
        low, high = SERVICE_S[point.kind]
        service_s = round(rng.uniform(low, high))
        window = None
        if point.kind is not ServicePointKind.HOUSEHOLD:
            window = (clock_s - WINDOW_HALF_S, clock_s + WINDOW_HALF_S)
        x, y = xy[index]
        lat, lon = city.position_latlon(point.stop)
        stops.append(
            PlannedStop(
                len(stops) + 1,
                StopKind.COLLECT,
                point,
                None,
                x,
                y,
                lat,
                lon,
                offset_m,
                clock_s,
                window,
                point.waste_kg_per_day,
                service_s,
                dwell_radius_m,
            )
        )
        clock_s += service_s
        load_kg += point.waste_kg_per_day
    unload(landfill)
    go(depot.node)
    return RoutePlan(
        vehicle, tuple(stops), tuple(legs), _dedupe(path), offset_m, start_s, clock_s, corridor_m
    )


def _dedupe(path: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Drop repeated consecutive points (a leg of length zero between two stops at one place)."""
    kept = [path[0]]
    for point in path[1:]:
        if math.dist(point, kept[-1]) > 1e-6:
            kept.append(point)
    if len(kept) == 1:
        kept.append(kept[0])
    return tuple(kept)
