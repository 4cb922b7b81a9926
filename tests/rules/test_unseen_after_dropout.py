"""A dropout after which the truck comes back standing at a later stop, its fixes off the
path so progress stays behind it: the stops between the last visit before the dropout and
that stop may have been served unseen, so they are not missed. Coming back driving, the
truck is seen going on, and the stops are missed as before."""

from __future__ import annotations

from alerts import AlertKind, VisitEvidence, VisitStatus
from rules import FixInput
from rules.stops import UNSEEN, VISITED
from tests.rules.world import PROJECTION, START_S, Log, Trip, World, make_world

MISSED = AlertKind.MISSED_STOP
STOPS_M = (300.0, 500.0, 700.0, 1100.0)
KMH = 25.0
OFF_M = 22.0  # north of the street: within stop 4's 30 m radius, outside the 15 m corridor


def world_of() -> World:
    # A narrow corridor: a reading 22 m off the street is away from the path, so progress
    # does not follow the truck (as when it is stuck behind it on a looping route).
    return make_world(stops=STOPS_M, corridor_m=15.0)


def trip_of() -> tuple[Trip, float, float]:
    """Serving every stop, 40 s each, then away north, far from the path: with the times it
    leaves stop 1 and arrives at stop 4."""
    trip = Trip(START_S, 0.0, 0.0).to(300.0, 0.0, KMH).stand(40.0)
    left_1 = trip.t
    trip.to(500.0, 0.0, KMH).stand(40.0).to(700.0, 0.0, KMH).stand(40.0)
    trip.to(1100.0, 0.0, KMH)
    at_4 = trip.t
    return trip.stand(60.0).to(1100.0, 400.0, KMH), left_1, at_4


def fixes_of(trip: Trip, gap_from: float, gap_to: float) -> list[FixInput]:
    """Fixes every 5 s, 5 m accurate, none from ``gap_from`` to ``gap_to``; after the gap
    each reads OFF_M north of the truck."""
    fixes = []
    for fix in trip.fixes(every_s=5.0, accuracy_m=5.0):
        if gap_from < fix.t < gap_to:
            continue
        if fix.t >= gap_to:
            x, y = PROJECTION.to_xy(fix.lat, fix.lon)
            lat, lon = PROJECTION.to_latlon(x, y + OFF_M)
            fix = FixInput(fix.t, lat, lon, fix.speed_kmh, fix.accuracy_m, fix.ignition)
        fixes.append(fix)
    return fixes


def play(world: World, fixes: list[FixInput]) -> Log:
    return world.play(fixes, until=world.end_s + world.settings.run_overrun_s + 60.0)


def test_stops_between_visits_around_a_dropout_ending_standing_are_unseen() -> None:
    world = world_of()
    trip, left_1, at_4 = trip_of()
    log = play(world, fixes_of(trip, left_1 + 5.0, at_4 + 10.0))
    assert [(v.status, v.evidence) for v in log.visits_of(4)][:1] == [
        (VisitStatus.VISITED, VisitEvidence.DWELL)
    ]
    status = world.stops_state.status
    assert (status[0], status[1], status[2], status[3]) == (VISITED, UNSEEN, UNSEEN, VISITED)
    assert log.open_missed() == set()


def test_coming_back_driving_the_same_stops_are_missed() -> None:
    world = world_of()
    trip, left_1, at_4 = trip_of()
    # The gap ends 20 s before stop 4: the first fixes after it are moving.
    log = play(world, fixes_of(trip, left_1 + 5.0, at_4 - 20.0))
    assert world.stops_state.status[3] == VISITED
    assert log.open_missed() == {2, 3}


def test_driving_on_after_a_dropout_the_stop_just_ahead_is_still_to_come() -> None:
    # Fixes come back 20 m before stop 2, the truck driving: stop 2 is ahead, not served
    # unseen; it drives past it, so it is missed (stop 1 behind it was served, and seen).
    world = make_world(stops=(300.0, 800.0, 1100.0))
    trip = Trip(START_S, 0.0, 0.0).to(300.0, 0.0, KMH).stand(40.0)
    left_1 = trip.t
    trip.to(780.0, 0.0, KMH)
    back = trip.t
    trip.to(1100.0, 0.0, KMH).stand(40.0).to(1100.0, 400.0, KMH)
    fixes = [f for f in trip.fixes(every_s=5.0) if not left_1 + 5.0 < f.t < back]
    assert back - (left_1 + 5.0) >= world.settings.unseen_gap_s
    log = play(world, fixes)
    status = world.stops_state.status
    assert (status[0], status[2]) == (VISITED, VISITED)
    assert log.open_missed() == {2}
