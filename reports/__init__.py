"""Reports over stored data: a vehicle's day (trips, parkings, summary) and a route run's
compliance (stops served, alerts, driving inside the corridor)."""

from reports.compliance import (
    assess_compliance,
    corridor_distance,
    route_compliance,
    stop_statuses,
    track_window,
)
from reports.errors import InvalidValue, NotFound, ReportsError
from reports.models import (
    DEFAULT_COMPLIANCE_SETTINGS,
    DEFAULT_REPORT_SETTINGS,
    ComplianceSettings,
    CorridorDistance,
    DaySummary,
    MissedStop,
    Parking,
    ReportSettings,
    RouteCompliance,
    StopCompliance,
    StopStatus,
    Trip,
    VehicleDay,
)
from reports.trips import LOCAL_ZONE, local_day_bounds, summarise, vehicle_day

__all__ = [
    "DEFAULT_COMPLIANCE_SETTINGS",
    "DEFAULT_REPORT_SETTINGS",
    "LOCAL_ZONE",
    "ComplianceSettings",
    "CorridorDistance",
    "DaySummary",
    "InvalidValue",
    "MissedStop",
    "NotFound",
    "Parking",
    "ReportSettings",
    "ReportsError",
    "RouteCompliance",
    "StopCompliance",
    "StopStatus",
    "Trip",
    "VehicleDay",
    "assess_compliance",
    "corridor_distance",
    "local_day_bounds",
    "route_compliance",
    "stop_statuses",
    "summarise",
    "track_window",
    "vehicle_day",
]
