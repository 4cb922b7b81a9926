"""Live per-vehicle state: enrichment of each fix (motion, route run, progress along the
expected path, stops, geofences) in one ordered pipeline."""

from tracker.path import Located, PathIndex
from tracker.pipeline import DEFAULT_ACCURACY_M, Observation, Tracker, end_run
from tracker.route import TrackedRun, TrackedStop, track_run
from tracker.sites import SITE_KINDS, Area, GeofenceIndex
from tracker.state import RunProgress, VehicleState

__all__ = [
    "DEFAULT_ACCURACY_M",
    "SITE_KINDS",
    "Area",
    "GeofenceIndex",
    "Located",
    "Observation",
    "PathIndex",
    "RunProgress",
    "TrackedRun",
    "TrackedStop",
    "Tracker",
    "VehicleState",
    "end_run",
    "track_run",
]
