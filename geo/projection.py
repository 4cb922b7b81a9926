"""Great-circle distance and the local metric projection (x east, y north, metres).

The simulator lays out its streets in metres (x east, y north) around one
origin and converts to latitude/longitude only at its edges (GeoJSON, GPS
fixes). An equirectangular projection is enough at district scale and is
exactly invertible, so a place converted to lat/lon and back lands where it
started (to well under a millimetre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

M_PER_DEG_LAT = 111_320.0
# Mean Earth radius (IUGG), the usual sphere for haversine distances.
EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two (lat, lon) points in degrees."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class LocalProjection:
    """Equirectangular projection around (origin_lat, origin_lon): metres, x east, y north."""

    origin_lat: float
    origin_lon: float
    m_per_deg_lon: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not -80.0 <= self.origin_lat <= 80.0:
            raise ValueError(f"origin_lat={self.origin_lat} must be within [-80, 80] degrees")
        if not -180.0 <= self.origin_lon <= 180.0:
            raise ValueError(f"origin_lon={self.origin_lon} must be within [-180, 180] degrees")
        # Frozen dataclass: the derived scale is set once, here.
        scale = M_PER_DEG_LAT * math.cos(math.radians(self.origin_lat))
        object.__setattr__(self, "m_per_deg_lon", scale)

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.origin_lon) * self.m_per_deg_lon, (lat - self.origin_lat) * M_PER_DEG_LAT

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        return self.origin_lat + y / M_PER_DEG_LAT, self.origin_lon + x / self.m_per_deg_lon

    def to_xy_array(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Bulk `to_xy`: an (n, 2) array of x, y for n latitudes and longitudes."""
        lat_array = np.asarray(lat, dtype=np.float64)
        lon_array = np.asarray(lon, dtype=np.float64)
        xy = np.empty((lat_array.size, 2), dtype=np.float64)
        xy[:, 0] = (lon_array.ravel() - self.origin_lon) * self.m_per_deg_lon
        xy[:, 1] = (lat_array.ravel() - self.origin_lat) * M_PER_DEG_LAT
        return xy

    def to_latlon_array(self, xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Bulk `to_latlon`: an (n, 2) array of lat, lon for an (n, 2) array of x, y."""
        points = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        latlon = np.empty_like(points)
        latlon[:, 0] = self.origin_lat + points[:, 1] / M_PER_DEG_LAT
        latlon[:, 1] = self.origin_lon + points[:, 0] / self.m_per_deg_lon
        return latlon
