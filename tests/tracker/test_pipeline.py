"""The enrichment pipeline, fix by fix: motion with hysteresis, stands (how long, and where
as the mean of their fixes), the route run starting and ending, progress along its path,
the stops a fix is at and the geofences it is in."""

from __future__ import annotations

import math

import pytest

from sanitrack.settings import RulesSettings
from tests.rules.world import (
    DEPOT_ID,
    DEVICE_ID,
    LABEL,
    PROJECTION,
    START_S,
    TENANT_ID,
    VEHICLE_ID,
    make_world,
)
from tracker import GeofenceIndex, Observation, TrackedRun, Tracker, VehicleState

SETTINGS = RulesSettings()


def observe(
    t: float,
    x: float,
    y: float,
    speed_kmh: float | None = 0.0,
    accuracy_m: float = 10.0,
    ignition: bool | None = True,
) -> Observation:
    lat, lon = PROJECTION.to_latlon(x, y)
    return Observation(
        START_S + t, lat, lon, x, y, accuracy_m, -1.0 if speed_kmh is None else speed_kmh, ignition
    )


class Pipeline:
    """A tracker and one vehicle's state, on the rules tests' route (east along a street
    1200 m, north 600 m; stops at 250, 1000 and 1500 m; a depot south of x 500..800)."""

    def __init__(self, with_run: bool = True) -> None:
        world = make_world()
        self.run: TrackedRun = world.tracked
        self.tracker = Tracker(SETTINGS, GeofenceIndex([world.depot], PROJECTION))
        runs = (self.run,) if with_run else ()
        self.state = VehicleState(DEVICE_ID, TENANT_ID, VEHICLE_ID, LABEL, runs)

    def __call__(
        self,
        t: float,
        x: float,
        y: float,
        speed_kmh: float | None = 0.0,
        accuracy_m: float = 10.0,
        ignition: bool | None = True,
    ) -> Observation:
        obs = observe(t, x, y, speed_kmh, accuracy_m, ignition)
        self.tracker.update(self.state, obs)
        return obs


# -- motion --------------------------------------------------------------------------------------


def test_motion_has_hysteresis() -> None:
    see = Pipeline(with_run=False)
    assert SETTINGS.moving_above_kmh == 4.0
    assert SETTINGS.stopped_below_kmh == 2.0
    assert see(0, 0, 0, 3.0).moving is False  # from stopped, 3 km/h is still stopped
    assert see(5, 0, 0, 4.0).moving is False  # not above 4
    assert see(10, 5, 0, 4.1).moving is True
    assert see(15, 10, 0, 3.0).moving is True  # from moving, 3 km/h is still moving
    assert see(20, 12, 0, 2.0).moving is True  # not below 2
    assert see(25, 13, 0, 1.9).moving is False
    assert see(30, 13, 0, 3.0).moving is False
    assert see.state.moving is False


def test_a_fix_without_speed_moves_by_its_displacement() -> None:
    see = Pipeline(with_run=False)
    first = see(0, 0, 0, None)
    assert (first.speed_reported, first.speed_kmh, first.moving) == (False, 0.0, False)
    assert first.gap_s is None
    # 8 m in 5 s is within the 10 m accuracy: no speed
    assert see(5, 8, 0, None).speed_kmh == 0.0
    moved = see(10, 58, 0, None)  # 50 m in 5 s
    assert moved.gap_s == 5.0
    assert moved.speed_kmh == pytest.approx(36.0)
    assert moved.moving is True


# -- stands --------------------------------------------------------------------------------------


def test_a_stand_counts_from_halfway_before_its_first_stopped_fix_at_the_mean_of_its_fixes() -> (
    None
):
    """It stopped somewhere between the last moving fix and the first stopped one: the
    stand is timed from halfway between them (at most stand_lead_max_s before)."""
    see = Pipeline(with_run=False)
    moving = see(0, 0, 0, 20.0)
    assert (moving.stand_since, moving.stand_s) == (None, 0.0)
    one = see(5, 100, 0, 0.0, accuracy_m=12.0)
    assert (one.stand_since, one.stand_s) == (START_S + 2.5, 2.5)
    assert (one.stand_x, one.stand_y) == (100.0, 0.0)
    assert one.stand_spread_m == pytest.approx(12.0)
    see(10, 104, 0, 0.0, accuracy_m=6.0)
    three = see(20, 102, 3, 0.0, accuracy_m=9.0)
    assert three.stand_since == START_S + 2.5
    assert three.stand_s == 17.5
    assert (three.stand_x, three.stand_y) == pytest.approx((102.0, 1.0))
    lat, lon = PROJECTION.to_latlon(102.0, 1.0)
    assert (three.stand_lat, three.stand_lon) == pytest.approx((lat, lon), abs=1e-9)
    # the mean accuracy (9 m) shrinks with the square root of the fixes
    assert three.stand_spread_m == pytest.approx(9.0 / math.sqrt(3))
    # moving ends the stand; the next one starts afresh
    assert see(25, 150, 0, 30.0).stand_since is None
    again = see(30, 180, 0, 0.0)
    assert (again.stand_since, again.stand_s, again.stand_x) == (START_S + 27.5, 2.5, 180.0)
    # after a long silence, it stood at most stand_lead_max_s (15 s) before it was seen
    see(40, 400, 0, 30.0)
    late = see(140, 420, 0, 0.0)
    assert late.stand_since == START_S + 125


def test_a_crawl_under_the_stopped_speed_is_a_stand() -> None:
    see = Pipeline(with_run=False)
    see(0, 0, 0, 1.0)
    crawl = see(10, 3, 0, 1.5)
    assert crawl.moving is False
    assert (crawl.stand_s, crawl.stand_x) == (10.0, 1.5)


# -- the route run and progress ------------------------------------------------------------------


def test_the_run_is_on_from_run_early_s_and_starts_at_its_planned_start_or_moving() -> None:
    see = Pipeline()
    early_s = SETTINGS.run_early_s
    before = see(-early_s - 10, 0, 0, 0.0)
    assert before.run is None
    assert see.state.current is None
    parked = see(-early_s + 10, 0, 0, 0.0)
    assert parked.run is None  # on, not started: rules that need a run stay quiet
    assert see.state.current is not None
    assert not see.state.current.started
    assert see(-60, 0, 0, 0.0).run is None
    driving = see(-55, 30, 0, 25.0)  # moving early starts it
    assert driving.run is see.state.current
    assert driving.run is not None
    assert driving.run.started


def test_a_parked_truck_starts_its_run_at_the_planned_start() -> None:
    see = Pipeline()
    assert see(-10, 0, 0, 0.0).run is None
    at_start = see(0, 0, 0, 0.0)
    assert at_start.run is not None
    assert at_start.run.started
    assert at_start.run.progress_m == pytest.approx(0.0)


def test_progress_follows_the_truck_along_the_path() -> None:
    see = Pipeline()
    for k in range(34):  # 35 m every 5 s along the street
        obs = see(5 * k, 35 * k, 3.0, 25.2)
        assert obs.run is not None
        assert obs.run.progress_m == pytest.approx(35 * k, abs=1e-6)
        assert obs.off_path_m == pytest.approx(3.0)
        assert obs.on_path
    # round the corner, 100 m north: as far along the path as the truck may have driven
    corner = see(5 * 34 + 10, 1202.0, 100.0, 25.2)
    assert corner.run is not None
    assert corner.run.progress_m == pytest.approx(1300.0)


def test_progress_moves_no_farther_than_the_truck_may_have_driven() -> None:
    see = Pipeline()
    t = drive_along(see, 0.0, 1155.0)
    # 15 s later, 300 m north of the corner (345 m along the path): it drove at least the
    # straight line, 304 m (its speeds say 105 m); progress may move that plus the slack,
    # 2 m short of where the fix is nearest the path
    corner = see(t + 15, 1202.0, 300.0, 25.2)
    driven_m = math.hypot(1202.0 - 1155.0, 300.0)
    assert corner.run is not None
    assert corner.run.progress_m == pytest.approx(1155.0 + driven_m + SETTINGS.progress_slack_m)
    assert corner.run.progress_m < 1500.0
    assert corner.on_path


def test_an_excursion_holds_progress_and_rejoining_is_flagged() -> None:
    see = Pipeline()
    for k in range(10):
        see(5 * k, 35 * k, 0.0, 25.2)
    away = see(50, 350, 80, 25.2)
    assert away.on_path is False
    assert away.off_path_m == pytest.approx(80.0)
    assert away.run is not None
    assert away.run.progress_m == pytest.approx(315.0)
    assert away.run.lost
    back = see(60, 420, 0, 25.2)
    assert back.on_path
    assert back.progress_rejoined
    assert back.run is not None
    assert back.run.progress_m == pytest.approx(420.0)
    assert not see(65, 455, 0, 25.2).progress_rejoined


def test_progress_after_a_gap_in_the_fixes_is_flagged() -> None:
    see = Pipeline()
    see(0, 0, 0, 25.0)
    see(5, 35, 0, 25.0)
    gap = SETTINGS.unseen_gap_s
    # a dropout: 600 m further when fixes come back, more than the speeds say
    resumed = see(5 + gap, 635, 0, 25.0)
    assert resumed.gap_s == gap
    assert resumed.progress_after_gap
    assert resumed.run is not None
    assert resumed.run.progress_m == pytest.approx(635.0)
    assert not see(10 + gap, 670, 0, 25.0).progress_after_gap


def drive_along(see: Pipeline, from_m: float, to_m: float, t: float = 0.0) -> float:
    """Fixes every 5 s, 35 m apart along the path; returns the time of the last."""
    offset = from_m
    while True:
        x, y = see.run.path.point_at(offset)
        see(t, x, y, 25.2)
        if offset >= to_m:
            return t
        offset, t = min(offset + 35.0, to_m), t + 5.0


def test_the_run_ends_when_the_truck_leaves_the_paths_end() -> None:
    see = Pipeline()
    t = drive_along(see, 0.0, see.run.length_m - 10.0)
    assert see.state.current is not None
    assert see.state.current.progress_m == pytest.approx(see.run.length_m - 10.0)
    beyond = see(t + 5, 1200, 700, 25.2)  # 100 m past the end: off the path near its end
    ended = beyond.run_ended_now
    assert ended is not None
    assert ended.ended
    assert ended.run.id == see.run.id
    assert see.state.current is None
    assert see.run.id in see.state.finished
    # finished for good: back on the path, no run
    assert see(t + 10, 1200, 550, 25.2).run is None


def test_leaving_the_path_far_from_its_end_does_not_end_the_run() -> None:
    see = Pipeline()
    see(0, 600, 0, 25.0)
    away = see(5, 600, 300, 25.0)
    assert away.run_ended_now is None
    assert see.state.current is not None


def test_the_run_ends_by_the_clock_after_its_overrun() -> None:
    see = Pipeline()
    see(0, 100, 0, 25.0)
    overrun_s = see.run.planned_end_s - START_S + SETTINGS.run_overrun_s
    assert see(overrun_s, 110, 0, 25.0).run is not None
    late = see(overrun_s + 1, 120, 0, 25.0)
    assert late.run_ended_now is not None
    assert late.run is None
    assert see.run.id in see.state.finished


# -- stops and sites -----------------------------------------------------------------------------


def test_a_fix_is_near_a_stop_within_its_radius_widened_by_its_accuracy() -> None:
    see = Pipeline()
    drive_along(see, 0.0, 175.0)
    stop = see.run.stops[0]  # x 250, radius 30 m
    assert stop.radius_m == 30.0
    # crawling (3 km/h) towards stop 1
    assert see(40, 209, 0, 3.0, accuracy_m=10.0).near_stops == ()  # 41 m > 30 + 10
    assert near(see(45, 215, 0, 3.0, accuracy_m=10.0)) == [(0, 35.0)]
    # the widening is at most the radius: a 100 m fix reaches 60 m, not 130 m
    assert near(see(50, 191, 0, 3.0, accuracy_m=100.0)) == [(0, 59.0)]
    assert see(55, 185, 0, 3.0, accuracy_m=100.0).near_stops == ()


def near(obs: Observation) -> list[tuple[int, float]]:
    return [(index, round(distance_m, 6)) for index, distance_m in obs.near_stops]


def test_a_fix_in_the_depot_is_in_a_site() -> None:
    see = Pipeline()
    outside = see(0, 650, 0, 10.0)
    assert (outside.geofences, outside.in_site) == (frozenset(), False)
    inside = see(5, 650, -100, 10.0)
    assert (inside.geofences, inside.in_site) == (frozenset({DEPOT_ID}), True)
    assert see.state.geofences == frozenset({DEPOT_ID})
