"""The depot, the transfer station and the landfill, with the road out to the landfill.

The depot and the transfer station sit on arterial junctions inside the
district; the landfill lies 5-8 km from the centre, at the end of an arterial
road that continues one of the grid's arterials out of the district. Each
site's yard is a rectangle beside the road that also covers the road at its
node, so a truck stopped at the node is inside the yard.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from simulator import names
from simulator.errors import SimulatorError
from simulator.network import SiteKind, StreetClass
from simulator.plane import Point, segment_to_convex, signed_area
from simulator.streets import Layout

LANDFILL_DISTANCE_M = (5_500.0, 7_500.0)  # from the district centre
LANDFILL_ROAD_NODE_SPACING_M = 450.0
SITE_FRONT_M = 12.0  # how far a yard reaches across the road from its node
YARD_SIDE_M = (60.0, 120.0)
YARD_CLEARANCE_M = 10.0  # between a yard and the streets that do not serve it
KEEP_OUT_MARGIN_M = 10.0  # alleys stay this much farther from a yard than its corners

_SIDES: dict[str, tuple[Point, Point]] = {  # outward normal, tangent
    "east": ((1.0, 0.0), (0.0, 1.0)),
    "north": ((0.0, 1.0), (1.0, 0.0)),
    "south": ((0.0, -1.0), (1.0, 0.0)),
    "west": ((-1.0, 0.0), (0.0, 1.0)),
}


@dataclass(frozen=True, slots=True)
class SitePlan:
    kind: SiteKind
    name: str
    node: int
    polygon_xy: tuple[Point, ...]  # closed ring, counter-clockwise


def draw_landfill_road(layout: Layout) -> SitePlan:
    """A gently curving arterial from a grid arterial's end on one edge to the landfill."""
    rng = layout.rng
    side = rng.choice(sorted(_SIDES))
    normal, tangent = _SIDES[side]
    half_normal = layout.half_width_m if normal[0] else layout.half_height_m
    half_tangent = layout.half_height_m if normal[0] else layout.half_width_m
    grid_ends = sorted(
        {n for r in layout.grid_arterial_runs for n in (layout.runs[r].start, layout.runs[r].end)}
    )
    on_edge = [n for n in grid_ends if _dot(layout.xy[n], normal) >= half_normal - 1e-6]
    # Prefer an arterial meeting the edge to a corner of the district.
    inner = [n for n in on_edge if abs(_dot(layout.xy[n], tangent)) < half_tangent - 1.0]
    start = rng.choice(inner or on_edge)
    start_xy = layout.xy[start]

    along = _dot(start_xy, tangent) + rng.uniform(-600.0, 600.0)
    distance = max(rng.uniform(*LANDFILL_DISTANCE_M), math.hypot(half_normal + 500.0, along))
    along = max(-0.6 * distance, min(0.6 * distance, along))
    out = math.sqrt(distance**2 - along**2)
    end_xy = (normal[0] * out + tangent[0] * along, normal[1] * out + tangent[1] * along)

    chord = (end_xy[0] - start_xy[0], end_xy[1] - start_xy[1])
    chord_m = math.hypot(*chord)
    across = (-chord[1] / chord_m, chord[0] / chord_m)
    bend_m = rng.uniform(-150.0, 150.0)
    place = names.LANDFILL_PLACES[side]
    line = layout.add_line(
        f"Đường vào khu xử lý {place}",
        place,
        StreetClass.ARTERIAL,
        float(round(rng.uniform(35, 40))),
        round(rng.uniform(4.5, 5.5), 1),
    )
    count = math.ceil(chord_m / LANDFILL_ROAD_NODE_SPACING_M)
    previous = start
    for k in range(1, count + 1):
        t = k / count
        offset = bend_m * math.sin(math.pi * t) + (rng.uniform(-15.0, 15.0) if k < count else 0.0)
        node = layout.add_node(
            start_xy[0] + chord[0] * t + across[0] * offset,
            start_xy[1] + chord[1] * t + across[1] * offset,
        )
        layout.add_run(line, previous, node)
        previous = node

    previous_xy = layout.xy[layout.runs[-1].start]
    heading = _unit(_minus(layout.xy[previous], previous_xy))
    width, depth = rng.uniform(100.0, 120.0), rng.uniform(80.0, 120.0)
    polygon = _yard(layout.xy[previous], heading, width, depth, front_m=15.0)
    return SitePlan(SiteKind.LANDFILL, f"Khu xử lý chất thải {place}", previous, polygon)


def place_yards(layout: Layout) -> tuple[SitePlan, SitePlan]:
    """The depot near an edge and the transfer station far from it, on arterial junctions."""
    rng = layout.rng
    junctions = sorted(layout.arterial_stops)
    near_edge = [n for n in junctions if 100.0 <= layout.edge_distance_m(*layout.xy[n]) <= 450.0]
    depot_name = rng.choice(names.DEPOT_NAMES)
    depot = _yard_at_first_fit(layout, [near_edge, junctions], SiteKind.DEPOT, depot_name)
    depot_xy = layout.xy[depot.node]
    apart_m = min(1_500.0, 0.8 * max(layout.half_width_m, layout.half_height_m))
    far = [n for n in junctions if math.dist(layout.xy[n], depot_xy) >= apart_m]
    far_near_edge = [n for n in far if layout.edge_distance_m(*layout.xy[n]) <= 600.0]
    apart = [n for n in junctions if math.dist(layout.xy[n], depot_xy) >= 300.0]
    transfer_name = f"Trạm trung chuyển {rng.choice(names.TRANSFER_STATION_PLACES)}"
    transfer = _yard_at_first_fit(
        layout, [far_near_edge, far, apart], SiteKind.TRANSFER_STATION, transfer_name
    )
    return depot, transfer


def _yard_at_first_fit(
    layout: Layout, tiers: list[list[int]], kind: SiteKind, name: str
) -> SitePlan:
    """A yard at the first junction with room for it, trying the tiers in order and each
    tier's junctions in seeded order. A district too small for any yard to keep clear of
    the streets gets one at the first junction anyway."""
    rng = layout.rng
    fallback: tuple[int, tuple[Point, ...]] | None = None
    for tier in tiers:
        candidates = list(tier)
        rng.shuffle(candidates)
        for node in candidates:
            sizes = ((rng.uniform(*YARD_SIDE_M), rng.uniform(*YARD_SIDE_M)), (YARD_SIDE_M[0],) * 2)
            run = layout.runs[layout.arterial_stops[node]]
            left = _left(_unit(_minus(layout.xy[run.end], layout.xy[run.start])))
            for (width, depth), across in itertools.product(sizes, (left, (-left[0], -left[1]))):
                polygon = _yard(layout.xy[node], across, width, depth, front_m=SITE_FRONT_M)
                # A yard on the district's edge lies inside it, not across the boundary road.
                if layout.edge_distance_m(*_centre(polygon)) <= 0:
                    continue
                if _clear(layout, polygon, node, across):
                    return _keep_alleys_out(layout, SitePlan(kind, name, node, polygon))
                fallback = fallback or (node, polygon)
    if fallback is None:
        raise SimulatorError(f"no arterial junction for the {kind.value}")
    return _keep_alleys_out(layout, SitePlan(kind, name, *fallback))


def _keep_alleys_out(layout: Layout, plan: SitePlan) -> SitePlan:
    centre = _centre(plan.polygon_xy)
    radius = max(math.dist(centre, p) for p in plan.polygon_xy)
    layout.keep_out.append((centre, radius + KEEP_OUT_MARGIN_M))
    return plan


def _centre(ring: tuple[Point, ...]) -> Point:
    """The centre of a closed rectangle."""
    corners = ring[:-1]
    return sum(x for x, _ in corners) / len(corners), sum(y for _, y in corners) / len(corners)


def _clear(layout: Layout, polygon: tuple[Point, ...], node: int, across: Point) -> bool:
    """No street comes near the yard but the arterial it fronts and streets leaving the
    junction away from the yard."""
    arterial = layout.arterial_stops[node]
    west = min(x for x, _ in polygon) - YARD_CLEARANCE_M
    east = max(x for x, _ in polygon) + YARD_CLEARANCE_M
    south = min(y for _, y in polygon) - YARD_CLEARANCE_M
    north = max(y for _, y in polygon) + YARD_CLEARANCE_M
    for run_id, run in enumerate(layout.runs):
        a, b = layout.xy[run.start], layout.xy[run.end]
        if run_id == arterial or max(a[0], b[0]) < west or min(a[0], b[0]) > east:
            continue
        if max(a[1], b[1]) < south or min(a[1], b[1]) > north:
            continue
        if segment_to_convex(a, b, polygon) >= YARD_CLEARANCE_M:
            continue
        if node in (run.start, run.end):
            far = b if run.start == node else a
            if _dot(_minus(far, layout.xy[node]), across) < 0:
                continue
        return False
    return True


def _yard(
    centre: Point, across: Point, width_m: float, depth_m: float, front_m: float
) -> tuple[Point, ...]:
    """A closed counter-clockwise rectangle `width_m` wide, reaching from `front_m` behind
    `centre` to `depth_m - front_m` ahead of it in the direction `across`."""
    along = _left(across)
    ring = []
    for w, d in (
        (-0.5, -front_m),
        (0.5, -front_m),
        (0.5, depth_m - front_m),
        (-0.5, depth_m - front_m),
    ):
        ring.append(
            (
                centre[0] + along[0] * w * width_m + across[0] * d,
                centre[1] + along[1] * w * width_m + across[1] * d,
            )
        )
    if signed_area(ring) < 0:
        ring.reverse()
    return (*ring, ring[0])


def _dot(a: Point, b: Point) -> float:
    return a[0] * b[0] + a[1] * b[1]


def _minus(a: Point, b: Point) -> Point:
    return a[0] - b[0], a[1] - b[1]


def _unit(v: Point) -> Point:
    length = math.hypot(*v)
    return v[0] / length, v[1] / length


def _left(v: Point) -> Point:
    return -v[1], v[0]
