"""A route run's compliance: each stop's status from visits, alerts and the clock; the
driving inside the corridor; and the whole report read from PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest

import alerts
import customers
import fleet
import planning
import reports
from alerts import (
    Alert,
    AlertKind,
    AlertSignal,
    AlertState,
    Change,
    Resolution,
    Severity,
    StopVisit,
    VisitEvidence,
    VisitStatus,
)
from planning import RouteRun, RouteStop, StopKind
from reports import StopStatus, assess_compliance, corridor_distance, stop_statuses, track_window
from storage import Pool, write_positions
from tests.reports.timeline import ORIGIN, Timeline, position_row

T0 = dt.datetime(2026, 12, 3, 1, 0, tzinfo=dt.UTC)  # 08:00 in Hà Nội
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
RUN_ID = 7
# The expected path: 3 km due east of the timelines' origin, [lon, lat] positions.
PATH = tuple(
    (lon, lat) for lat, lon in (ORIGIN.to_latlon(x, 0.0) for x in (-100.0, 1000.0, 3000.0))
)


def route_stop(seq: int, minutes: float, **changes: Any) -> RouteStop:
    lat, lon = ORIGIN.to_latlon(100.0 * seq, 0.0)
    values: dict[str, Any] = {
        "seq": seq,
        "kind": StopKind.COLLECT,
        "service_point_id": 100 + seq,
        "lat": lat,
        "lon": lon,
        "path_offset_m": 100.0 * seq,
        "planned_arrival": T0 + minutes * MINUTE,
        "dwell_radius_m": 30,
    }
    return RouteStop(**(values | changes))


def route_run(stops: list[RouteStop], run_id: int = RUN_ID) -> RouteRun:
    return RouteRun(
        id=run_id,
        tenant_id=1,
        vehicle_id=3,
        local_date=dt.date(2026, 12, 3),
        name="Tuyến 1",
        planned_start=T0,
        planned_end=T0 + 4 * HOUR,
        corridor_m=50,
        expected_path=PATH,
        path_length_m=3100.0,
        status=planning.RunStatus.ACTIVE,
        source=planning.RunSource.MANUAL,
        stops=tuple(stops),
        crew=(),
    )


def visit(seq: int, minutes: float, run_id: int = RUN_ID, **changes: Any) -> StopVisit:
    values: dict[str, Any] = {
        "tenant_id": 1,
        "route_run_id": run_id,
        "stop_seq": seq,
        "vehicle_id": 3,
        "device_id": 5,
        "service_point_id": 100 + seq,
        "status": VisitStatus.VISITED,
        "evidence": VisitEvidence.DWELL,
        "arrival_at": T0 + minutes * MINUTE,
        "departure_at": T0 + (minutes + 1) * MINUTE,
        "dwell_s": 60.0,
        "closest_m": 4.0,
        "lat": 20.97,
        "lon": 105.78,
        "late": False,
    }
    return StopVisit(**(values | changes))


def probable(seq: int, minutes: float) -> StopVisit:
    return visit(seq, minutes, status=VisitStatus.PROBABLE, evidence=VisitEvidence.SLOW_PASS)


def alert(
    seq: int | None,
    kind: AlertKind = AlertKind.MISSED_STOP,
    run_id: int | None = RUN_ID,
    resolution: Resolution | None = None,
) -> Alert:
    opened = T0 + 30 * MINUTE
    resolved = resolution is not None
    return Alert(
        id=seq or 0,
        key=f"{kind}:{run_id}:{seq}",
        tenant_id=1,
        kind=kind,
        severity=Severity.WARNING,
        device_id=5,
        vehicle_id=3,
        route_run_id=run_id,
        stop_id=None,
        stop_seq=seq,
        opened_at=opened,
        last_evidence_at=opened,
        state=AlertState.RESOLVED if resolved else AlertState.OPEN,
        message="",
        evidence={},
        resolved_at=opened + MINUTE if resolved else None,
        resolution=resolution,
        resolved_by=None,
        acknowledged_at=None,
        acknowledged_by=None,
        acknowledge_note=None,
        assigned_to=None,
        assigned_at=None,
    )


# ---------------------------------------------------------------- statuses


def cases() -> tuple[RouteRun, list[StopVisit], list[Alert]]:
    """One stop per case, an hour into a run planned from T0 to T0 + 4 h."""
    run = route_run(
        [
            route_stop(1, 10),  # visited in time
            route_stop(2, 20, window_end=T0 + 15 * MINUTE),  # visited after its window
            route_stop(3, 30),  # only passed slowly
            route_stop(4, 40),  # a missed_stop alert, no visit
            route_stop(5, 50, window_end=T0 + 55 * MINUTE),  # its window closed, unserved
            route_stop(6, 120),  # not due yet
            route_stop(7, 130),  # a slow pass and a missed_stop alert: probably served
            route_stop(8, 140),  # an alert withdrawn: late data showed no miss
            route_stop(9, 150),  # served, but on another run
            route_stop(10, 200, kind=StopKind.UNLOAD, service_point_id=None),
        ]
    )
    visits = [
        visit(1, 9),
        visit(2, 21, late=True),
        probable(3, 31),
        probable(7, 50),
        visit(9, 50, run_id=RUN_ID + 1),
    ]
    run_alerts = [
        alert(4),
        alert(7),
        alert(8, resolution=Resolution.WITHDRAWN),
        alert(6, run_id=RUN_ID + 1),
        alert(None, AlertKind.WRONG_ROUTE),
    ]
    return run, visits, run_alerts


def test_each_stop_gets_its_status_from_visits_alerts_and_the_clock() -> None:
    run, visits, run_alerts = cases()
    assert stop_statuses(run, visits, run_alerts, T0 + HOUR) == {
        1: StopStatus.VISITED,
        2: StopStatus.LATE,
        3: StopStatus.PROBABLE,
        4: StopStatus.MISSED,
        5: StopStatus.MISSED,
        6: StopStatus.PENDING,
        7: StopStatus.PROBABLE,
        8: StopStatus.PENDING,
        9: StopStatus.PENDING,
        10: StopStatus.PENDING,
    }


def test_a_run_running_late_keeps_its_stops_pending_until_it_is_over() -> None:
    run, visits, run_alerts = cases()
    late = stop_statuses(run, visits, run_alerts, run.planned_end + 2 * HOUR)
    assert [late[seq] for seq in (6, 8, 9, 10)] == [StopStatus.PENDING] * 4
    over = stop_statuses(run, visits, run_alerts, run.planned_end + 2 * HOUR + MINUTE)
    assert [over[seq] for seq in (6, 8, 9, 10)] == [StopStatus.MISSED] * 4
    assert [over[seq] for seq in (1, 2, 3, 7)] == [
        StopStatus.VISITED,
        StopStatus.LATE,
        StopStatus.PROBABLE,
        StopStatus.PROBABLE,
    ]


def test_the_best_evidence_of_a_stop_wins() -> None:
    run = route_run([route_stop(1, 10), route_stop(2, 20)])
    visits = [probable(1, 8), visit(1, 9, late=True), visit(1, 12), probable(2, 18)]
    visits.append(visit(2, 25, late=True))
    assert stop_statuses(run, visits, [], T0) == {1: StopStatus.VISITED, 2: StopStatus.LATE}


def test_the_report_counts_collect_stops_and_lists_the_missed_ones() -> None:
    run, visits, run_alerts = cases()
    report = assess_compliance(run, visits, run_alerts, [], T0 + HOUR)
    assert report.collect_stop_count == 9  # the unload stop is listed, not counted
    assert [stop.seq for stop in report.stops] == list(range(1, 11))
    assert report.stops[9].kind is StopKind.UNLOAD
    assert report.status_counts == {
        StopStatus.VISITED: 1,
        StopStatus.LATE: 1,
        StopStatus.PROBABLE: 2,
        StopStatus.MISSED: 2,
        StopStatus.PENDING: 3,
    }
    assert report.served_share == pytest.approx(2 / 9)
    assert [(m.seq, m.service_point_id, m.planned_arrival) for m in report.missed_stops] == [
        (4, 104, T0 + 40 * MINUTE),
        (5, 105, T0 + 50 * MINUTE),
    ]
    assert (report.missed_stops[0].lat, report.missed_stops[0].lon) == ORIGIN.to_latlon(400, 0)
    # Withdrawn alerts and another run's are left out.
    assert report.alert_counts == {AlertKind.MISSED_STOP: 2, AlertKind.WRONG_ROUTE: 1}
    assert report.as_of == T0 + HOUR
    assert report.corridor.inside_share is None  # no fixes: no share, and no error
    assert report.corridor.distance_total_m == 0.0


def test_a_run_without_collect_stops_has_no_served_share() -> None:
    report = assess_compliance(route_run([]), [], [], [], T0)
    assert report.served_share is None
    assert report.status_counts == dict.fromkeys(StopStatus, 0)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(reports.InvalidValue, match="now"):
        assess_compliance(route_run([]), [], [], [], T0.replace(tzinfo=None))


# ---------------------------------------------------------------- the track and the corridor


def half_off_timeline(start: dt.datetime, device_id: int = 1) -> Timeline:
    """960 m along the path, then 300 m north and 660 m east on a street 300 m off it: half
    the 1,920 m driven is inside a 50 m corridor (the northward steps are 60 m long, so
    the step leaving the path ends outside)."""
    timeline = Timeline(start, device_id=device_id).park(300)
    timeline.drive(960, 43.2).drive(300, 43.2, heading_deg=0).drive(660, 43.2).park(300)
    return timeline


def test_a_route_driven_half_off_the_corridor_has_half_its_distance_inside() -> None:
    timeline = half_off_timeline(T0)
    corridor = corridor_distance(PATH, 50, timeline.fixes, T0, T0 + HOUR)
    assert corridor.distance_total_m == pytest.approx(1920, rel=5e-3)
    assert corridor.inside_share == pytest.approx(0.5, abs=1e-4)
    assert corridor.distance_inside_m == pytest.approx(960, rel=5e-3)
    assert corridor.fix_count == len(timeline.fixes)
    wide = corridor_distance(PATH, 400, timeline.fixes, T0, T0 + HOUR)
    assert wide.inside_share == pytest.approx(1.0)


def test_the_track_runs_from_before_the_start_to_the_final_stop_or_the_overrun() -> None:
    run = route_run([route_stop(1, 10), route_stop(2, 50)])
    early = T0 - 30 * MINUTE
    assert track_window(run, [], T0 + HOUR) == (early, T0 + HOUR)
    assert track_window(run, [], T0 + 9 * HOUR) == (early, T0 + 6 * HOUR)
    departed = visit(2, 52)
    assert track_window(run, [visit(1, 11), departed], T0 + 9 * HOUR) == (
        early,
        departed.departure_at,
    )
    still_there = visit(2, 52, departure_at=None)
    assert track_window(run, [still_there], T0 + HOUR) == (early, T0 + HOUR)
    assert track_window(run, [], T0 - HOUR) == (early, early)  # not started: nothing to read


def test_fixes_outside_the_run_s_track_are_left_out() -> None:
    run = route_run([route_stop(1, 10)])
    timeline = half_off_timeline(T0)
    first = timeline.fixes[0]
    stray = [dataclasses.replace(first, time=T0 - 40 * MINUTE, lat=first.lat + 0.1)]
    report = assess_compliance(run, [], [], stray + timeline.fixes, T0 + HOUR)
    assert report.corridor.fix_count == len(timeline.fixes)
    assert report.corridor.inside_share == pytest.approx(0.5, abs=1e-4)


# ---------------------------------------------------------------- from PostgreSQL


def recent_start() -> dt.datetime:
    """08:00 local two days back: inside the positions partitions the session created."""
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    return dt.datetime.combine(day, dt.time(1), dt.UTC)


async def make_run(pool: Pool, start: dt.datetime) -> tuple[int, int, int, int]:
    """A tenant, its truck and unit, and a run of six collect stops and an unload stop;
    returns (tenant_id, vehicle_id, device_id, run_id)."""
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "Công ty")
        vehicle_id = await fleet.create_vehicle(conn, tenant.id, "29C-10001")
        unit = await fleet.create_device(
            conn, tenant, "truck-1", fleet.DeviceKind.TRUCK, vehicle_id=vehicle_id
        )
        points = await customers.ensure_service_points(
            conn,
            tenant.id,
            [
                customers.NewServicePoint(
                    code=f"KH{n}", name=f"Hộ {n}", kind="household", lat=20.97, lon=105.78
                )
                for n in range(1, 7)
            ],
        )
        windows = {5: start + 55 * MINUTE}
        stops = [
            route_stop(
                seq,
                10 * seq,
                planned_arrival=start + 10 * seq * MINUTE,
                service_point_id=points[f"KH{seq}"],
                window_end=windows.get(seq),
            )
            for seq in range(1, 7)
        ]
        stops.append(
            route_stop(
                7, 200, planned_arrival=start + 200 * MINUTE, kind="unload", service_point_id=None
            )
        )
        run_id = await planning.create_route_run(
            conn,
            tenant.id,
            planning.NewRouteRun(
                vehicle_id=vehicle_id,
                local_date=start.date(),
                name="Tuyến 1",
                planned_start=start,
                planned_end=start + 4 * HOUR,
                corridor_m=50,
                expected_path=PATH,
                path_length_m=3100.0,
                source=planning.RunSource.MANUAL,
                stops=tuple(stops),
            ),
        )
        await conn.commit()
    return tenant.id, vehicle_id, unit.device.id, run_id


async def test_the_report_of_a_run_from_its_tables(pool: Pool) -> None:
    start = recent_start()
    tenant_id, vehicle_id, device_id, run_id = await make_run(pool, start)
    other_tenant_id, _, _, other_run_id = await make_run(pool, start)
    now = start + 3 * HOUR

    def served(seq: int, minutes: float, **changes: Any) -> StopVisit:
        at = start + minutes * MINUTE
        ours = {
            "tenant_id": tenant_id,
            "vehicle_id": vehicle_id,
            "device_id": device_id,
            "service_point_id": None,
            "arrival_at": at,
            "departure_at": at + MINUTE,
        }
        return visit(seq, minutes, run_id, **(ours | changes))

    def signal(key: str, kind: AlertKind, seq: int | None, change: Change) -> AlertSignal:
        return AlertSignal(
            change=change,
            key=key,
            kind=kind,
            severity=Severity.WARNING,
            tenant_id=tenant_id,
            device_id=device_id,
            vehicle_id=vehicle_id,
            route_run_id=run_id,
            stop_seq=seq,
            at=start + 45 * MINUTE,
            message="Xe 29C-10001 bỏ sót điểm",
            resolution=Resolution.WITHDRAWN if change is Change.RESOLVED else None,
        )

    timeline = half_off_timeline(start, device_id)
    stray = Timeline(start - 40 * MINUTE, device_id=device_id).park(60)  # before the run
    late = Timeline(now + 10 * MINUTE, device_id=device_id).park(60)  # after "now"
    async with pool.connection() as conn:
        await alerts.record_visits(
            conn,
            [
                served(1, 9),
                served(2, 21, late=True),
                served(3, 31, status=VisitStatus.PROBABLE, evidence=VisitEvidence.SLOW_PASS),
            ],
        )
        await alerts.apply_signals(
            conn,
            [
                signal("missed-4", AlertKind.MISSED_STOP, 4, Change.OPENED),
                signal("missed-6", AlertKind.MISSED_STOP, 6, Change.OPENED),
                signal("missed-6", AlertKind.MISSED_STOP, 6, Change.RESOLVED),
                signal("off-route", AlertKind.WRONG_ROUTE, None, Change.OPENED),
            ],
        )
        rows = [position_row(fix, tenant_id) for fix in stray.fixes + timeline.fixes + late.fixes]
        await write_positions(conn, rows)
        await conn.commit()
        report = await reports.route_compliance(conn, tenant_id, run_id, now)
        with pytest.raises(reports.NotFound):
            await reports.route_compliance(conn, tenant_id, other_run_id, now)
        with pytest.raises(reports.NotFound):
            await reports.route_compliance(conn, other_tenant_id, run_id, now)
    assert [stop.status for stop in report.stops] == [
        StopStatus.VISITED,
        StopStatus.LATE,
        StopStatus.PROBABLE,
        StopStatus.MISSED,  # by its alert
        StopStatus.MISSED,  # its window closed at 55 min
        StopStatus.PENDING,  # its alert was withdrawn
        StopStatus.PENDING,  # the unload stop, not counted
    ]
    assert report.collect_stop_count == 6
    assert report.served_share == pytest.approx(2 / 6)
    assert [stop.seq for stop in report.missed_stops] == [4, 5]
    assert report.alert_counts == {AlertKind.MISSED_STOP: 1, AlertKind.WRONG_ROUTE: 1}
    corridor = report.corridor
    assert (corridor.since, corridor.until) == (start - 30 * MINUTE, now)
    assert corridor.fix_count == len(timeline.fixes)
    assert corridor.inside_share == pytest.approx(0.5, abs=1e-4)
    assert corridor.distance_inside_m == pytest.approx(960, rel=5e-3)
    assert (report.route_run_id, report.vehicle_id, report.as_of) == (run_id, vehicle_id, now)
