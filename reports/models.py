"""Values of the reports: their settings (validated, units in the names) and their results.

Settings are pydantic models that refuse a bad value on construction, naming the field;
results are frozen dataclasses (built in bulk, never validated twice). Every datetime in a
result is timezone-aware UTC; the local calendar only chooses which day a report covers.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from alerts import AlertKind
from planning import StopKind


class ReportSettings(BaseModel):
    """Thresholds of the trips and parkings reports, defaulted like Traccar's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Below this speed the vehicle is standing still ...
    stop_speed_kmh: float = Field(3.0, ge=0, le=50)
    # ... and standing still this long is a parking (Traccar's minimalParkingDuration).
    min_stop_s: float = Field(180.0, ge=0, le=86_400)
    # Movement between parkings is a trip when it covers this distance or lasts this long;
    # less is the vehicle shunting about where it stands, which stays part of the parking.
    min_trip_distance_m: float = Field(200.0, ge=0, le=100_000)
    min_trip_s: float = Field(120.0, ge=0, le=86_400)
    # No fix for longer than this ends a trip: nothing says how the vehicle went meanwhile.
    max_gap_s: float = Field(600.0, gt=0, le=86_400)
    # A step between two fixes faster than this is a GPS jump, not driving.
    max_plausible_speed_kmh: float = Field(200.0, gt=0, le=1000)


class ComplianceSettings(BaseModel):
    """How a route run is judged; the run's span mirrors the rules engine's
    (``rules.run_early_s`` and ``rules.run_overrun_s``) so both call the same stops missed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The run's track starts this long before its planned start ...
    run_early_s: float = Field(1800.0, ge=0, le=86_400)
    # ... and the run is over this long after its planned end: unserved stops are missed.
    run_overrun_s: float = Field(7200.0, ge=0, le=86_400)
    # A step between two fixes faster than this is a GPS jump, not driving.
    max_plausible_speed_kmh: float = Field(200.0, gt=0, le=1000)


DEFAULT_REPORT_SETTINGS = ReportSettings()
DEFAULT_COMPLIANCE_SETTINGS = ComplianceSettings()


# ---------------------------------------------------------------- a vehicle's day


@dataclass(frozen=True, slots=True)
class Trip:
    """Driving between two parkings (or the day's edges, or a gap in the data)."""

    start_time: dt.datetime
    end_time: dt.datetime
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    distance_m: float
    duration_s: float
    max_speed_kmh: float
    avg_speed_kmh: float  # distance over duration, short halts included


@dataclass(frozen=True, slots=True)
class Parking:
    """Standing still for at least ``min_stop_s`` (Traccar's "stop"; named apart from the
    route stops of a run)."""

    start_time: dt.datetime
    end_time: dt.datetime
    duration_s: float
    lat: float  # mean of the standing fixes
    lon: float
    ignition_on_share: float | None  # of the parking's time; None when no fix tells


@dataclass(frozen=True, slots=True)
class DaySummary:
    distance_m: float  # haversine between consecutive fixes, GPS jumps left out
    driving_s: float  # the trips' time
    stopped_s: float  # the parkings' time
    max_speed_kmh: float | None
    avg_moving_speed_kmh: float | None  # the trips' distance over their time
    fix_count: int  # the fixes read
    jump_fix_count: int  # of which left out as GPS jumps
    first_fix: dt.datetime | None
    last_fix: dt.datetime | None
    engine_s: float | None  # ignition on; None when no fix tells
    odometer_distance_m: float | None  # the device's own count, when most fixes carry it


@dataclass(frozen=True, slots=True)
class VehicleDay:
    trips: tuple[Trip, ...]
    parkings: tuple[Parking, ...]
    summary: DaySummary


# ---------------------------------------------------------------- a route run


class StopStatus(enum.StrEnum):
    VISITED = "visited"  # served in time
    LATE = "late"  # served after its window closed
    PROBABLE = "probable"  # only a slow pass: probably served
    MISSED = "missed"  # a missed_stop alert, its window closed or the run over, unserved
    PENDING = "pending"  # not yet due


@dataclass(frozen=True, slots=True)
class StopCompliance:
    seq: int
    kind: StopKind
    service_point_id: int | None
    lat: float
    lon: float
    planned_arrival: dt.datetime
    window_end: dt.datetime | None
    status: StopStatus


@dataclass(frozen=True, slots=True)
class MissedStop:
    seq: int
    service_point_id: int | None
    lat: float
    lon: float
    planned_arrival: dt.datetime


@dataclass(frozen=True, slots=True)
class CorridorDistance:
    """How much of the run's driving stayed within ``corridor_m`` of its expected path: a
    step counts inside when both its fixes are."""

    corridor_m: float
    since: dt.datetime  # the track read: [since, until)
    until: dt.datetime
    fix_count: int
    distance_total_m: float
    distance_inside_m: float
    inside_share: float | None  # None when the vehicle did not move (or sent nothing)


@dataclass(frozen=True, slots=True)
class RouteCompliance:
    route_run_id: int
    vehicle_id: int
    as_of: dt.datetime
    stops: tuple[StopCompliance, ...]  # every stop, unload stops too, by seq
    collect_stop_count: int
    status_counts: Mapping[StopStatus, int]  # collect stops only; every status present
    served_share: float | None  # (visited + late) / collect stops; None without any
    missed_stops: tuple[MissedStop, ...]  # collect stops only
    alert_counts: Mapping[AlertKind, int]  # the run's alerts by kind, withdrawn ones left out
    corridor: CorridorDistance
