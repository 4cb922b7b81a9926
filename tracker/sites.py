"""Which geofences (depots, transfer stations, landfills, restricted zones) contain a point."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import shapely

from fleet import Geofence, GeofenceKind
from geo import LocalProjection

# Where a truck leaves its route on purpose: route rules are quiet inside these.
SITE_KINDS = frozenset({GeofenceKind.DEPOT, GeofenceKind.TRANSFER_STATION, GeofenceKind.LANDFILL})


@dataclass(frozen=True, slots=True)
class Area:
    id: int
    name: str
    kind: GeofenceKind
    bounds: tuple[float, float, float, float]  # min x, min y, max x, max y
    polygon: shapely.Polygon  # prepared

    @property
    def site(self) -> bool:
        return self.kind in SITE_KINDS


class GeofenceIndex:
    """A tenant's geofences in the local projection; a bounding-box test first, since almost
    every fix is outside almost every geofence."""

    def __init__(self, geofences: Sequence[Geofence], projection: LocalProjection) -> None:
        areas = []
        for fence in geofences:
            polygon = shapely.Polygon([projection.to_xy(lat, lon) for lat, lon in fence.ring])
            shapely.prepare(polygon)
            areas.append(Area(fence.id, fence.name, fence.kind, polygon.bounds, polygon))
        self.areas = tuple(areas)
        self.by_id = {area.id: area for area in areas}

    def containing(self, x: float, y: float) -> frozenset[int]:
        inside = [
            area.id
            for area in self.areas
            if area.bounds[0] <= x <= area.bounds[2]
            and area.bounds[1] <= y <= area.bounds[3]
            and shapely.contains_xy(area.polygon, x, y)
        ]
        return frozenset(inside) if inside else _NONE

    def boundary_distance_m(self, area_id: int, x: float, y: float) -> float:
        """How far ``(x, y)`` is from the area's edge (inside or out)."""
        return float(shapely.distance(self.by_id[area_id].polygon.exterior, shapely.Point(x, y)))

    def any_site(self, ids: frozenset[int]) -> bool:
        return any(self.by_id[i].site for i in ids)


_NONE: frozenset[int] = frozenset()
