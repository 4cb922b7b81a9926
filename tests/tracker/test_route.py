"""A route run made ready for tracking: the plan's driving pace along its path."""

from __future__ import annotations

import datetime as dt
import math

import planning
from geo import LocalProjection
from tracker import track_run

PROJECTION = LocalProjection(20.97, 105.78)
T0 = dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)


def run_with(stops: list[tuple[float, float, int]]) -> planning.RouteRun:
    """A straight 1000 m path east; stops as (offset m, planned arrival s, service s)."""
    path = [PROJECTION.to_latlon(x, 0.0) for x in (0.0, 1000.0)]
    route_stops = []
    for seq, (offset_m, arrival_s, service_s) in enumerate(stops, start=1):
        lat, lon = PROJECTION.to_latlon(offset_m, 0.0)
        route_stops.append(
            planning.RouteStop(
                seq=seq,
                kind=planning.StopKind.COLLECT,
                service_point_id=100 + seq,
                lat=lat,
                lon=lon,
                path_offset_m=offset_m,
                planned_arrival=T0 + dt.timedelta(seconds=arrival_s),
                service_s=service_s,
                dwell_radius_m=30.0,
            )
        )
    return planning.RouteRun(
        id=1,
        tenant_id=1,
        vehicle_id=1,
        local_date=dt.date(2026, 12, 8),
        name="r",
        planned_start=T0,
        planned_end=T0 + dt.timedelta(hours=1),
        corridor_m=50.0,
        expected_path=tuple((lon, lat) for lat, lon in path),
        path_length_m=1000.0,
        status=planning.RunStatus.ACTIVE,
        source=planning.RunSource.MANUAL,
        stops=tuple(route_stops),
        crew=(),
    )


def test_the_plans_drive_time_leaves_out_the_service_and_follows_each_legs_pace() -> None:
    # 0 -> 200 m in 40 s (5 m/s); 60 s service; 200 -> 600 m in 40 s (10 m/s).
    tracked = track_run(run_with([(200.0, 40.0, 60), (600.0, 140.0, 30)]), PROJECTION)
    assert math.isclose(tracked.planned_drive_s(100.0, 200.0), 20.0, abs_tol=0.5)
    assert math.isclose(tracked.planned_drive_s(100.0, 400.0), 40.0, abs_tol=0.5)
    assert tracked.planned_drive_s(300.0, 300.0) == 0.0
    # After the last stop the plan does not time the way: unknown, not zero.
    assert math.isnan(tracked.planned_drive_s(500.0, 700.0))


def test_a_leg_with_no_driving_time_left_is_unknown() -> None:
    # Stop 2 is planned to arrive before stop 1's service ends: no pace on that leg.
    tracked = track_run(run_with([(200.0, 40.0, 60), (600.0, 90.0, 0)]), PROJECTION)
    assert math.isclose(tracked.planned_drive_s(0.0, 190.0), 38.0, abs_tol=0.5)
    assert math.isnan(tracked.planned_drive_s(100.0, 400.0))
