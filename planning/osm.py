"""An OpenStreetMap extract as the company's street network.

Input: GeoJSON LineStrings (and MultiLineStrings) with OSM tags as properties, as
``osmium export`` or Overpass give them. Drivable ways become streets (``highway`` picks the
kind, ``oneway`` the direction, ``maxspeed`` the speed); footways, steps and the like are
left out, and so are ways closed to motor vehicles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planning.errors import InvalidValue
from planning.streets import MapStreet, StreetKind

HIGHWAY_KIND = {
    "motorway": StreetKind.ARTERIAL,
    "trunk": StreetKind.ARTERIAL,
    "motorway_link": StreetKind.ARTERIAL,
    "trunk_link": StreetKind.ARTERIAL,
    "primary": StreetKind.PRIMARY,
    "primary_link": StreetKind.PRIMARY,
    "secondary": StreetKind.SECONDARY,
    "secondary_link": StreetKind.SECONDARY,
    "tertiary": StreetKind.SECONDARY,
    "tertiary_link": StreetKind.SECONDARY,
    "residential": StreetKind.RESIDENTIAL,
    "living_street": StreetKind.RESIDENTIAL,
    "unclassified": StreetKind.RESIDENTIAL,
    "road": StreetKind.OTHER,
    "service": StreetKind.ALLEY,  # ngõ: Hà Nội's alleys are mostly tagged service
    "alley": StreetKind.ALLEY,
    "track": StreetKind.OTHER,
}
CLOSED_TO_TRUCKS = {"no", "private"}


@dataclass(frozen=True, slots=True)
class OsmImport:
    streets: list[MapStreet]
    skipped: int  # features that are not drivable ways


def streets_from_geojson(data: Mapping[str, Any]) -> OsmImport:
    if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise InvalidValue("file: not a GeoJSON FeatureCollection")
    streets: list[MapStreet] = []
    skipped = 0
    for feature in data["features"]:
        made = _streets(feature) if isinstance(feature, dict) else []
        skipped += not made
        streets += made
    return OsmImport(streets, skipped)


def _streets(feature: Mapping[str, Any]) -> list[MapStreet]:
    tags = feature.get("properties") or {}
    kind = HIGHWAY_KIND.get(str(tags.get("highway", "")))
    if kind is None or str(tags.get("access", "")) in CLOSED_TO_TRUCKS:
        return []
    geometry = feature.get("geometry") or {}
    if geometry.get("type") == "LineString":
        lines = [geometry.get("coordinates")]
    elif geometry.get("type") == "MultiLineString":
        lines = list(geometry.get("coordinates") or [])
    else:
        return []
    oneway = str(tags.get("oneway", "")).lower()
    reverse = oneway == "-1"
    one_way = reverse or oneway in ("yes", "true", "1") or tags.get("junction") == "roundabout"
    name = str(tags.get("name", ""))[:200]
    speed = _speed_kmh(tags.get("maxspeed"))
    made = []
    for line in lines:
        points = _points(line)
        if len(points) >= 2:
            made.append(
                MapStreet(
                    name, kind, one_way, tuple(reversed(points)) if reverse else points, speed
                )
            )
    return made


def _points(line: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(line, list):
        return ()
    points = []
    for position in line:
        try:
            lon, lat = float(position[0]), float(position[1])
        except (TypeError, ValueError, IndexError):
            return ()
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            return ()
        points.append((lon, lat))
    return tuple(points)


def _speed_kmh(value: Any) -> float | None:
    """OSM maxspeed: "40", "40 km/h", "25 mph"; anything else is no figure."""
    text = str(value or "").strip().lower()
    number, _, unit = text.partition(" ")
    try:
        speed = float(number)
    except ValueError:
        return None
    if unit == "mph":
        speed *= 1.609
    return speed if 0 < speed <= 130 else None
