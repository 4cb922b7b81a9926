"""The synthetic city: determinism, shape of the network, sites, projection, routing, lookup."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import os
import random
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import LocalProjection, haversine_m
from simulator.city import (
    City,
    Leg,
    NoPath,
    SiteKind,
    Street,
    StreetClass,
    StreetPosition,
    generate_city,
)

shapely = pytest.importorskip("shapely")

REPO = Path(__file__).resolve().parents[2]
CENTRE = (20.9713, 105.7788)


@functools.cache
def default_city() -> City:
    return generate_city(42)


@functools.cache
def small_city() -> City:
    """Small enough for a Bellman-Ford check, big enough to have every feature."""
    return generate_city(7, width_m=1600, height_m=1200)


def geojson_bytes(city: City) -> bytes:
    return json.dumps(city.geojson(), sort_keys=True, ensure_ascii=False).encode()


def directed_adjacency(city: City) -> tuple[list[list[int]], list[list[int]]]:
    forward: list[list[int]] = [[] for _ in range(city.node_count())]
    backward: list[list[int]] = [[] for _ in range(city.node_count())]
    for s in city.streets:
        forward[s.start].append(s.end)
        backward[s.end].append(s.start)
        if not s.one_way:
            forward[s.end].append(s.start)
            backward[s.start].append(s.end)
    return forward, backward


def reachable(adjacency: list[list[int]], source: int) -> set[int]:
    seen = {source}
    stack = [source]
    while stack:
        for nxt in adjacency[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def seconds(street: Street, length_m: float) -> float:
    return length_m / (street.speed_kmh / 3.6)


# ------------------------------------------------------------------ determinism


def test_same_seed_gives_the_same_city() -> None:
    first, second = generate_city(42), default_city()
    assert geojson_bytes(first) == geojson_bytes(second)
    assert first.streets == second.streets
    assert first.sites == second.sites
    assert np.array_equal(first.nodes_xy(), second.nodes_xy())


def test_the_city_does_not_depend_on_string_hashing() -> None:
    script = (
        "import hashlib, json; from simulator.city import generate_city; "
        "print(hashlib.sha256(json.dumps(generate_city(5, 1600, 1200).geojson(), "
        "sort_keys=True).encode()).hexdigest())"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, check=True
        )
        digests.add(out.stdout.decode().strip())
    here = hashlib.sha256(
        json.dumps(generate_city(5, 1600, 1200).geojson(), sort_keys=True).encode()
    ).hexdigest()
    assert digests == {here}


def test_different_seeds_give_different_cities() -> None:
    assert geojson_bytes(generate_city(43)) != geojson_bytes(default_city())
    assert generate_city(8, 1600, 1200).streets != small_city().streets


def test_bad_size_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValueError, match="width_m"):
        generate_city(1, width_m=100)


# ------------------------------------------------------------------ the network


def test_default_city_size_and_classes() -> None:
    city = default_city()
    assert 1_500 <= len(city.streets) <= 3_000
    classes = {s.street_class for s in city.streets}
    assert classes == set(StreetClass)


def test_streets_are_straight_node_to_node_segments() -> None:
    city = default_city()
    ranges = {
        StreetClass.ARTERIAL: ((30, 40), (4, 6)),
        StreetClass.STREET: ((18, 25), (8, 15)),
        StreetClass.ALLEY: ((8, 12), (15, 30)),
    }
    for index, s in enumerate(city.streets):
        assert s.id == index
        assert s.start != s.end
        assert s.length_m == pytest.approx(math.dist(city.node_xy(s.start), city.node_xy(s.end)))
        assert s.length_m > 5.0
        (speed_low, speed_high), (noise_low, noise_high) = ranges[s.street_class]
        assert speed_low <= s.speed_kmh <= speed_high
        assert noise_low <= s.gps_noise_m <= noise_high
        assert s.id in city.streets_at(s.start)
        assert s.id in city.streets_at(s.end)
    used = {n for s in city.streets for n in (s.start, s.end)}
    assert used == set(range(city.node_count()))


def assert_streets_meet_only_at_shared_nodes(city: City) -> None:
    """Every crossing or T-junction is a node: no street passes through another's middle."""
    lines = shapely.linestrings(
        [[city.node_xy(s.start), city.node_xy(s.end)] for s in city.streets]
    )
    left, right = shapely.STRtree(lines).query(lines, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i < j:
            a, b = city.streets[i], city.streets[j]
            assert {a.start, a.end} & {b.start, b.end}, (a, b)


def assert_strongly_connected(city: City) -> None:
    """Every node is reachable from the depot, and the depot from every node."""
    forward, backward = directed_adjacency(city)
    depot = city.sites[SiteKind.DEPOT].node
    everyone = set(range(city.node_count()))
    assert reachable(forward, depot) == everyone
    assert reachable(backward, depot) == everyone


def assert_yards_contain_their_nodes(city: City) -> None:
    for site in city.sites.values():
        assert site.polygon[0] == site.polygon[-1]
        polygon = shapely.Polygon([(lon, lat) for lat, lon in site.polygon])
        assert polygon.is_valid
        assert polygon.contains(shapely.Point(site.lon, site.lat))
        assert (site.lat, site.lon) == pytest.approx(city.node_latlon(site.node), abs=1e-12)


@pytest.mark.parametrize("make", [default_city, small_city])
def test_streets_meet_only_at_shared_nodes(make: Callable[[], City]) -> None:
    assert_streets_meet_only_at_shared_nodes(make())


def test_names_follow_the_vietnamese_conventions() -> None:
    city = default_city()
    prefix = {StreetClass.ARTERIAL: "Đường ", StreetClass.STREET: "Phố ", StreetClass.ALLEY: "Ngõ "}
    road_names = {s.name.split(" ", 1)[1] for s in city.streets if s.street_class != "alley"}
    for s in city.streets:
        assert s.name.startswith(prefix[s.street_class])
        if s.street_class is StreetClass.ALLEY:
            match = re.fullmatch(r"Ngõ (\d+) (.+)", s.name)
            assert match is not None
            assert match[2] in road_names  # named after the street it leaves


def test_alley_numbers_are_odd_on_the_left_of_their_street() -> None:
    city = default_city()
    checked = 0
    for alley in city.streets:
        match = re.fullmatch(r"Ngõ (\d+) (.+)", alley.name)
        if match is None:
            continue
        parents = [
            city.streets[i]
            for i in city.streets_at(alley.start)
            if city.streets[i].street_class is not StreetClass.ALLEY
            and city.streets[i].name.endswith(" " + match[2])
        ]
        if not parents:
            continue  # the far end of a through alley's second half
        parent = parents[0]
        (px, py), (ax, ay) = (
            np.subtract(city.node_xy(parent.end), city.node_xy(parent.start)),
            np.subtract(city.node_xy(alley.end), city.node_xy(alley.start)),
        )
        side = px * ay - py * ax
        assert int(match[1]) % 2 == (1 if side > 0 else 0), alley
        checked += 1
    assert checked > 500


def test_every_name_is_one_unbroken_line() -> None:
    """A name is one road: its segments chain start to end (house numbers rely on it)."""
    city = default_city()
    by_name: dict[str, list[Street]] = defaultdict(list)
    for s in city.streets:
        by_name[s.name].append(s)
    for name, streets in by_name.items():
        starts = [s.start for s in streets]
        ends = [s.end for s in streets]
        assert len(set(starts)) == len(starts), name
        assert len(set(ends)) == len(ends), name
        assert len(set(starts) - set(ends)) == 1, name
        assert len({s.street_class for s in streets}) == 1
        assert len({s.one_way for s in streets}) == 1


def test_dead_end_alleys_are_40_to_150_m_long() -> None:
    city = default_city()
    degree = [len(city.streets_at(n)) for n in range(city.node_count())]
    dead_ends = [
        s for s in city.streets if s.street_class is StreetClass.ALLEY and degree[s.end] == 1
    ]
    assert len(dead_ends) > 300
    for s in dead_ends:
        assert 40.0 - 1e-9 <= s.length_m <= 150.0 + 1e-9
    through = [s for s in city.streets if s.street_class is StreetClass.ALLEY and degree[s.end] > 1]
    assert through, "some alleys connect two streets"


def test_one_way_streets_are_whole_street_lines_and_about_an_eighth() -> None:
    city = default_city()
    streets = [s for s in city.streets if s.street_class is StreetClass.STREET]
    one_way = [s for s in streets if s.one_way]
    assert 0.08 <= len(one_way) / len(streets) <= 0.17
    assert not any(s.one_way for s in city.streets if s.street_class is not StreetClass.STREET)
    # Neighbouring lines alternate, so both senses occur.
    senses = set()
    for s in one_way:
        dx, dy = np.subtract(city.node_xy(s.end), city.node_xy(s.start))
        senses.add(bool((dx if abs(dx) > abs(dy) else dy) > 0))
    assert senses == {True, False}


@pytest.mark.parametrize("make", [default_city, small_city])
def test_every_node_reaches_and_is_reached_from_the_depot(make: Callable[[], City]) -> None:
    assert_strongly_connected(make())


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    width_m=st.floats(400, 3_000),
    height_m=st.floats(400, 2_500),
)
def test_any_seed_and_size_gives_a_sound_city(seed: int, width_m: float, height_m: float) -> None:
    city = generate_city(seed, width_m, height_m)
    assert_streets_meet_only_at_shared_nodes(city)
    assert_strongly_connected(city)
    assert_yards_contain_their_nodes(city)
    landfill = city.sites[SiteKind.LANDFILL]
    assert 5_000 <= haversine_m(*CENTRE, landfill.lat, landfill.lon) <= 8_000


# ------------------------------------------------------------------ sites


def test_sites_depot_transfer_station_and_landfill() -> None:
    city = default_city()
    assert set(city.sites) == set(SiteKind)
    west, south, east, north = city.district_bounds_latlon()
    landfill = city.sites[SiteKind.LANDFILL]
    assert 5_000 <= haversine_m(*CENTRE, landfill.lat, landfill.lon) <= 8_000
    assert not (west <= landfill.lon <= east and south <= landfill.lat <= north)
    for kind in (SiteKind.DEPOT, SiteKind.TRANSFER_STATION):
        site = city.sites[kind]
        tolerance = 1e-9  # a site may stand on the district's edge road
        assert west - tolerance <= site.lon <= east + tolerance
        assert south - tolerance <= site.lat <= north + tolerance
        classes = {city.streets[i].street_class for i in city.streets_at(site.node)}
        assert StreetClass.ARTERIAL in classes
    assert city.sites[SiteKind.DEPOT].name.startswith("Bãi xe")
    assert city.sites[SiteKind.TRANSFER_STATION].name.startswith("Trạm trung chuyển")
    assert landfill.name.startswith("Khu xử lý chất thải")


@pytest.mark.parametrize("seed", [42, 1, 2, 3])
def test_each_yard_contains_its_node_and_is_60_to_120_m_across(seed: int) -> None:
    city = default_city() if seed == 42 else generate_city(seed)
    assert_yards_contain_their_nodes(city)
    for site in city.sites.values():
        ring = [city.projection.to_xy(lat, lon) for lat, lon in site.polygon]
        sides = [math.dist(p, q) for p, q in itertools.pairwise(ring)]
        assert all(60.0 - 1e-6 <= side <= 120.0 + 1e-6 for side in sides)


def test_the_landfill_road_is_an_arterial_chain_from_the_grid() -> None:
    city = default_city()
    arterial_adjacency: list[list[int]] = [[] for _ in range(city.node_count())]
    for s in city.streets:
        if s.street_class is StreetClass.ARTERIAL:
            arterial_adjacency[s.start].append(s.end)
            arterial_adjacency[s.end].append(s.start)
    landfill = city.sites[SiteKind.LANDFILL].node
    assert city.sites[SiteKind.DEPOT].node in reachable(arterial_adjacency, landfill)
    outside = [
        s
        for s in city.streets
        if not city.in_district(*city.node_xy(s.start))
        or not city.in_district(*city.node_xy(s.end))
    ]
    assert outside
    assert all(s.street_class is StreetClass.ARTERIAL and s.gps_noise_m <= 6 for s in outside)


# ------------------------------------------------------------------ projection


@given(
    lat=st.floats(20.8, 21.15),
    lon=st.floats(105.6, 105.95),
)
def test_projection_round_trip_is_under_a_millimetre(lat: float, lon: float) -> None:
    projection = LocalProjection(*CENTRE)
    x, y = projection.to_xy(lat, lon)
    back = projection.to_xy(*projection.to_latlon(x, y))
    assert math.dist((x, y), back) < 1e-3
    assert projection.to_xy_array(np.array([lat]), np.array([lon]))[0].tolist() == [x, y]


@pytest.mark.parametrize("bearing_deg", [0, 45, 90, 135, 200, 290])
def test_haversine_agrees_with_the_projection_at_5_km(bearing_deg: float) -> None:
    projection = LocalProjection(*CENTRE)
    x = 5_000 * math.sin(math.radians(bearing_deg))
    y = 5_000 * math.cos(math.radians(bearing_deg))
    lat, lon = projection.to_latlon(x, y)
    assert haversine_m(*CENTRE, lat, lon) == pytest.approx(5_000, rel=0.005)


def test_bounds_cover_every_node_and_the_district() -> None:
    city = default_city()
    west, south, east, north = city.bounds_latlon()
    for node in range(city.node_count()):
        lat, lon = city.node_latlon(node)
        assert west <= lon <= east
        assert south <= lat <= north
    d_west, d_south, d_east, d_north = city.district_bounds_latlon()
    assert west <= d_west < d_east <= east
    assert south <= d_south < d_north <= north


# ------------------------------------------------------------------ GeoJSON


def test_geojson_is_valid_and_in_hanoi() -> None:
    city = default_city()
    collection = city.geojson()
    json.dumps(collection, allow_nan=False)
    assert collection["type"] == "FeatureCollection"
    lines = [f for f in collection["features"] if f["geometry"]["type"] == "LineString"]
    polygons = [f for f in collection["features"] if f["geometry"]["type"] == "Polygon"]
    assert len(lines) == len(city.streets)
    assert {p["properties"]["kind"] for p in polygons} == {k.value for k in SiteKind}
    for feature in lines:
        coordinates = feature["geometry"]["coordinates"]
        assert len(coordinates) >= 2
        for lon, lat in coordinates:
            assert 105.0 <= lon <= 106.0
            assert 20.0 <= lat <= 21.2
        assert set(feature["properties"]) >= {"id", "name", "street_class", "one_way", "speed_kmh"}
    for feature in polygons:
        (ring,) = feature["geometry"]["coordinates"]
        assert ring[0] == ring[-1]
        assert len(ring) >= 4
        assert shapely.Polygon(ring).exterior.is_ccw  # RFC 7946: exterior rings counter-clockwise


# ------------------------------------------------------------------ nearest street


def brute_force_nearest(city: City, x: float, y: float, classes: set[StreetClass]) -> float:
    ids = [s.id for s in city.streets if s.street_class in classes]
    starts = np.array([city.node_xy(city.streets[i].start) for i in ids])
    ends = np.array([city.node_xy(city.streets[i].end) for i in ids])
    d = ends - starts
    t = np.clip(((np.array([x, y]) - starts) * d).sum(axis=1) / (d * d).sum(axis=1), 0, 1)
    foot = starts + d * t[:, None]
    return float(np.hypot(foot[:, 0] - x, foot[:, 1] - y).min())


def test_nearest_street_is_the_true_nearest() -> None:
    city = default_city()
    rng = random.Random(3)
    landfill_x, landfill_y = city.node_xy(city.sites[SiteKind.LANDFILL].node)
    points = [(rng.uniform(-2_300, 2_300), rng.uniform(-1_800, 1_800)) for _ in range(300)]
    points += [(landfill_x + rng.uniform(-500, 500), landfill_y + rng.uniform(-500, 500))]
    points += [(30_000.0, -40_000.0), (0.0, 0.0)]
    for classes in (None, frozenset({StreetClass.ARTERIAL}), frozenset({StreetClass.ALLEY})):
        wanted = set(StreetClass) if classes is None else set(classes)
        for x, y in points:
            place, distance = city.nearest_street(x, y, classes)
            assert distance == pytest.approx(brute_force_nearest(city, x, y, wanted), abs=1e-9)
            assert city.streets[place.street_id].street_class in wanted
            assert 0.0 <= place.offset_m <= city.streets[place.street_id].length_m
            assert math.dist(city.position_xy(place), (x, y)) == pytest.approx(distance, abs=1e-6)


# ------------------------------------------------------------------ paths


def check_leg(city: City, leg: Leg, start: int | StreetPosition, end: int | StreetPosition) -> None:
    """The invariants every leg keeps, checked against the streets' own geometry."""

    def xy(place: int | StreetPosition) -> tuple[float, float]:
        return city.node_xy(place) if isinstance(place, int) else city.position_xy(place)

    assert math.dist(leg.points_xy[0], xy(start)) < 1e-6
    assert math.dist(leg.points_xy[-1], xy(end)) < 1e-6
    assert len(leg.speeds_kmh) == len(leg.street_ids) == len(leg.points_xy) - 1
    length = duration = 0.0
    for k, street_id in enumerate(leg.street_ids):
        street = city.streets[street_id]
        p, q = leg.points_xy[k], leg.points_xy[k + 1]
        a, b = city.node_xy(street.start), city.node_xy(street.end)
        piece = math.dist(p, q)
        assert piece > 0
        # Both ends of the segment lie on its street...
        for point in (p, q):
            t = ((point[0] - a[0]) * (b[0] - a[0]) + (point[1] - a[1]) * (b[1] - a[1])) / (
                street.length_m**2
            )
            assert -1e-9 <= t <= 1 + 1e-9
            foot = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
            assert math.dist(point, foot) < 1e-6
        # ...and a one-way street is only ever driven from its start towards its end.
        if street.one_way:
            assert (q[0] - p[0]) * (b[0] - a[0]) + (q[1] - p[1]) * (b[1] - a[1]) > 0
        assert leg.speeds_kmh[k] == street.speed_kmh
        length += piece
        duration += seconds(street, piece)
    assert leg.length_m == pytest.approx(length, rel=1e-12, abs=1e-9)
    assert leg.duration_s == pytest.approx(duration, rel=1e-12, abs=1e-9)


def bellman_ford(city: City, source: int) -> list[float]:
    best = [math.inf] * city.node_count()
    best[source] = 0.0
    moves = []
    for s in city.streets:
        cost = seconds(s, s.length_m)
        moves.append((s.start, s.end, cost))
        if not s.one_way:
            moves.append((s.end, s.start, cost))
    for _ in range(city.node_count()):
        changed = False
        for a, b, cost in moves:
            if best[a] + cost < best[b]:
                best[b] = best[a] + cost
                changed = True
        if not changed:
            break
    return best


def test_paths_between_nodes_are_optimal() -> None:
    city = small_city()
    rng = random.Random(11)
    for source in rng.sample(range(city.node_count()), 4):
        expected = bellman_ford(city, source)
        for target in range(city.node_count()):
            leg = city.path(source, target)
            assert leg.duration_s == pytest.approx(expected[target], rel=1e-9, abs=1e-9)
            check_leg(city, leg, source, target)


def test_paths_between_street_positions_are_optimal() -> None:
    city = small_city()
    rng = random.Random(12)
    from_node = {}

    def times_from(node: int) -> list[float]:
        if node not in from_node:
            from_node[node] = bellman_ford(city, node)
        return from_node[node]

    def random_place() -> StreetPosition:
        street = rng.choice(city.streets)
        return StreetPosition(street.id, rng.uniform(0, street.length_m))

    for _ in range(6):
        start = random_place()
        s = city.streets[start.street_id]
        departures = [(s.end, seconds(s, s.length_m - start.offset_m))]
        if not s.one_way:
            departures.append((s.start, seconds(s, start.offset_m)))
        for _ in range(25):
            end = random_place()
            t = city.streets[end.street_id]
            arrivals = [(t.start, seconds(t, end.offset_m))]
            if not t.one_way:
                arrivals.append((t.end, seconds(t, t.length_m - end.offset_m)))
            expected = min(
                leave + times_from(node)[enter] + arrive
                for node, leave in departures
                for enter, arrive in arrivals
            )
            leg = city.path(start, end)
            assert leg.duration_s <= expected + 1e-9
            assert leg.duration_s == pytest.approx(expected, rel=1e-9) or (
                start.street_id == end.street_id  # driving straight along is quicker still
            )
            check_leg(city, leg, start, end)


def test_same_street_forward_is_direct_and_backward_on_a_one_way_goes_round() -> None:
    city = default_city()
    one_way = next(s for s in city.streets if s.one_way and s.length_m > 60)
    behind, ahead = StreetPosition(one_way.id, 10.0), StreetPosition(one_way.id, 50.0)
    forward = city.path(behind, ahead)
    assert forward.street_ids == (one_way.id,)
    assert forward.length_m == pytest.approx(40.0)
    backward = city.path(ahead, behind)
    check_leg(city, backward, ahead, behind)
    assert backward.length_m > 100.0
    two_way = next(s for s in city.streets if not s.one_way and s.length_m > 60)
    leg = city.path(StreetPosition(two_way.id, 50.0), StreetPosition(two_way.id, 10.0))
    assert leg.street_ids == (two_way.id,)
    assert leg.length_m == pytest.approx(40.0)


def test_a_place_to_itself_is_a_single_point() -> None:
    city = small_city()
    leg = city.path(5, 5)
    assert leg.points_xy == (city.node_xy(5),)
    assert leg.duration_s == 0.0
    assert leg.street_ids == ()
    street = city.streets[0]
    leg = city.path(street.start, StreetPosition(street.id, 0.0))
    assert len(leg.points_xy) == 1


def test_avoided_streets_are_not_driven_and_cutting_off_raises_no_path() -> None:
    city = default_city()
    depot = city.sites[SiteKind.DEPOT].node
    degree = [len(city.streets_at(n)) for n in range(city.node_count())]
    dead_end = next(s for s in city.streets if degree[s.end] == 1 and s.start != depot)
    with pytest.raises(NoPath) as caught:
        city.path(depot, dead_end.end, avoid_streets=frozenset({dead_end.id}))
    assert caught.value.end == dead_end.end
    usual = city.path(depot, city.sites[SiteKind.TRANSFER_STATION].node)
    avoided = frozenset(usual.street_ids[2:6])
    detour = city.path(depot, city.sites[SiteKind.TRANSFER_STATION].node, avoided)
    assert not avoided & set(detour.street_ids)
    assert detour.duration_s >= usual.duration_s


def test_invalid_places_are_rejected() -> None:
    city = small_city()
    with pytest.raises(ValueError, match="offset_m"):
        city.path(0, StreetPosition(0, city.streets[0].length_m + 1))
    with pytest.raises(ValueError, match="street_id"):
        city.position_xy(StreetPosition(len(city.streets), 0.0))
    with pytest.raises(ValueError, match="node"):
        city.path(-1, 0)
    with pytest.raises(ValueError, match="offset_m"):
        StreetPosition(0, -1.0)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_leg_invariants_for_any_two_places(data: st.DataObject) -> None:
    city = small_city()

    def place() -> int | StreetPosition:
        if data.draw(st.booleans()):
            return data.draw(st.integers(0, city.node_count() - 1))
        street = city.streets[data.draw(st.integers(0, len(city.streets) - 1))]
        fraction = data.draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
        return StreetPosition(street.id, fraction * street.length_m)

    start, end = place(), place()
    check_leg(city, city.path(start, end), start, end)
