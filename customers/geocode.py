"""Addresses to map positions from the company's street network.

A Vietnamese address names its street ("Số 12 Nguyễn Trãi, Hà Đông"); house numbers run
along the street, odd on one side and even on the other, a frontage apart. So: find the
street whose name the address contains (diacritics and case ignored; the longest name wins,
"Nguyễn Trãi" over "Trãi"), then place the house by its number along the street's line, or
at the line's middle when the address has no number before the street's name. No street:
no position (the point is marked for a collector to capture).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from psycopg import AsyncConnection

from customers.text import fold
from geo import haversine_m
from planning.streets import map_streets

# "so 21 duong nguyen trai": the house number, then maybe "đường" / "phố" (street, road).
_NUMBER_BEFORE = re.compile(
    r"(?:^|\s)(?:so\s+(?:nha\s+)?)?(\d{1,5})[a-z]?(?:\s+(?:duong|pho|tuyen))?\s*$"
)


@dataclass(frozen=True, slots=True)
class Located:
    lat: float
    lon: float
    accuracy_m: float
    street: str


class Geocoder(Protocol):
    async def locate(
        self, conn: AsyncConnection[Any], tenant_id: int, address: str, street: str
    ) -> Located | None: ...


@dataclass(frozen=True, slots=True)
class StreetGeocoder:
    """Geocodes against the tenant's ``street_map`` (the simulator's city, or streets
    imported from OpenStreetMap)."""

    house_frontage_m: float = 4.5
    max_accuracy_m: float = 1000.0

    async def locate(
        self, conn: AsyncConnection[Any], tenant_id: int, address: str, street: str
    ) -> Located | None:
        lines: dict[str, list[tuple[tuple[float, float], ...]]] = {}
        names: dict[str, str] = {}
        for map_street in await map_streets(conn, tenant_id):
            key = fold(map_street.name)
            if len(key) >= 3:
                lines.setdefault(key, []).append(map_street.line)
                names.setdefault(key, map_street.name)
        return locate_on(lines, names, address, street, self.house_frontage_m, self.max_accuracy_m)


def locate_on(
    lines: dict[str, list[tuple[tuple[float, float], ...]]],
    names: dict[str, str],
    address: str,
    street: str,
    house_frontage_m: float,
    max_accuracy_m: float,
) -> Located | None:
    """The position of ``address`` on the streets ``lines`` (folded name -> [lon, lat]
    lines in order)."""
    folded = f" {fold(address)} "
    key = fold(street) if fold(street) in lines else None
    if key is None:
        found = [k for k in lines if f" {k} " in folded]
        if not found:
            return None
        key = max(found, key=len)
    path = [p for line in lines[key] for p in line]
    lengths = [0.0]
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(path):
        lengths.append(lengths[-1] + haversine_m(lat1, lon1, lat2, lon2))
    total = lengths[-1]
    number = None
    at = folded.find(f" {key} ")
    if at >= 0:
        match = _NUMBER_BEFORE.search(folded[:at])
        number = int(match.group(1)) if match else None
    if number is not None and number >= 1:
        along = min((number - 1) // 2 * house_frontage_m + house_frontage_m / 2, total)
        accuracy = min(2 * house_frontage_m + 10.0, max_accuracy_m)
    else:
        along = total / 2
        accuracy = min(max(total / 2, 10.0), max_accuracy_m)
    lat, lon = _point_along(path, lengths, along)
    return Located(lat, lon, accuracy, names[key])


def _point_along(
    path: list[tuple[float, float]], lengths: list[float], along: float
) -> tuple[float, float]:
    for i in range(1, len(path)):
        if lengths[i] >= along or i == len(path) - 1:
            span = lengths[i] - lengths[i - 1]
            share = 0.0 if span <= 0 or math.isclose(span, 0) else (along - lengths[i - 1]) / span
            share = min(max(share, 0.0), 1.0)
            (lon1, lat1), (lon2, lat2) = path[i - 1], path[i]
            return lat1 + (lat2 - lat1) * share, lon1 + (lon2 - lon1) * share
    lon, lat = path[0]
    return lat, lon
