"""Alerts (ARCHITECTURE §7) and stop visits: what the rules engine tells people, and its proof.

The rules emit *signals* (an alert opened, got new evidence, resolved) and *visits* (a stop
was served). Both are keyed so that applying them twice changes nothing: a restart that
replays the day, or a late fix that re-evaluates a stretch, never duplicates an alert.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any


class AlertKind(enum.StrEnum):
    WRONG_ROUTE = "wrong_route"
    MISSED_STOP = "missed_stop"
    OFFLINE = "offline"
    SPEEDING = "speeding"
    IDLE = "idle"
    GEOFENCE_ENTER = "geofence_enter"
    GEOFENCE_EXIT = "geofence_exit"
    GPS_JUMP = "gps_jump"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Change(enum.StrEnum):
    """What happened to an alert: the rules open, update and resolve; people the rest."""

    OPENED = "opened"
    UPDATED = "updated"  # more evidence (a longer excursion, a farther distance)
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"


class Resolution(enum.StrEnum):
    CLEARED = "cleared"  # the condition ended: back on route, online again, moving again
    VISITED_LATE = "visited_late"  # a missed stop was served after all
    WITHDRAWN = "withdrawn"  # late data showed the condition never held
    BY_PERSON = "by_person"
    ONE_SHOT = "one_shot"  # an event without duration (a geofence crossing, a GPS jump)
    RUN_CANCELLED = "run_cancelled"  # its route run was cancelled: nobody tracks it any more


@dataclass(frozen=True, slots=True)
class AlertSignal:
    """One change the rules engine made to an alert, stamped with the fix time behind it.

    ``key`` names the alert for good (kind, device, run, stop and the fix time it opened
    at), so the same evidence always gives the same key.
    """

    change: Change  # OPENED, UPDATED or RESOLVED
    key: str
    kind: AlertKind
    severity: Severity
    tenant_id: int
    device_id: int
    vehicle_id: int | None
    route_run_id: int | None
    stop_seq: int | None
    at: dt.datetime  # event time: opened_at, last_evidence_at or resolved_at
    message: str  # for people, Vietnamese: "Xe 29C-10001 đã đi qua điểm 12 mà chưa thu gom"
    evidence: dict[str, Any] = field(default_factory=dict)
    resolution: Resolution | None = None  # with RESOLVED
    # With OPENED: the key this alert was opened under before late data moved its start (the
    # key holds the start). The store renames the alert, which stays one alert.
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as stored in ``alerts``."""

    id: int
    key: str
    tenant_id: int
    kind: AlertKind
    severity: Severity
    device_id: int | None
    vehicle_id: int | None
    route_run_id: int | None
    stop_id: int | None
    stop_seq: int | None
    opened_at: dt.datetime
    last_evidence_at: dt.datetime
    state: AlertState
    message: str
    evidence: dict[str, Any]
    resolved_at: dt.datetime | None
    resolution: Resolution | None
    resolved_by: int | None  # staff id of the person who resolved it
    acknowledged_at: dt.datetime | None
    acknowledged_by: int | None
    acknowledge_note: str | None
    assigned_to: int | None
    assigned_at: dt.datetime | None
    assigned_by: int | None = None  # staff id of the person who assigned it
    resolve_note: str | None = None  # why it resolved: the person's note or the rules' message


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """What the alert bus carries: the alert after a change, as stored."""

    change: Change
    alert: Alert


class VisitStatus(enum.StrEnum):
    VISITED = "visited"  # dwelt inside the radius, a bin lift, or a staff confirmation there
    PROBABLE = "probable"  # passed slowly inside the radius, or inferred from the time taken


class VisitEvidence(enum.StrEnum):
    DWELL = "dwell"
    BIN_LIFT = "bin_lift"
    STAFF_CONFIRMATION = "staff_confirmation"
    SLOW_PASS = "slow_pass"
    # Fixes too sparse to see a dwell, but the truck took longer over the stretch around the
    # stop than driving it takes, by at least the service of the stops in it (probable only).
    INFERRED_FROM_TIME = "inferred_from_time"


@dataclass(frozen=True, slots=True)
class StopVisit:
    """A route stop served (or probably served): the proof of service billing relies on.

    Keyed by (route_run_id, stop_seq, arrival_at): recording it again with a later
    departure or stronger evidence updates the same row.
    """

    tenant_id: int
    route_run_id: int
    stop_seq: int
    vehicle_id: int | None
    device_id: int
    service_point_id: int | None
    status: VisitStatus
    evidence: VisitEvidence
    arrival_at: dt.datetime
    departure_at: dt.datetime | None  # None while the vehicle is still there
    dwell_s: float
    closest_m: float  # the closest fix to the stop
    lat: float  # where the vehicle stood (mean of the fixes inside the radius)
    lon: float
    late: bool  # after the stop's time window closed
    details: dict[str, Any] = field(default_factory=dict)  # staff id, fix count, ...
