"""Coordinates: great-circle distance and a local metric projection, shared by the simulator
(which lays its city out in metres) and the tracker (which measures fixes against routes)."""

from geo.projection import EARTH_RADIUS_M, M_PER_DEG_LAT, LocalProjection, haversine_m

__all__ = ["EARTH_RADIUS_M", "M_PER_DEG_LAT", "LocalProjection", "haversine_m"]
