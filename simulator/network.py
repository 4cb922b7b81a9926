"""The value types of the synthetic street network: streets, places on them, sites and legs.

They live apart from `simulator.city` so that the layout generator
(`simulator.streets`) and the `City` class can both use them; `simulator.city`
re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StreetClass(StrEnum):
    ARTERIAL = "arterial"  # đường
    STREET = "street"  # phố
    ALLEY = "alley"  # ngõ


class SiteKind(StrEnum):
    DEPOT = "depot"
    TRANSFER_STATION = "transfer_station"
    LANDFILL = "landfill"


@dataclass(frozen=True, slots=True)
class Street:
    """A straight street segment between two nodes; one-way streets run start -> end only."""

    id: int
    start: int
    end: int
    street_class: StreetClass
    name: str
    one_way: bool
    length_m: float
    speed_kmh: float  # free-flow speed of a loaded collection truck
    gps_noise_m: float  # typical GPS error there: open sky on arterials, urban canyon in alleys


@dataclass(frozen=True, slots=True)
class StreetPosition:
    """A place on a street, `offset_m` metres from the street's start node."""

    street_id: int
    offset_m: float

    def __post_init__(self) -> None:
        if self.street_id < 0:
            raise ValueError(f"street_id={self.street_id} must be >= 0")
        if not self.offset_m >= 0.0:  # also rejects NaN
            raise ValueError(f"offset_m={self.offset_m} must be >= 0")


@dataclass(frozen=True, slots=True)
class Site:
    """A depot, transfer station or landfill: a street node and a yard polygon around it."""

    kind: SiteKind
    name: str
    node: int
    lat: float
    lon: float
    polygon: tuple[tuple[float, float], ...]  # closed (lat, lon) ring, counter-clockwise


@dataclass(frozen=True, slots=True)
class Leg:
    """A drivable path between two places, as a polyline in the city's projection."""

    points_xy: tuple[tuple[float, float], ...]  # first = start place, last = end place
    speeds_kmh: tuple[float, ...]  # one per segment
    street_ids: tuple[int, ...]  # one per segment
    length_m: float
    duration_s: float  # sum of segment length / speed
