"""Service points: the customers' buildings along the streets of a synthetic city.

Households crowd the alleys, shops and offices front the streets and
arterials. Each building stands 4-15 m back from its street, nearer to it
than to any other street, and its collection stop is the foot of the
building on that street. The same city, count and seed give the same points.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from simulator import names
from simulator.city import City, Street, StreetClass, StreetPosition
from simulator.errors import SimulatorError
from simulator.plane import distance_to_convex, signed_area
from simulator.streets import house_number


class ServicePointKind(StrEnum):
    HOUSEHOLD = "household"  # hộ gia đình
    BUSINESS_HOUSEHOLD = "business_household"  # hộ kinh doanh
    BUSINESS = "business"  # doanh nghiệp
    AGENCY = "agency"  # cơ quan


@dataclass(frozen=True, slots=True)
class ServicePointSpec:
    code: str  # "KH000123"
    kind: ServicePointKind
    name: str
    phone: str
    address: str
    ward: str
    lat: float  # the building
    lon: float
    stop: StreetPosition  # where a truck stops to collect: the building's foot on its street
    so_khau: int | None  # registered residents, households only
    volume_m3_per_day: float | None  # everyone but households, who pay per resident
    waste_kg_per_day: float


KIND_SHARES = {
    ServicePointKind.HOUSEHOLD: 0.80,
    ServicePointKind.BUSINESS_HOUSEHOLD: 0.12,
    ServicePointKind.BUSINESS: 0.05,
    ServicePointKind.AGENCY: 0.03,
}
# Buildings per metre of street, relative, by kind and street class.
FRONTAGE_WEIGHTS = {
    ServicePointKind.HOUSEHOLD: {
        StreetClass.ALLEY: 2.0,
        StreetClass.STREET: 1.0,
        StreetClass.ARTERIAL: 0.4,
    },
    ServicePointKind.BUSINESS_HOUSEHOLD: {
        StreetClass.ALLEY: 0.8,
        StreetClass.STREET: 1.5,
        StreetClass.ARTERIAL: 1.5,
    },
    ServicePointKind.BUSINESS: {
        StreetClass.ALLEY: 0.2,
        StreetClass.STREET: 1.0,
        StreetClass.ARTERIAL: 2.0,
    },
    ServicePointKind.AGENCY: {
        StreetClass.ALLEY: 0.3,
        StreetClass.STREET: 1.5,
        StreetClass.ARTERIAL: 1.5,
    },
}
SETBACK_M = (4.0, 15.0)
CORNER_MARGIN_M = 6.0  # buildings keep off the junctions at either end of a street
YARD_MARGIN_M = 10.0  # and away from the sites' yards
ATTEMPTS_PER_POINT = 200
WARD_SIDE_M = 1_000.0
SO_KHAU_WEIGHTS = {1: 6, 2: 14, 3: 22, 4: 26, 5: 17, 6: 8, 7: 4, 8: 3}
WASTE_KG_PER_PERSON_DAY = (0.6, 0.9)
SHOP_WASTE_KG_PER_DAY = (3.0, 30.0)
LARGE_WASTE_KG_PER_DAY = (10.0, 150.0)
BULK_DENSITY_KG_PER_M3 = (250.0, 400.0)  # loose mixed waste in bins
PHONE_PREFIXES = (
    "090",
    "091",
    "093",
    "094",
    "096",
    "097",
    "098",
    "032",
    "033",
    "034",
    "035",
    "036",
    "037",
    "038",
    "039",
)


def place_service_points(city: City, count: int, seed: int) -> list[ServicePointSpec]:
    """`count` service points, ~80 % households, 12 % shops, 5 % businesses, 3 % agencies."""
    if count < 0:
        raise ValueError(f"count={count} must be >= 0")
    rng = random.Random(seed)
    frontage = _Frontage(city)
    naming = _Naming(rng)
    points = []
    for index, kind in enumerate(_kind_mix(count, rng)):
        street, offset_m, left, (x, y) = frontage.pick(kind, rng)
        ward = ward_at(city, x, y)
        lat, lon = city.projection.to_latlon(x, y)
        so_khau, waste_kg, volume_m3 = _waste(kind, rng)
        house = frontage.house(street, offset_m, left)
        points.append(
            ServicePointSpec(
                code=f"KH{index + 1:06d}",
                kind=kind,
                name=naming.name(kind, ward),
                phone=naming.phone(),
                address=f"Số {house} {street.name}, Hà Đông, Hà Nội",
                ward=ward,
                lat=lat,
                lon=lon,
                stop=StreetPosition(street.id, offset_m),
                so_khau=so_khau,
                volume_m3_per_day=volume_m3,
                waste_kg_per_day=waste_kg,
            )
        )
    return points


def ward_at(city: City, x: float, y: float) -> str:
    """The ward (phường) of a point: the district is cut into a grid of ~1 km wards."""
    west, south, east, north = city.district_xy
    columns = max(1, round((east - west) / WARD_SIDE_M))
    rows = max(1, round((north - south) / WARD_SIDE_M))
    column = min(columns - 1, max(0, int((x - west) / (east - west) * columns)))
    row = min(rows - 1, max(0, int((y - south) / (north - south) * rows)))
    index = row * columns + column
    name = names.WARD_NAMES[index % len(names.WARD_NAMES)]
    repeat = index // len(names.WARD_NAMES)
    return name if repeat == 0 else f"{name} {repeat + 1}"


def _kind_mix(count: int, rng: random.Random) -> list[ServicePointKind]:
    """Exactly the shares (largest remainder), in seeded order."""
    exact = {kind: share * count for kind, share in KIND_SHARES.items()}
    counts = {kind: math.floor(value) for kind, value in exact.items()}
    by_remainder = sorted(
        exact, key=lambda kind: (counts[kind] - exact[kind], list(exact).index(kind))
    )
    for kind in by_remainder[: count - sum(counts.values())]:
        counts[kind] += 1
    kinds = [kind for kind, n in counts.items() for _ in range(n)]
    rng.shuffle(kinds)
    return kinds


def _waste(kind: ServicePointKind, rng: random.Random) -> tuple[int | None, float, float | None]:
    """(so_khau, kg per day, m3 per day)."""
    if kind is ServicePointKind.HOUSEHOLD:
        so_khau = rng.choices(list(SO_KHAU_WEIGHTS), weights=list(SO_KHAU_WEIGHTS.values()))[0]
        return so_khau, round(so_khau * rng.uniform(*WASTE_KG_PER_PERSON_DAY), 2), None
    low_high = (
        SHOP_WASTE_KG_PER_DAY
        if kind is ServicePointKind.BUSINESS_HOUSEHOLD
        else LARGE_WASTE_KG_PER_DAY
    )
    waste_kg = round(rng.uniform(*low_high), 2)
    volume_m3 = max(0.001, round(waste_kg / rng.uniform(*BULK_DENSITY_KG_PER_M3), 3))
    return None, waste_kg, volume_m3


class _Frontage:
    """The district's streets as building plots, and their house numbers."""

    def __init__(self, city: City) -> None:
        self.city = city
        # The landfill road outside the district has no customers.
        self.streets = [
            s
            for s in city.streets
            if s.length_m > 2 * CORNER_MARGIN_M + 1.0
            and city.in_district(*city.node_xy(s.start))
            and city.in_district(*city.node_xy(s.end))
        ]
        self.cumulative = {
            kind: list(
                itertools.accumulate(weights[s.street_class] * s.length_m for s in self.streets)
            )
            for kind, weights in FRONTAGE_WEIGHTS.items()
        }
        self.yards = []
        for site in city.sites.values():
            ring = [city.projection.to_xy(lat, lon) for lat, lon in site.polygon]
            self.yards.append(ring if signed_area(ring) > 0 else ring[::-1])
        self.along_m = _distance_along_lines(city)
        self.numbers_taken: set[tuple[str, str]] = set()

    def pick(
        self, kind: ServicePointKind, rng: random.Random
    ) -> tuple[Street, float, bool, tuple[float, float]]:
        """A street, the stop's offset on it, the side (left?) and the building's position."""
        cumulative = self.cumulative[kind]
        for _ in range(ATTEMPTS_PER_POINT):
            street = self.streets[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
            offset_m = rng.uniform(CORNER_MARGIN_M, street.length_m - CORNER_MARGIN_M)
            left = rng.random() < 0.5
            setback_m = rng.uniform(*SETBACK_M)
            (x0, y0), (x1, y1) = self.city.node_xy(street.start), self.city.node_xy(street.end)
            stop_x, stop_y = self.city.position_xy(StreetPosition(street.id, offset_m))
            side = setback_m / street.length_m * (1 if left else -1)
            x, y = stop_x - (y1 - y0) * side, stop_y + (x1 - x0) * side
            if not self.city.in_district(x, y) or any(
                distance_to_convex((x, y), yard) < YARD_MARGIN_M for yard in self.yards
            ):
                continue
            # A building nearer to another street would be collected there; draw again.
            _, nearest_m = self.city.nearest_street(x, y)
            if nearest_m < setback_m - 1e-6:
                continue
            return street, offset_m, left, (x, y)
        raise SimulatorError(f"no room for another {kind.value} after {ATTEMPTS_PER_POINT} tries")

    def house(self, street: Street, offset_m: float, left: bool) -> str:
        """The house number, with a letter when a neighbour has the plain number already."""
        number = house_number(self.along_m[street.id] + offset_m, left)
        for suffix in itertools.chain(("",), "ABCDEGHK", (f"/{k}" for k in itertools.count(1))):
            label = f"{number}{suffix}"
            if (street.name, label) not in self.numbers_taken:
                self.numbers_taken.add((street.name, label))
                return label
        raise AssertionError("unreachable")


def _distance_along_lines(city: City) -> dict[int, float]:
    """For each street, how far its start is from the start of its named line (its road).

    A line's streets run start to end in order (one-way lines in their
    direction), so the line starts at the one node that starts a street but
    ends none.
    """
    by_name: dict[str, list[Street]] = defaultdict(list)
    for street in city.streets:
        by_name[street.name].append(street)
    along: dict[int, float] = {street.id: 0.0 for street in city.streets}
    for streets in by_name.values():
        by_start = {s.start: s for s in streets}
        ends = {s.end for s in streets}
        firsts = [s for s in streets if s.start not in ends]
        if len(firsts) != 1 or len(by_start) != len(streets):
            continue  # not a simple path: number every segment from its own start
        distance = 0.0
        here: Street | None = firsts[0]
        while here is not None:
            along[here.id] = distance
            distance += here.length_m
            here = by_start.get(here.end)
    return along


class _Naming:
    """Vietnamese names for people, shops, companies and offices; phone numbers."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.family_names = [name for name, _ in names.FAMILY_NAMES]
        self.family_weights = list(itertools.accumulate(share for _, share in names.FAMILY_NAMES))
        self.taken: set[str] = set()  # shop, company and office names are unique
        self.phones: set[str] = set()

    def name(self, kind: ServicePointKind, ward: str) -> str:
        if kind is ServicePointKind.HOUSEHOLD:
            return self.person()
        make = {
            ServicePointKind.BUSINESS_HOUSEHOLD: self._shop,
            ServicePointKind.BUSINESS: self._business,
            ServicePointKind.AGENCY: self._agency,
        }[kind]
        for _ in range(20):
            candidate = make(ward)
            if candidate not in self.taken:
                break
        else:
            candidate = f"{make(ward)} {ward}"
            while candidate in self.taken:
                candidate = f"{candidate} 2"
        self.taken.add(candidate)
        return candidate

    def person(self) -> str:
        rng = self.rng
        family = rng.choices(self.family_names, cum_weights=self.family_weights)[0]
        if rng.random() < 0.5:
            middle, given = rng.choice(names.MALE_MIDDLE_NAMES), rng.choice(names.MALE_GIVEN_NAMES)
        else:
            middle = rng.choice(names.FEMALE_MIDDLE_NAMES)
            given = rng.choice(names.FEMALE_GIVEN_NAMES)
        return f"{family} {middle} {given}"

    def _shop(self, _ward: str) -> str:
        rng = self.rng
        owner = rng.choice(names.FEMALE_GIVEN_NAMES + names.MALE_GIVEN_NAMES)
        if rng.random() < 0.4:
            owner = f"{rng.choice(names.SHOP_NAME_FIRST_SYLLABLES)} {owner}"
        return f"{rng.choice(names.SHOP_KINDS)} {owner}"

    def _business(self, _ward: str) -> str:
        rng = self.rng
        brand = rng.choice(names.BRAND_NAMES)
        if rng.random() < 0.5:
            form = rng.choice(("TNHH", "Cổ phần"))
            return f"Công ty {form} {rng.choice(names.COMPANY_SECTORS)} {brand}"
        return f"{rng.choice(names.BUSINESS_PLACES)} {brand}"

    def _agency(self, ward: str) -> str:
        rng = self.rng
        return rng.choice(names.AGENCY_TEMPLATES).format(
            ward=ward, person=rng.choice(names.STREET_NAMES), number=rng.randint(1, 30)
        )

    def phone(self) -> str:
        while True:
            number = self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**7):07d}"
            if number not in self.phones:
                self.phones.add(number)
                return number
