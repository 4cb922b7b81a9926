"""Service points along the synthetic city's streets."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter

import pytest

from simulator import names
from simulator.city import City, StreetClass, generate_city
from simulator.points import ServicePointKind, ServicePointSpec, place_service_points, ward_at

shapely = pytest.importorskip("shapely")


@functools.cache
def city() -> City:
    return generate_city(42)


@functools.cache
def points() -> tuple[ServicePointSpec, ...]:
    return tuple(place_service_points(city(), 2_000, seed=9))


def test_the_mix_of_kinds() -> None:
    counts = Counter(p.kind for p in points())
    shares = {kind: counts[kind] / len(points()) for kind in ServicePointKind}
    assert shares[ServicePointKind.HOUSEHOLD] == pytest.approx(0.80, abs=0.02)
    assert shares[ServicePointKind.BUSINESS_HOUSEHOLD] == pytest.approx(0.12, abs=0.02)
    assert shares[ServicePointKind.BUSINESS] == pytest.approx(0.05, abs=0.01)
    assert shares[ServicePointKind.AGENCY] == pytest.approx(0.03, abs=0.01)
    small = Counter(p.kind for p in place_service_points(city(), 20, seed=1))
    assert small[ServicePointKind.HOUSEHOLD] == 16


def test_codes_and_phones_are_unique_and_well_formed() -> None:
    codes = [p.code for p in points()]
    phones = [p.phone for p in points()]
    assert len(set(codes)) == len(codes)
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"KH\d{6}", code) for code in codes)
    assert all(re.fullmatch(r"0[39]\d{8}", phone) for phone in phones)


def test_each_building_stands_4_to_15_m_back_from_its_stop_the_nearest_street_point() -> None:
    c = city()
    for p in points():
        building = c.projection.to_xy(p.lat, p.lon)
        setback = math.dist(building, c.position_xy(p.stop))
        assert 4.0 - 1e-6 <= setback <= 15.0 + 1e-6
        # No other street is nearer: the truck collects from the street the building faces.
        _, nearest = c.nearest_street(*building)
        assert nearest == pytest.approx(setback, abs=1e-6)


def test_points_stay_in_the_district_off_the_landfill_road_and_out_of_the_yards() -> None:
    c = city()
    yards = [
        shapely.Polygon([c.projection.to_xy(lat, lon) for lat, lon in site.polygon])
        for site in c.sites.values()
    ]
    for p in points():
        x, y = c.projection.to_xy(p.lat, p.lon)
        assert c.in_district(x, y)
        street = c.streets[p.stop.street_id]
        assert c.in_district(*c.node_xy(street.start))
        assert c.in_district(*c.node_xy(street.end))
        assert not any(yard.contains(shapely.Point(x, y)) for yard in yards)


def test_households_crowd_the_alleys() -> None:
    c = city()
    households = [p for p in points() if p.kind is ServicePointKind.HOUSEHOLD]
    on_alleys = sum(
        c.streets[p.stop.street_id].street_class is StreetClass.ALLEY for p in households
    )
    alley_m = sum(s.length_m for s in c.streets if s.street_class is StreetClass.ALLEY)
    district_m = sum(
        s.length_m
        for s in c.streets
        if c.in_district(*c.node_xy(s.start)) and c.in_district(*c.node_xy(s.end))
    )
    assert on_alleys / len(households) > 1.3 * alley_m / district_m


def test_residents_volume_and_waste_by_kind() -> None:
    for p in points():
        if p.kind is ServicePointKind.HOUSEHOLD:
            assert p.so_khau is not None
            assert 1 <= p.so_khau <= 8
            assert p.volume_m3_per_day is None
            assert 0.6 * p.so_khau - 0.01 <= p.waste_kg_per_day <= 0.9 * p.so_khau + 0.01
        else:
            assert p.so_khau is None
            assert p.volume_m3_per_day is not None
            assert p.volume_m3_per_day > 0
            low, high = (3, 30) if p.kind is ServicePointKind.BUSINESS_HOUSEHOLD else (10, 150)
            assert low <= p.waste_kg_per_day <= high
    so_khau = Counter(p.so_khau for p in points() if p.so_khau is not None)
    assert sum(so_khau[n] for n in range(2, 6)) > 0.6 * sum(so_khau.values())


def test_names_addresses_and_wards() -> None:
    c = city()
    for p in points():
        street = c.streets[p.stop.street_id]
        assert re.fullmatch(
            rf"Số \d+(?:[A-Z]|/\d+)? {re.escape(street.name)}, Hà Đông, Hà Nội", p.address
        )
        assert p.ward in names.WARD_NAMES
        assert p.ward == ward_at(c, *c.projection.to_xy(p.lat, p.lon))
        if p.kind is ServicePointKind.HOUSEHOLD:
            family = p.name.split()[0]
            assert len(p.name.split()) == 3
            assert family in dict(names.FAMILY_NAMES)
    addresses = [p.address for p in points()]
    assert len(set(addresses)) == len(addresses)
    others = [p.name for p in points() if p.kind is not ServicePointKind.HOUSEHOLD]
    assert len(set(others)) == len(others)
    assert len({p.ward for p in points()}) >= 10


def test_house_numbers_are_odd_on_one_side_and_even_on_the_other() -> None:
    c = city()
    for p in points():
        street = c.streets[p.stop.street_id]
        (x0, y0), (x1, y1) = c.node_xy(street.start), c.node_xy(street.end)
        x, y = c.projection.to_xy(p.lat, p.lon)
        left = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) > 0
        number = re.match(r"Số (\d+)", p.address)
        assert number is not None
        assert int(number[1]) % 2 == (1 if left else 0)


def test_placement_is_deterministic() -> None:
    assert tuple(place_service_points(city(), 2_000, seed=9)) == points()
    fresh_city = generate_city(42)
    assert place_service_points(fresh_city, 300, seed=9) == place_service_points(city(), 300, 9)
    assert place_service_points(city(), 300, seed=10) != place_service_points(city(), 300, seed=9)


def test_count_zero_and_negative() -> None:
    assert place_service_points(city(), 0, seed=1) == []
    with pytest.raises(ValueError, match="count"):
        place_service_points(city(), -1, seed=1)
