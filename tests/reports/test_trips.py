"""A vehicle's day: trips, parkings and the summary, on timelines laid out by hand (the
expected figures come from how the timeline was built), and from PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import fleet
import reports
from geo import haversine_m
from reports import ReportSettings, VehicleDay, summarise
from reports.track import haversine_steps_m
from storage import Pool, TrackFix, write_positions
from tests.reports.timeline import Leg, Timeline, position_row

START = dt.datetime(2026, 12, 3, 23, 0, tzinfo=dt.UTC)  # 06:00 in Hà Nội
# Timelines are laid out on a flat projection; haversine differs from it by ~0.1 %.
DISTANCE_REL = 5e-3


def legs(timeline: Timeline, kind: str) -> list[Leg]:
    return [leg for leg in timeline.legs if leg.kind == kind]


def assert_tiles(day: VehicleDay) -> None:
    """Trips and parkings are ordered and never overlap (they may share a boundary)."""
    spans = sorted(
        [(t.start_time, t.end_time) for t in day.trips]
        + [(p.start_time, p.end_time) for p in day.parkings]
    )
    for start, end in spans:
        assert start <= end
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end <= next_start
    for items in (day.trips, day.parkings):
        assert [item.start_time for item in items] == sorted(item.start_time for item in items)


# ---------------------------------------------------------------- hand-built days


def test_a_day_of_driving_and_parking_gives_its_trips_parkings_and_summary() -> None:
    timeline = Timeline(START).park(1200).drive(3000, 36).park(600).drive(5000, 30).park(1800)
    day = summarise(timeline.fixes)
    parks, drives = legs(timeline, "park"), legs(timeline, "drive")
    # A trip runs from the last standing fix to the first standing fix after it.
    assert [(t.start_time, t.end_time) for t in day.trips] == [
        (parks[0].last, parks[1].first),
        (parks[1].last, parks[2].first),
    ]
    assert [(p.start_time, p.end_time) for p in day.parkings] == [
        (timeline.start, parks[0].last),
        (parks[1].first, parks[1].last),
        (parks[2].first, parks[2].last),
    ]
    for trip, drive in zip(day.trips, drives, strict=True):
        assert trip.distance_m == pytest.approx(drive.distance_m, rel=DISTANCE_REL)
        assert trip.duration_s == (trip.end_time - trip.start_time).total_seconds()
    assert [t.max_speed_kmh for t in day.trips] == [36.0, 30.0]
    # 3 km in 300 s of driving plus the interval before the first standing fix: 305 s.
    assert day.trips[0].avg_speed_kmh == pytest.approx(3000 / 305 * 3.6, rel=DISTANCE_REL)
    assert [p.duration_s for p in day.parkings] == [1200.0, 595.0, 1795.0]
    first_parking = day.parkings[0]
    assert (first_parking.lat, first_parking.lon) == pytest.approx((20.97, 105.78))
    assert first_parking.ignition_on_share is None  # no fix told
    assert day.trips[0].end_lat == pytest.approx(day.parkings[1].lat)
    assert day.trips[0].end_lon == pytest.approx(day.parkings[1].lon)
    summary = day.summary
    assert summary.distance_m == pytest.approx(8000.0, rel=DISTANCE_REL)
    assert summary.driving_s == 305.0 + 605.0
    assert summary.stopped_s == 1200.0 + 595.0 + 1795.0
    assert summary.max_speed_kmh == 36.0
    assert summary.avg_moving_speed_kmh == pytest.approx(8000 / 910 * 3.6, rel=DISTANCE_REL)
    assert summary.fix_count == len(timeline.fixes)
    assert summary.jump_fix_count == 0
    assert (summary.first_fix, summary.last_fix) == (timeline.start, parks[2].last)
    assert summary.engine_s == 900.0  # the driving fixes say ignition on; the parked ones nothing
    assert summary.odometer_distance_m is None
    assert_tiles(day)


def test_fixes_in_any_order_and_repeated_give_the_same_day() -> None:
    timeline = Timeline(START).park(600).drive(2000, 40).park(600)
    shuffled = list(reversed(timeline.fixes)) + timeline.fixes[100:110]
    day, again = summarise(timeline.fixes), summarise(shuffled)
    assert (again.trips, again.parkings) == (day.trips, day.parkings)
    assert again.summary.fix_count == day.summary.fix_count + 10
    assert dataclasses.replace(again.summary, fix_count=day.summary.fix_count) == day.summary


def test_a_gap_while_driving_ends_the_trip() -> None:
    timeline = (
        Timeline(START)
        .park(600)
        .drive(3000, 36)
        .gap(900, move_m=1000)  # a tunnel, or the unit lost power: 15 min, 1 km further
        .drive(2000, 36)
        .park(600)
    )
    day = summarise(timeline.fixes)
    parks, drives = legs(timeline, "park"), legs(timeline, "drive")
    assert [(t.start_time, t.end_time) for t in day.trips] == [
        (parks[0].last, drives[0].last),
        (drives[1].first, parks[1].first),
    ]
    # The first fix after the gap is already one 50 m step into the second drive.
    assert [t.distance_m for t in day.trips] == pytest.approx([3000.0, 1950.0], rel=DISTANCE_REL)
    # The day's distance still counts the straight line over the gap: it was driven.
    assert day.summary.distance_m == pytest.approx(6000.0, rel=DISTANCE_REL)
    assert len(day.parkings) == 2
    assert_tiles(day)


def test_a_tracker_asleep_while_parked_does_not_split_the_parking() -> None:
    timeline = Timeline(START).drive(1000, 30).park(300).gap(1800).park(300).drive(1000, 30)
    day = summarise(timeline.fixes)
    parks = legs(timeline, "park")
    assert [(p.start_time, p.end_time) for p in day.parkings] == [(parks[0].first, parks[1].last)]
    assert day.parkings[0].duration_s == pytest.approx(295 + 1800 + 295)
    assert len(day.trips) == 2


def test_a_gps_jump_is_left_out_of_the_distance_and_the_trip() -> None:
    timeline = Timeline(START).park(600).drive(3000, 36).park(600)
    jumped = list(timeline.fixes)
    glitch = jumped[150]
    jumped[150] = dataclasses.replace(glitch, lat=glitch.lat + 0.05)  # 5.5 km north, for 5 s
    day = summarise(jumped)
    assert day.summary.jump_fix_count == 1
    assert day.summary.fix_count == len(jumped)
    assert day.summary.distance_m == pytest.approx(3000.0, rel=DISTANCE_REL)
    assert [t.distance_m for t in day.trips] == pytest.approx([3000.0], rel=DISTANCE_REL)
    assert len(day.parkings) == 2


def test_a_move_that_does_not_come_back_is_never_counted_as_distance() -> None:
    timeline = Timeline(START).park(600).drive(1000, 36)
    last = timeline.fixes[-1]
    moved = timeline.fixes + [  # 55 km away 100 s later, and it stays there
        dataclasses.replace(last, time=last.time + dt.timedelta(seconds=s), lat=last.lat + 0.5)
        for s in range(100, 125, 5)
    ]
    day = summarise(moved)
    assert day.summary.jump_fix_count == 0  # it stayed there: not a one-fix glitch
    assert day.summary.distance_m == pytest.approx(1000.0, rel=DISTANCE_REL)


def test_shunting_about_stays_part_of_the_parking() -> None:
    timeline = Timeline(START).park(600).drive(60, 10).park(600).drive(2000, 30).park(300)
    day = summarise(timeline.fixes)
    parks = legs(timeline, "park")
    assert [(p.start_time, p.end_time) for p in day.parkings] == [
        (timeline.start, parks[1].last),
        (parks[2].first, parks[2].last),
    ]
    assert len(day.trips) == 1
    merged_s = (parks[1].last - timeline.start).total_seconds()  # 600 + 25 shunting + 595
    assert day.summary.stopped_s == merged_s + 295


def test_a_short_drive_that_lasts_is_still_a_trip() -> None:
    crawl = Timeline(START).park(600).drive(150, 4).park(600)  # 150 m in 135 s: >= 120 s
    assert len(summarise(crawl.fixes).trips) == 1
    strict = ReportSettings(min_trip_s=300)
    assert len(summarise(crawl.fixes, strict).trips) == 0


def test_a_short_standstill_is_not_a_parking() -> None:
    timeline = Timeline(START).park(600).drive(2000, 30).park(120).drive(2000, 30).park(600)
    day = summarise(timeline.fixes)
    assert len(day.trips) == 1
    assert day.trips[0].distance_m == pytest.approx(4000.0, rel=DISTANCE_REL)
    assert len(day.parkings) == 2


def test_speeds_are_derived_from_the_fixes_when_the_device_sends_none() -> None:
    timeline = Timeline(START, with_speed=False)
    timeline.park(1200).drive(3000, 36).park(600).drive(5000, 30).park(1800)
    with_speed = Timeline(START).park(1200).drive(3000, 36).park(600).drive(5000, 30).park(1800)
    derived, reported = summarise(timeline.fixes), summarise(with_speed.fixes)
    assert [(t.start_time, t.end_time) for t in derived.trips] == [
        (t.start_time, t.end_time) for t in reported.trips
    ]
    assert [p.duration_s for p in derived.parkings] == [p.duration_s for p in reported.parkings]
    assert derived.summary.max_speed_kmh == pytest.approx(36.0, rel=DISTANCE_REL)


def test_ignition_gives_engine_time_and_each_parking_its_share() -> None:
    timeline = Timeline(START).park(600, ignition=False).drive(2000, 30).park(600, ignition=True)
    timeline.park(600, ignition=False)
    day = summarise(timeline.fixes)
    [_, parked] = day.parkings
    # The second parking: 595 s idling, then 600 s off (its last fix's step counts nothing).
    assert parked.ignition_on_share == pytest.approx(600 / 1195)
    assert day.parkings[0].ignition_on_share == 0.0
    assert day.summary.engine_s == 240 + 600  # 48 driving steps and 120 idling ones


def test_the_odometer_is_shown_beside_the_haversine_distance() -> None:
    timeline = Timeline(START).park(300).drive(2000, 36).park(300)  # 61, 40 and 60 fixes
    counted = [
        dataclasses.replace(fix, odometer_m=50_000 + 50 * min(max(n - 60, 0), 40))
        for n, fix in enumerate(timeline.fixes)
    ]
    assert summarise(counted).summary.odometer_distance_m == 2000
    # A reset to zero mid-drive is not a backwards drive; what it counts after it is counted.
    reset = counted[:80] + [
        dataclasses.replace(fix, odometer_m=(fix.odometer_m or 0) - 51_000) for fix in counted[80:]
    ]
    assert summarise(reset).summary.odometer_distance_m == 2000 - 50  # the step it fell in
    sparse = [dataclasses.replace(fix, odometer_m=None) for fix in counted[:61]] + counted[61:]
    assert summarise(sparse).summary.odometer_distance_m is None  # 62 % of the fixes carry it


def test_no_fixes_give_an_empty_day() -> None:
    day = summarise([])
    assert (day.trips, day.parkings) == ((), ())
    assert day.summary.fix_count == 0
    assert day.summary.distance_m == 0.0
    assert day.summary.max_speed_kmh is None
    assert day.summary.first_fix is None
    assert day.summary.engine_s is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("stop_speed_kmh", -1), ("min_stop_s", -5), ("max_gap_s", 0), ("min_trip_distance_m", -1)],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        ReportSettings(**{field: value})


def test_the_vectorised_haversine_is_geo_s() -> None:
    lat = np.array([20.97, 21.03, -33.9, 51.5])
    lon = np.array([105.78, 105.85, 151.2, -0.12])
    expected = [haversine_m(lat[i], lon[i], lat[i + 1], lon[i + 1]) for i in range(3)]
    assert haversine_steps_m(lat, lon).tolist() == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- properties


@st.composite
def parked_and_driven_days(draw: st.DrawFn) -> Timeline:
    """Parkings long enough and drives far enough to count, with no gap in the data."""
    timeline = Timeline(START, interval_s=draw(st.integers(1, 30)))
    timeline.park(draw(st.integers(240, 1800)))
    for _ in range(draw(st.integers(1, 5))):
        timeline.drive(
            draw(st.integers(300, 5000)),
            draw(st.integers(10, 60)),
            heading_deg=draw(st.integers(0, 359)),
        )
        timeline.park(draw(st.integers(240, 1800)))
    return timeline


@settings(max_examples=60, deadline=None)
@given(parked_and_driven_days())
def test_every_drive_is_a_trip_and_every_metre_is_in_one(timeline: Timeline) -> None:
    day = summarise(timeline.fixes)
    drives, parks = legs(timeline, "drive"), legs(timeline, "park")
    assert len(day.trips) == len(drives)
    assert len(day.parkings) == len(parks)
    # Standing still adds nothing, so the trips hold all the day's distance.
    assert sum(t.distance_m for t in day.trips) == pytest.approx(day.summary.distance_m)
    laid_out_m = sum(leg.distance_m for leg in drives)
    assert day.summary.distance_m == pytest.approx(laid_out_m, rel=DISTANCE_REL)
    first, last = day.summary.first_fix, day.summary.last_fix
    assert first is not None
    assert last is not None
    span_s = (last - first).total_seconds()
    assert day.summary.driving_s + day.summary.stopped_s == pytest.approx(span_s)
    assert_tiles(day)


@st.composite
def any_fixes(draw: st.DrawFn) -> list[TrackFix]:
    """Fixes as a bad day sends them: any speed or none, gaps, jumps, repeats."""
    fixes: list[TrackFix] = []
    t_s, lat, lon = 0.0, 20.97, 105.78
    for _ in range(draw(st.integers(0, 80))):
        t_s += draw(st.sampled_from([0, 1, 5, 5, 5, 30, 200, 900]))
        lat += draw(st.floats(-0.003, 0.003))
        lon += draw(st.floats(-0.003, 0.003))
        fixes.append(
            TrackFix(
                device_id=1,
                time=START + dt.timedelta(seconds=t_s),
                lat=lat + draw(st.sampled_from([0.0, 0.0, 0.0, 0.2])),  # now and then a jump
                lon=lon,
                speed_kmh=draw(st.one_of(st.none(), st.floats(0, 90))),
                heading_deg=None,
                ignition=draw(st.one_of(st.none(), st.booleans())),
                odometer_m=None,
            )
        )
    return fixes


@settings(max_examples=150, deadline=None)
@given(any_fixes())
def test_whatever_the_fixes_trips_and_parkings_keep_their_rules(fixes: list[TrackFix]) -> None:
    rules = ReportSettings()
    day = summarise(fixes, rules)
    assert_tiles(day)
    summary = day.summary
    assert summary.fix_count == len(fixes)
    trips_m = sum(trip.distance_m for trip in day.trips)
    assert trips_m <= summary.distance_m + 1e-6
    for trip in day.trips:
        assert trip.distance_m >= rules.min_trip_distance_m or trip.duration_s >= rules.min_trip_s
    for parking in day.parkings:
        assert parking.duration_s >= rules.min_stop_s
        assert parking.ignition_on_share is None or 0.0 <= parking.ignition_on_share <= 1.0
    if fixes:
        first, last = summary.first_fix, summary.last_fix
        assert first is not None
        assert last is not None
        spans = [(t.start_time, t.end_time) for t in day.trips]
        spans += [(p.start_time, p.end_time) for p in day.parkings]
        for start, end in spans:
            assert first <= start <= end <= last
        span_s = (last - first).total_seconds()
        assert summary.driving_s + summary.stopped_s <= span_s + 1e-6
        assert summary.engine_s is None or 0.0 <= summary.engine_s <= span_s + 1e-6
    # Dropping a jump or an implausible step only ever shortens the day.
    if len(fixes) >= 2:
        ordered = sorted({fix.time: fix for fix in reversed(fixes)}.values(), key=lambda f: f.time)
        most_m = sum(
            haversine_m(a.lat, a.lon, b.lat, b.lon) for a, b in itertools.pairwise(ordered)
        )
        assert summary.distance_m <= most_m + 1e-6


# ---------------------------------------------------------------- from PostgreSQL


def recent_local_date() -> dt.date:
    """Two days back, inside the positions partitions the session created."""
    return dt.datetime.now(reports.LOCAL_ZONE).date() - dt.timedelta(days=2)


def test_the_local_day_runs_from_local_midnight_to_midnight_in_utc() -> None:
    assert reports.local_day_bounds(dt.date(2026, 12, 3)) == (
        dt.datetime(2026, 12, 2, 17, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 3, 17, 0, tzinfo=dt.UTC),
    )


async def test_the_day_of_a_vehicle_reads_its_devices_over_the_local_day(pool: Pool) -> None:
    local_date = recent_local_date()
    day_start, day_end = reports.local_day_bounds(local_date)
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "Công ty")
        truck = await fleet.create_vehicle(conn, tenant.id, "29C-10001")
        neighbour = await fleet.create_vehicle(conn, tenant.id, "29C-10002")
        unit = await fleet.create_device(
            conn, tenant, "truck-1", fleet.DeviceKind.TRUCK, vehicle_id=truck
        )
        other_unit = await fleet.create_device(
            conn, tenant, "truck-2", fleet.DeviceKind.TRUCK, vehicle_id=neighbour
        )
        other = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "Công ty khác")
        foreign = await fleet.create_vehicle(conn, other.id, "29C-10001")
        # Before local midnight the truck drives 4 km (another day), then the day proper.
        timeline = Timeline(day_start - dt.timedelta(minutes=10), device_id=unit.device.id)
        timeline.drive(4000, 40).park(600).drive(3000, 36).park(600).drive(5000, 30).park(900)
        # Late in the evening it drives again, past the next local midnight.
        evening = Timeline(day_end - dt.timedelta(minutes=5), device_id=unit.device.id)
        evening.drive(6000, 36)
        # The neighbour drives too; none of it is the truck's.
        other_timeline = Timeline(day_start, device_id=other_unit.device.id)
        other_timeline.park(300).drive(9000, 50).park(300)
        fixes = timeline.fixes + evening.fixes
        rows = [position_row(fix, tenant.id) for fix in fixes + other_timeline.fixes]
        await write_positions(conn, rows)
        await conn.commit()
        day = await reports.vehicle_day(conn, tenant.id, truck, local_date)
        with pytest.raises(reports.NotFound):
            await reports.vehicle_day(conn, tenant.id, foreign, local_date)
        with pytest.raises(reports.NotFound):
            await reports.vehicle_day(conn, other.id, truck, local_date)
    in_day = [fix for fix in fixes if day_start <= fix.time < day_end]
    assert day == summarise(in_day)
    assert day.summary.first_fix == day_start
    assert day.summary.last_fix == day_end - dt.timedelta(seconds=5)
    trips_m = [t.distance_m for t in day.trips]
    assert trips_m == pytest.approx([3000, 5000, 59 * 50], rel=DISTANCE_REL)  # 59 steps by 24:00
    assert day.summary.max_speed_kmh == 36.0  # the 40 km/h drive was the day before
