"""How one route run went: each stop served or not, the run's alerts, and how much of the
driving kept to the planned path's corridor.

A stop's status comes from the rules engine's evidence (ARCHITECTURE §7): its stop visits
and its missed_stop alerts. The report adds only what a clock says: a stop whose time window
closed, or whose run is over (``run_overrun_s`` past the planned end, when the rules engine
ends it too), unserved, is missed. A run running late keeps its other stops pending until
then. A missed_stop alert counts from its opening, the driver's "passed" notice included
(the vehicle drove past unserved), unless it was withdrawn; a visit, even a probable one,
outranks it. Unload stops are listed with a status but counted nowhere: they serve no
customer.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from psycopg import AsyncConnection

from alerts import Alert, AlertKind, Resolution, StopVisit, VisitStatus, list_visits
from geo import LocalProjection
from planning import RouteRun, RouteStop, StopKind
from reports.errors import InvalidValue
from reports.models import (
    DEFAULT_COMPLIANCE_SETTINGS,
    ComplianceSettings,
    CorridorDistance,
    MissedStop,
    RouteCompliance,
    StopCompliance,
    StopStatus,
)
from reports.sources import route_run, run_alerts, vehicle_device_ids
from reports.track import BoolArray, FloatArray, clean_track
from storage import TrackFix, track_fixes

UTC = dt.UTC
# The best evidence wins when a stop has several visits.
_EVIDENCE_RANK = {StopStatus.VISITED: 0, StopStatus.LATE: 1, StopStatus.PROBABLE: 2}


async def route_compliance(
    conn: AsyncConnection[Any],
    tenant_id: int,
    route_run_id: int,
    now: dt.datetime,
    settings: ComplianceSettings = DEFAULT_COMPLIANCE_SETTINGS,
) -> RouteCompliance:
    """The compliance report of one route run as of ``now``. Raises NotFound for another
    tenant's run."""
    _check_aware("now", now)
    run = await route_run(conn, tenant_id, route_run_id)
    visits = await list_visits(conn, tenant_id, route_run_id)
    alerts = await run_alerts(conn, tenant_id, route_run_id)
    device_ids = await vehicle_device_ids(conn, tenant_id, run.vehicle_id)
    since, until = track_window(run, visits, now, settings)
    fixes = await track_fixes(conn, tenant_id, device_ids, since, until)
    return assess_compliance(run, visits, alerts, fixes, now, settings)


def assess_compliance(
    run: RouteRun,
    visits: Sequence[StopVisit],
    alerts: Sequence[Alert],
    fixes: Sequence[TrackFix],
    now: dt.datetime,
    settings: ComplianceSettings = DEFAULT_COMPLIANCE_SETTINGS,
) -> RouteCompliance:
    """The report from what was read (no I/O): ``fixes`` are the run's vehicle's; those
    outside ``track_window`` are left out."""
    _check_aware("now", now)
    statuses = stop_statuses(run, visits, alerts, now, settings)
    stops = tuple(_stop_compliance(stop, statuses[stop.seq]) for stop in run.stops)
    collect = [stop for stop in stops if stop.kind is StopKind.COLLECT]
    counts = dict.fromkeys(StopStatus, 0)
    counts.update(Counter(stop.status for stop in collect))
    served = counts[StopStatus.VISITED] + counts[StopStatus.LATE]
    since, until = track_window(run, visits, now, settings)
    in_window = [fix for fix in fixes if since <= fix.time < until]
    return RouteCompliance(
        route_run_id=run.id,
        vehicle_id=run.vehicle_id,
        as_of=now.astimezone(UTC),
        stops=stops,
        collect_stop_count=len(collect),
        status_counts=counts,
        served_share=served / len(collect) if collect else None,
        missed_stops=tuple(
            MissedStop(s.seq, s.service_point_id, s.lat, s.lon, s.planned_arrival)
            for s in collect
            if s.status is StopStatus.MISSED
        ),
        alert_counts=dict(sorted(Counter(a.kind for a in _standing(alerts, run.id)).items())),
        corridor=corridor_distance(
            run.expected_path,
            run.corridor_m,
            in_window,
            since,
            until,
            settings.max_plausible_speed_kmh,
        ),
    )


def stop_statuses(
    run: RouteRun,
    visits: Sequence[StopVisit],
    alerts: Sequence[Alert],
    now: dt.datetime,
    settings: ComplianceSettings = DEFAULT_COMPLIANCE_SETTINGS,
) -> dict[int, StopStatus]:
    """Each stop's status by seq, as of ``now``, from the run's visits and alerts (others'
    are ignored, as are alerts of other kinds and withdrawn ones): what the live map shows."""
    _check_aware("now", now)
    served: dict[int, StopStatus] = {}
    for visit in visits:
        if visit.route_run_id == run.id:
            status = _visit_status(visit)
            best = served.get(visit.stop_seq)
            if best is None or _EVIDENCE_RANK[status] < _EVIDENCE_RANK[best]:
                served[visit.stop_seq] = status
    alerted = {
        alert.stop_seq
        for alert in _standing(alerts, run.id)
        if alert.kind is AlertKind.MISSED_STOP and alert.stop_seq is not None
    }
    run_over = now > run.planned_end + dt.timedelta(seconds=settings.run_overrun_s)
    statuses = {}
    for stop in run.stops:
        window_closed = stop.window_end is not None and now > stop.window_end
        if stop.seq in served:
            statuses[stop.seq] = served[stop.seq]
        elif stop.seq in alerted or run_over or window_closed:
            statuses[stop.seq] = StopStatus.MISSED
        else:
            statuses[stop.seq] = StopStatus.PENDING
    return statuses


def track_window(
    run: RouteRun,
    visits: Sequence[StopVisit],
    now: dt.datetime,
    settings: ComplianceSettings = DEFAULT_COMPLIANCE_SETTINGS,
) -> tuple[dt.datetime, dt.datetime]:
    """The stretch of the vehicle's track that belongs to the run, [since, until): from
    ``run_early_s`` before its planned start to the visit of its final stop (the route is
    done; the drive back to the depot is not the route), else to its overrun; never past
    ``now``."""
    since = run.planned_start - dt.timedelta(seconds=settings.run_early_s)
    until = min(now, run.planned_end + dt.timedelta(seconds=settings.run_overrun_s))
    final_seq = max((stop.seq for stop in run.stops), default=None)
    final_visits = [
        visit.departure_at or now
        for visit in visits
        if visit.route_run_id == run.id and visit.stop_seq == final_seq
    ]
    if final_visits:
        until = min(until, max(final_visits))
    return since.astimezone(UTC), max(since, until).astimezone(UTC)


def corridor_distance(
    path_lon_lat: Sequence[tuple[float, float]],
    corridor_m: float,
    fixes: Sequence[TrackFix],
    since: dt.datetime,
    until: dt.datetime,
    max_plausible_speed_kmh: float = DEFAULT_COMPLIANCE_SETTINGS.max_plausible_speed_kmh,
) -> CorridorDistance:
    """The distance driven over ``fixes`` and the part of it within ``corridor_m`` of the
    path ([lon, lat] positions, GeoJSON order)."""
    track = clean_track(fixes, max_plausible_speed_kmh)
    total_m = float(track.travelled_m[-1]) if track.size else 0.0
    inside_m = 0.0
    if track.size >= 2 and len(path_lon_lat) >= 2:
        inside = _within_corridor(path_lon_lat, corridor_m, track.lat, track.lon)
        inside_m = float(track.step_m[inside[:-1] & inside[1:]].sum())
    return CorridorDistance(
        corridor_m=corridor_m,
        since=since,
        until=until,
        fix_count=track.read_count,
        distance_total_m=total_m,
        distance_inside_m=inside_m,
        inside_share=inside_m / total_m if total_m > 0 else None,
    )


def _within_corridor(
    path_lon_lat: Sequence[tuple[float, float]],
    corridor_m: float,
    lat: FloatArray,
    lon: FloatArray,
) -> BoolArray:
    """Which points lie within ``corridor_m`` of the path, measured exactly in a local
    metric projection. The path is prepared (GEOS indexes its segments), so one vectorised
    call answers every point; a buffer of a path that doubles back on itself costs more to
    build than all the answers."""
    path = np.asarray(path_lon_lat, dtype=np.float64)
    projection = LocalProjection(float(path[0, 1]), float(path[0, 0]))
    path_line = shapely.linestrings(projection.to_xy_array(path[:, 1], path[:, 0]))
    shapely.prepare(path_line)
    points = shapely.points(projection.to_xy_array(lat, lon))
    inside: BoolArray = shapely.dwithin(path_line, points, corridor_m)
    return inside


def _visit_status(visit: StopVisit) -> StopStatus:
    if visit.status is VisitStatus.PROBABLE:
        return StopStatus.PROBABLE
    return StopStatus.LATE if visit.late else StopStatus.VISITED


def _standing(alerts: Sequence[Alert], run_id: int) -> list[Alert]:
    """The run's alerts that still stand: a withdrawn one never held (late data showed it)."""
    return [
        alert
        for alert in alerts
        if alert.route_run_id == run_id and alert.resolution is not Resolution.WITHDRAWN
    ]


def _stop_compliance(stop: RouteStop, status: StopStatus) -> StopCompliance:
    return StopCompliance(
        seq=stop.seq,
        kind=stop.kind,
        service_point_id=stop.service_point_id,
        lat=stop.lat,
        lon=stop.lon,
        planned_arrival=stop.planned_arrival.astimezone(UTC),
        window_end=None if stop.window_end is None else stop.window_end.astimezone(UTC),
        status=status,
    )


def _check_aware(name: str, moment: dt.datetime) -> None:
    if moment.utcoffset() is None:
        raise InvalidValue(f"{name}={moment!r}: has no time zone")
