"""Stops told served by the time their stretch took, on hand-written timelines with fixes
30 s apart whose standing readings are 35 m off (outside the 30 m radius): a truck that
stood at a stretch of stops for about their service is probably served there (and not
told "passed" on the way); one that
drove through it, or stood there far longer than any service (a hold-up), is not; a stop
missed when its window closed is served late when the run's end shows its stretch's time;
with fixes 5 s apart the dwell decides and the stretches are not counted."""

from __future__ import annotations

from alerts import AlertKind, Change, Resolution, VisitEvidence, VisitStatus
from rules import FixInput
from rules.stops import PROBABLE
from sanitrack.settings import RulesSettings
from tests.rules.world import PROJECTION, START_S, Log, StopSpec, Trip, World, make_world

MISSED = AlertKind.MISSED_STOP
SERVICE_S = 45
STRETCH_M = (200.0, 240.0, 280.0)  # 40 m apart: one stretch
ALONE_M = 1000.0  # a stretch of its own
PLAN_KMH = 18.0
EVERY_S = 30.0
# The span inference (between moving fixes) is off: only the stretch's time can tell.
SETTINGS = RulesSettings(max_inference_gap_s=0.0)


def world_of(settings: RulesSettings = SETTINGS, alone_window_end_s: float | None = None) -> World:
    stops = [StopSpec(m, service_s=SERVICE_S) for m in STRETCH_M]
    stops.append(StopSpec(ALONE_M, window_end_s=alone_window_end_s, service_s=SERVICE_S))
    return make_world(stops=stops, settings=settings)


def trip_of(stand_s: dict[float, float]) -> Trip:
    """Along the path (east, then north), standing ``stand_s[x]`` at each x given; then a
    minute at the path's end and away from it, which ends the run."""
    trip = Trip(START_S, 0.0, 0.0)
    for x in (*STRETCH_M, ALONE_M):
        trip.to(x, 0.0, PLAN_KMH)
        if x in stand_s:
            trip.stand(stand_s[x])
    trip.to(1200.0, 0.0, PLAN_KMH).to(1200.0, 600.0, PLAN_KMH).stand(60.0)
    return trip.to(1500.0, 600.0, PLAN_KMH)


def sparse(trip: Trip, every_s: float = EVERY_S) -> list[FixInput]:
    """Fixes ``every_s`` apart, 30 m accurate; a standing one reads 35 m north of the truck."""
    fixes = []
    for fix in trip.fixes(PROJECTION, every_s, start_t=START_S + 10.0, accuracy_m=30.0):
        if fix.speed_kmh == 0.0:
            x, y = PROJECTION.to_xy(fix.lat, fix.lon)
            lat, lon = PROJECTION.to_latlon(x, y + 35.0)
            fix = FixInput(fix.t, lat, lon, 0.0, fix.accuracy_m, fix.ignition)
        fixes.append(fix)
    return fixes


def by_stretch(log: Log) -> set[int]:
    return {
        v.stop_seq
        for v in log.visits
        if (v.status, v.evidence) == (VisitStatus.PROBABLE, VisitEvidence.INFERRED_FROM_TIME)
        and v.details.get("method") == "stretch"
    }


def play(world: World, trip: Trip, every_s: float = EVERY_S) -> Log:
    log = world.play(sparse(trip, every_s), until=trip.t + 120.0)
    assert world.stops_state.closed, "the run must have ended for the stops to be decided"
    return log


def test_a_stretch_stood_at_for_its_service_is_probably_served() -> None:
    world = world_of()
    log = play(world, trip_of({x: SERVICE_S for x in (*STRETCH_M, ALONE_M)}))
    assert by_stretch(log) == {1, 2, 3, 4}
    # Not even told "passed" on the way: the time along the stretch so far covered each.
    assert log.of(MISSED) == []
    assert [world.stops_state.status[i] for i in range(4)] == [PROBABLE] * 4
    visit = next(v for v in log.visits if v.stop_seq == 2)
    assert visit.details["spare_s"] >= visit.details["needed_s"] == round(0.8 * 3 * SERVICE_S, 1)
    # Arrival: about when the truck came to the stretch (40 s to drive 200 m at 5 m/s).
    assert abs(visit.arrival_at.timestamp() - (START_S + 40.0)) <= EVERY_S


def test_without_the_stretches_the_same_stops_are_missed() -> None:
    # Nothing else saves these stops: the readings are outside the radius, the span
    # inference is off. (So the test above passes by the stretches' time alone.)
    world = world_of(RulesSettings(max_inference_gap_s=0.0, stretch_min_gap_s=0.0))
    log = play(world, trip_of({x: SERVICE_S for x in (*STRETCH_M, ALONE_M)}))
    assert by_stretch(log) == set()
    assert log.open_missed() == {1, 2, 3, 4}
    passed = {s.stop_seq for s in log.of(MISSED) if s.evidence.get("reason") == "passed"}
    assert passed == {1, 2, 3, 4}


def test_a_stretch_driven_through_is_missed_beside_one_served() -> None:
    world = world_of()
    log = play(world, trip_of({ALONE_M: SERVICE_S}))
    assert by_stretch(log) == {4}
    assert log.open_missed() == {1, 2, 3}


def test_standing_at_a_stretch_far_longer_than_its_service_is_a_hold_up() -> None:
    world = world_of()
    log = play(world, trip_of({240.0: 1200.0, ALONE_M: SERVICE_S}))
    assert by_stretch(log) == {4}
    assert log.open_missed() == {1, 2, 3}


def test_a_stop_missed_when_its_window_closed_is_served_late_by_its_stretch() -> None:
    # Stop 4's window closes 100 s into the run; the truck gets there minutes later.
    world = world_of(alone_window_end_s=100.0)
    log = play(world, trip_of({x: SERVICE_S for x in (*STRETCH_M, ALONE_M)}))
    stop_4 = [s for s in log.of(MISSED) if s.stop_seq == 4]
    assert [(s.change, s.resolution) for s in stop_4] == [
        (Change.OPENED, None),
        (Change.RESOLVED, Resolution.VISITED_LATE),
    ]
    assert stop_4[0].evidence["reason"] == "window_closed"
    assert by_stretch(log) == {1, 2, 3, 4}


def test_fixes_5_s_apart_are_not_counted_by_stretch() -> None:
    # Dense fixes time a dwell: the stretches are left to it (here the readings are off
    # the stops, so they are missed, as without the stretches).
    world = world_of()
    log = play(world, trip_of({x: SERVICE_S for x in (*STRETCH_M, ALONE_M)}), every_s=5.0)
    assert world.stops_state.timing.stretches == {}
    assert by_stretch(log) == set()
    assert log.open_missed() == {1, 2, 3, 4}
