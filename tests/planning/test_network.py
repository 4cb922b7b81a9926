"""Travel matrices and paths: straight lines, a hand-made grid with exact figures, and the
simulator's city as the reference router."""

from __future__ import annotations

import functools
import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.projection import LocalProjection, haversine_m
from planning.errors import InvalidValue
from planning.network import UNREACHABLE, Leg, NoPath, StraightLine, StreetNetwork
from planning.streets import MapStreet, StreetKind
from simulator.city import City, StreetClass, StreetPosition, generate_city

# The grid is laid out in metres around this origin, which is also its centre, so that the
# network's own projection matches it exactly.
ORIGIN = LocalProjection(21.0, 105.8)
GRID_M = (-150.0, -50.0, 50.0, 150.0)  # 3 x 3 blocks of 100 m
# Residential streets at 18 km/h: 5 m/s when the truck drives at the streets' speed.
FREE_FLOW = 1.0


def at(x: float, y: float) -> tuple[float, float]:
    """(lat, lon) of a grid position in metres."""
    return ORIGIN.to_latlon(x, y)


def xy_of(lon: float, lat: float) -> tuple[float, float]:
    return ORIGIN.to_xy(lat, lon)


def street(
    *xy: tuple[float, float], one_way: bool = False, kind: StreetKind = StreetKind.RESIDENTIAL
) -> MapStreet:
    line = tuple((lon, lat) for lat, lon in (at(x, y) for x, y in xy))
    return MapStreet("street", kind, one_way, line)


def grid_streets() -> list[MapStreet]:
    """One street per block side: rows first (index row * 3 + block, west to east), then
    columns (12 + column * 3 + block, south to north)."""
    rows = [street((GRID_M[k], y), (GRID_M[k + 1], y)) for y in GRID_M for k in range(3)]
    columns = [street((x, GRID_M[k]), (x, GRID_M[k + 1])) for x in GRID_M for k in range(3)]
    return rows + columns


def grid(*extra: MapStreet, one_way: tuple[int, ...] = (), **options: float) -> StreetNetwork:
    streets = grid_streets()
    for index in one_way:
        streets[index] = MapStreet("one way", StreetKind.RESIDENTIAL, True, streets[index].line)
    return StreetNetwork.from_streets(
        [*streets, *extra], speed_factor=options.get("speed_factor", FREE_FLOW)
    )


def figures(network: StreetNetwork, *points_xy: tuple[float, float]) -> list[list[int]]:
    """[[seconds, metres]] of each consecutive pair."""
    matrix = network.travel([at(*p) for p in points_xy])
    return [
        [int(matrix.durations_s[k, k + 1]), int(matrix.distances_m[k, k + 1])]
        for k in range(len(points_xy) - 1)
    ]


def path_xy(leg: Leg) -> list[tuple[float, float]]:
    return [(round(x, 3), round(y, 3)) for x, y in (xy_of(*p) for p in leg.points)]


# ---------------------------------------------------------------- straight lines


def test_straight_line_scales_the_great_circle_at_its_speed() -> None:
    a, b = (21.0, 105.8), (21.01, 105.81)
    straight_m = haversine_m(*a, *b)
    provider = StraightLine(circuity=1.35, speed_kmh=18.0)
    matrix = provider.travel([a, b, a])
    assert matrix.distances_m.tolist()[0] == [0, round(straight_m * 1.35), 0]
    assert matrix.durations_s[1, 0] == round(straight_m * 1.35 / 5.0)
    assert matrix.durations_s.dtype == np.int64
    leg = provider.path(a, b)
    assert leg.points == ((105.8, 21.0), (105.81, 21.01))
    assert leg.length_m == pytest.approx(straight_m * 1.35)
    assert leg.duration_s == pytest.approx(straight_m * 1.35 / 5.0)


@pytest.mark.parametrize(
    ("options", "field"),
    [({"circuity": 0.9}, "circuity"), ({"speed_kmh": 0.0}, "speed_kmh")],
)
def test_straight_line_rejects_bad_parameters(options: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidValue, match=field):
        StraightLine(**options)


# ---------------------------------------------------------------- the grid


def test_grid_gives_manhattan_figures_at_the_street_speed() -> None:
    network = grid()
    # Middle of the bottom-left block side to the middle of the top-right one.
    assert figures(network, (-100, -150), (100, 150)) == [[100, 500]]
    assert figures(network, (-100, -150), (-150, 0)) == [[40, 200]]
    slower = grid(speed_factor=0.91)
    assert figures(slower, (-100, -150), (100, 150)) == [[round(100 / 0.91), 500]]


def test_diagonal_is_zero_and_rows_follow_the_points() -> None:
    matrix = grid().travel([at(-100, -150), at(100, 150), at(-100, -150)])
    assert matrix.durations_s.tolist() == [[0, 100, 0], [100, 0, 100], [0, 100, 0]]


def test_points_on_one_street_drive_straight_along_it() -> None:
    assert figures(grid(), (-100, -150), (-130, -150), (-100, -150)) == [[6, 30], [6, 30]]


def test_one_way_street_forces_the_way_round_the_block() -> None:
    network = grid(one_way=(0,))  # the bottom-left side, eastwards
    # Backwards: on to its east end, round the block and in again from its west end.
    assert figures(network, (-100, -150), (-130, -150)) == [[74, 370]]
    assert figures(network, (-130, -150), (-100, -150)) == [[6, 30]]
    leg = network.path(at(-100, -150), at(-130, -150))
    assert path_xy(leg) == [
        (-100, -150),
        (-50, -150),
        (-50, -50),
        (-150, -50),
        (-150, -150),
        (-130, -150),
    ]
    assert leg.length_m == pytest.approx(370)
    assert leg.duration_s == pytest.approx(74)


def test_a_place_at_a_one_way_streets_first_corner_may_leave_by_the_corner() -> None:
    network = grid(one_way=(0,))
    # 0.2 m into the one-way street: the corner is right there, no need to go round.
    assert figures(network, (-149.8, -150), (-150, -100)) == [[10, 50]]


def test_closed_street_forces_the_detour_and_the_path_avoids_it() -> None:
    open_network = grid()
    assert figures(open_network, (-100, -150), (100, -150)) == [[40, 200]]
    closed = open_network.with_blocked([1])  # the bottom middle side
    assert closed.blocked == frozenset({1})
    assert open_network.blocked == frozenset()
    assert figures(closed, (-100, -150), (100, -150)) == [[80, 400]]
    leg = closed.path(at(-100, -150), at(100, -150))
    assert leg.length_m == pytest.approx(400)
    for (x0, y0), (x1, y1) in itertools.pairwise(path_xy(leg)):
        middle_x, middle_y = (x0 + x1) / 2, (y0 + y1) / 2
        assert not (-50 < middle_x < 50 and abs(middle_y + 150) < 1), "drove the closed side"


def test_closing_a_street_at_construction_equals_closing_it_later() -> None:
    points = [at(-100, -150), at(100, -150), at(0, -100), at(120, 80)]
    later = grid().with_blocked([1, 13]).travel(points)
    at_once = StreetNetwork.from_streets(
        grid_streets(), speed_factor=FREE_FLOW, blocked=frozenset({1, 13})
    ).travel(points)
    assert later.durations_s.tolist() == at_once.durations_s.tolist()


def test_a_point_by_a_closed_street_snaps_to_the_nearest_open_one() -> None:
    network = grid()
    point = at(-20, -140)  # 10 m from the bottom middle side, 30 m from the x = -50 column
    assert path_xy(network.path(point, at(0, -150)))[0] == (-20, -150)
    closed = network.with_blocked([1])
    assert path_xy(closed.path(point, at(-150, 0)))[0] == (-50, -140)


def test_streets_near_a_click_nearest_first() -> None:
    network = grid()
    assert network.streets_near(*at(-20, -140), radius_m=12) == [1]
    assert network.streets_near(*at(-20, -140), radius_m=35) == [1, 15, 0]
    assert network.streets_near(*at(0, 0), radius_m=10) == []


def test_dead_end_alley_is_driven_in_and_out() -> None:
    alley = street((150, 50), (250, 50), kind=StreetKind.ALLEY)
    network = StreetNetwork.from_streets(
        [*grid_streets(), alley], speed_kmh_by_kind={StreetKind.ALLEY: 18.0}, speed_factor=1.0
    )
    assert figures(network, (200, 50), (240, 50), (200, 50)) == [[8, 40], [8, 40]]
    assert figures(network, (240, 50), (100, 150), (240, 50)) == [[48, 240], [48, 240]]
    leg = network.path(at(240, 50), at(100, 150))
    assert path_xy(leg) == [(240, 50), (150, 50), (150, 150), (100, 150)]


def test_alley_speed_comes_from_its_kind_or_its_own_figure() -> None:
    alley = street((150, 50), (250, 50), kind=StreetKind.ALLEY)  # 10 km/h by default
    network = StreetNetwork.from_streets([*grid_streets(), alley], speed_factor=1.0)
    assert figures(network, (160, 50), (250, 50)) == [[round(90 / (10 / 3.6)), 90]]
    fast = MapStreet(alley.name, alley.kind, False, alley.line, speed_kmh=36.0)
    network = StreetNetwork.from_streets([*grid_streets(), fast], speed_factor=0.5)
    assert figures(network, (160, 50), (250, 50)) == [[18, 90]]


def test_lines_with_many_vertices_route_like_one_street_per_block() -> None:
    rows = [street(*((x, y) for x in GRID_M)) for y in GRID_M]
    columns = [street(*((x, y) for y in GRID_M)) for x in GRID_M]
    # A bent alley: its corner is a shape vertex, not a junction.
    bent = street((150, -150), (200, -150), (200, -100))
    long_lines = StreetNetwork.from_streets([*rows, *columns, bent], speed_factor=FREE_FLOW)
    block_sides = StreetNetwork.from_streets([*grid_streets(), bent], speed_factor=FREE_FLOW)
    rng = random.Random(5)
    points = [at(rng.uniform(-160, 160), rng.uniform(-160, 160)) for _ in range(25)]
    points += [at(200, -110), at(100, -150)]
    a, b = long_lines.travel(points), block_sides.travel(points)
    assert np.array_equal(a.durations_s, b.durations_s)
    assert np.abs(a.distances_m - b.distances_m).max() <= 1
    leg = long_lines.path(at(200, -110), at(100, -150))
    assert path_xy(leg) == [(200, -110), (200, -150), (150, -150), (100, -150)]
    assert leg.length_m == pytest.approx(140)


def test_path_agrees_with_the_matrix_and_its_own_geometry() -> None:
    network = grid(one_way=(0, 16), speed_factor=0.91)
    rng = random.Random(11)
    points = [at(rng.uniform(-160, 160), rng.uniform(-160, 160)) for _ in range(12)]
    matrix = network.travel(points)
    for i, j in itertools.permutations(range(len(points)), 2):
        leg = network.path(points[i], points[j])
        assert abs(leg.duration_s - matrix.durations_s[i, j]) <= 0.5 + 1e-6
        assert abs(leg.length_m - matrix.distances_m[i, j]) <= 0.5 + 1e-6
        drawn_m = sum(math.dist(p, q) for p, q in itertools.pairwise(path_xy(leg)))
        assert drawn_m == pytest.approx(leg.length_m, abs=0.01)


def test_one_way_trap_and_island_are_reported_unreachable() -> None:
    trap = street((150, 50), (250, 50), one_way=True)  # into a dead end, no way out
    island = street((1000, 1000), (1100, 1000))
    network = grid(trap, island)
    points = [at(-100, -150), at(200, 50), at(1050, 1000), at(100, 150)]
    assert network.unreachable(points) == [1, 2]
    matrix = network.travel(points)
    assert matrix.durations_s[0, 1] < 1000  # driving in is fine
    assert matrix.durations_s[1, 0] == UNREACHABLE
    assert matrix.distances_m[0, 2] == UNREACHABLE
    assert matrix.durations_s[0, 3] < 1000
    with pytest.raises(NoPath):
        network.path(points[1], points[0])


def test_travel_of_no_points_is_an_empty_matrix() -> None:
    assert grid().travel([]).size == 0
    assert grid().unreachable([]) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"speed_factor": 0.0}, "speed_factor"),
        ({"speed_kmh_by_kind": {StreetKind.ALLEY: -1.0}}, "speed_kmh_by_kind"),
        ({"blocked": frozenset({99})}, "blocked"),
        ({"blocked": frozenset(range(24))}, "blocked"),
    ],
)
def test_network_rejects_bad_settings(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidValue, match=field):
        StreetNetwork.from_streets(grid_streets(), **options)  # type: ignore[arg-type]


def test_network_rejects_bad_streets() -> None:
    with pytest.raises(InvalidValue, match="streets"):
        StreetNetwork.from_streets([])
    with pytest.raises(InvalidValue, match=r"streets\[0\].line"):
        StreetNetwork.from_streets([MapStreet("x", StreetKind.OTHER, False, ((105.8, 21.0),))])
    bad_speed = MapStreet("x", StreetKind.OTHER, False, ((105.8, 21.0), (105.81, 21.0)), -5.0)
    with pytest.raises(InvalidValue, match=r"streets\[0\].speed_kmh"):
        StreetNetwork.from_streets([bad_speed])


_TRIANGLE_GRID = grid(street((150, 50), (250, 50)), one_way=(0, 7, 16), speed_factor=0.91)
_ON_GRID = st.tuples(st.floats(-170, 260), st.floats(-170, 170))


@settings(max_examples=60, deadline=None)
@given(_ON_GRID, _ON_GRID, _ON_GRID)
def test_triangle_inequality_holds_up_to_rounding(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    durations = _TRIANGLE_GRID.travel([at(*a), at(*b), at(*c)]).durations_s
    for i, j, k in itertools.permutations(range(3)):
        assert durations[i, j] <= durations[i, k] + durations[k, j] + 3


# ---------------------------------------------------------------- the simulator's city

_KIND = {
    StreetClass.ARTERIAL: StreetKind.ARTERIAL,
    StreetClass.STREET: StreetKind.SECONDARY,
    StreetClass.ALLEY: StreetKind.ALLEY,
}


@functools.cache
def city() -> City:
    return generate_city(seed=3)


def city_streets(city: City) -> list[MapStreet]:
    """As simulator.register.map_streets saves them, with each street's own speed."""
    lines = []
    for s in city.streets:
        (lat0, lon0), (lat1, lon1) = city.node_latlon(s.start), city.node_latlon(s.end)
        line = ((round(lon0, 6), round(lat0, 6)), (round(lon1, 6), round(lat1, 6)))
        lines.append(MapStreet(s.name, _KIND[s.street_class], s.one_way, line, s.speed_kmh))
    return lines


def test_city_matrix_agrees_with_the_simulators_router() -> None:
    town = city()
    network = StreetNetwork.from_streets(city_streets(town), speed_factor=1.0)
    rng = random.Random(3)
    west, south, east, north = town.district_xy
    points_xy = [(rng.uniform(west, east), rng.uniform(south, north)) for _ in range(300)]
    points = [town.projection.to_latlon(x, y) for x, y in points_xy]
    matrix = network.travel(points)
    assert network.unreachable(points) == []
    for _ in range(20):
        i, j = rng.sample(range(len(points)), 2)
        start: StreetPosition = town.nearest_street(*points_xy[i])[0]
        end: StreetPosition = town.nearest_street(*points_xy[j])[0]
        expected = town.path(start, end)
        seconds, metres = matrix.durations_s[i, j], matrix.distances_m[i, j]
        assert abs(seconds - expected.duration_s) <= 2 + 0.005 * expected.duration_s
        assert abs(metres - expected.length_m) <= 2 + 0.005 * expected.length_m
        leg = network.path(points[i], points[j])
        assert abs(leg.length_m - metres) <= 0.5 + 1e-6
        assert abs(leg.duration_s - seconds) <= 0.5 + 1e-6
