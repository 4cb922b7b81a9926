"""Fleet rules on hand-written timelines: speeding, idle, geofence crossings, GPS jumps and
offline devices (the last decided by the clock's sweep, never by a message)."""

from __future__ import annotations

import pytest

from alerts import AlertKind, Change, Resolution, Severity
from rules import FixInput
from rules.signals import moment
from tests.rules.world import DEPOT_ID, DEVICE_ID, RUN_ID, START_S, Trip, World, make_world

SPEEDING = AlertKind.SPEEDING
IDLE = AlertKind.IDLE
OFFLINE = AlertKind.OFFLINE


def at(seconds: float) -> float:
    return START_S + seconds


# -- speeding ------------------------------------------------------------------------------------


def test_60_kmh_for_30_s_opens_once_and_clears_once() -> None:
    world = make_world()
    # 40 km/h, then 500 m at 60 km/h (from +20 s to +50 s), then 40 km/h again
    trip = Trip(START_S, 0.0, 0.0).to(200.0, 0.0, 40.0).to(700.0, 0.0, 60.0)
    fixes = trip.to(1200.0, 0.0, 40.0).fixes()
    over = [f.t for f in fixes if (f.speed_kmh or 0.0) > 50.0]
    assert (over[0], over[-1]) == (at(20.0), at(45.0))
    log = world.play(fixes)
    signals = log.of(SPEEDING)
    assert [s.change for s in signals] == [Change.OPENED, Change.RESOLVED]
    opened, resolved = signals
    assert opened.key == resolved.key == f"speeding:{DEVICE_ID}::{round(at(20.0) * 1000)}"
    # opened at the first fix over the limit, once over it for speeding_min_s
    assert opened.at == moment(at(20.0))
    assert log.when(opened) == at(20.0) + world.settings.speeding_min_s
    assert opened.evidence["max_speed_kmh"] == 60.0
    # cleared at the first fix under it, once under it for speeding_clear_s
    assert resolved.at == moment(at(50.0))
    assert log.when(resolved) == at(50.0) + world.settings.speeding_clear_s
    assert resolved.resolution is Resolution.CLEARED


def test_a_burst_shorter_than_speeding_min_s_is_nothing() -> None:
    world = make_world()
    # 250 m at 60 km/h: 15 s over the limit
    trip = Trip(START_S, 0.0, 0.0).to(200.0, 0.0, 40.0).to(450.0, 0.0, 60.0)
    log = world.play(trip.to(1200.0, 0.0, 40.0).fixes())
    assert log.of(SPEEDING) == []


def test_a_dip_under_the_limit_shorter_than_speeding_clear_s_keeps_one_alert() -> None:
    world = make_world()
    trip = Trip(START_S, 0.0, 0.0).to(500.0, 0.0, 60.0).to(550.0, 0.0, 40.0)  # 4.5 s under
    trip.to(1000.0, 0.0, 60.0).to(1200.0, 0.0, 40.0).to(1200.0, 300.0, 40.0)
    log = world.play(trip.fixes())
    assert log.changes(SPEEDING) == [Change.OPENED, Change.RESOLVED]
    assert log.of(SPEEDING)[0].at == moment(START_S)


# -- idle ----------------------------------------------------------------------------------------


def standing(ignition: bool) -> list[FixInput]:
    """To x = 450 (away from the stops and the depot), 11 minutes there, on again."""
    trip = Trip(START_S, 0.0, 0.0).to(450.0, 0.0, 25.0).stand(660.0).to(1200.0, 0.0, 25.0)
    return trip.fixes(every_s=10.0, ignition=ignition)


def test_idle_opens_stamped_at_the_stand_start_and_resolves_when_moving() -> None:
    world = make_world()
    fixes = standing(ignition=True)
    stopped = [f.t for f in fixes if f.speed_kmh == 0.0]
    moving_again = next(f.t for f in fixes if f.t > stopped[-1])
    assert (stopped[0], moving_again) == (at(70.0), at(730.0))
    log = world.play(fixes)
    signals = log.of(IDLE)
    assert [s.change for s in signals] == [Change.OPENED, Change.RESOLVED]
    opened, resolved = signals
    assert opened.key == resolved.key
    assert opened.at == moment(stopped[0])
    assert log.when(opened) == stopped[0] + world.settings.idle_after_s
    assert opened.severity is Severity.INFO
    assert resolved.at == moment(moving_again)
    assert log.when(resolved) == moving_again
    assert resolved.resolution is Resolution.CLEARED


def test_standing_with_the_engine_off_is_not_idle() -> None:
    world = make_world()
    assert world.play(standing(ignition=False)).of(IDLE) == []


def test_standing_at_a_stop_is_not_idle() -> None:
    world = make_world()
    stop_x, _ = world.stop_xy(1)
    trip = Trip(START_S, 0.0, 0.0).to(stop_x, 0.0, 25.0).stand(660.0).to(1200.0, 0.0, 25.0)
    log = world.play(trip.fixes(every_s=10.0))
    assert log.of(IDLE) == []
    assert [v.status for v in log.visits_of(1)] == ["visited", "visited"]


# -- geofences -----------------------------------------------------------------------------------


def into_the_depot(world: World, path: list[tuple[float, float]]) -> list[FixInput]:
    """A fix every 5 s at each (x, y); the depot is x 500..800, y -300..-20."""
    return [world.fix(START_S + 5.0 * k, x, y, speed_kmh=10.0) for k, (x, y) in enumerate(path)]


def test_entering_and_leaving_the_depot_with_two_fixes_on_the_new_side() -> None:
    world = make_world()
    inside, outside = [(650.0, -60.0), (650.0, -100.0), (650.0, -100.0)], [(650.0, 0.0)] * 2
    log = world.play(into_the_depot(world, [(600.0, 0.0), (650.0, 0.0), *inside, *outside]))
    enter, leave = log.of(AlertKind.GEOFENCE_ENTER), log.of(AlertKind.GEOFENCE_EXIT)
    assert [s.change for s in enter] == [Change.OPENED, Change.RESOLVED]
    assert [s.change for s in leave] == [Change.OPENED, Change.RESOLVED]
    # one-shot events: opened and resolved at once, at the fix that confirmed the crossing
    assert (
        enter[0].key
        == enter[1].key
        == (f"geofence_enter:{DEVICE_ID}:{DEPOT_ID}:{round(at(15.0) * 1000)}")
    )
    assert enter[0].at == enter[1].at == moment(at(15.0))
    assert enter[1].resolution is Resolution.ONE_SHOT
    assert enter[0].evidence["geofence_id"] == DEPOT_ID
    assert enter[0].evidence["geofence_kind"] == "depot"
    assert enter[0].severity is Severity.INFO
    assert leave[0].at == moment(at(30.0))


@pytest.mark.parametrize("stray", [(650.0, -60.0), (650.0, -150.0)])
def test_one_noisy_fix_inside_the_depot_is_nothing(stray: tuple[float, float]) -> None:
    world = make_world()
    log = world.play(
        into_the_depot(world, [(600.0, 0.0), (650.0, 0.0), stray, (700.0, 0.0), (750.0, 0.0)])
    )
    assert log.of(AlertKind.GEOFENCE_ENTER) == []
    assert log.of(AlertKind.GEOFENCE_EXIT) == []


# -- GPS jumps -----------------------------------------------------------------------------------


def test_a_gps_jump_is_reported_once_and_moves_nothing() -> None:
    world = make_world()
    fixes = Trip(START_S, 0.0, 0.0).to(1200.0, 0.0, 25.0).fixes()
    log = world.play(fixes[:20])
    before = (world.context.vehicle.t, world.context.vehicle.x, world.current)
    # 2 km north of the truck, 2 s after its last fix
    jump = world.fix(fixes[19].t + 2.0, 35.0 * 19 * 25.0 / 25.2, 2000.0, speed_kmh=25.0)
    out = world.engine.on_jump(DEVICE_ID, jump)
    assert [s.change for s in out.signals] == [Change.OPENED, Change.RESOLVED]
    assert {s.kind for s in out.signals} == {AlertKind.GPS_JUMP}
    assert out.signals[0].key == out.signals[1].key
    assert out.signals[1].resolution is Resolution.ONE_SHOT
    assert out.signals[0].at == moment(jump.t)
    assert out.signals[0].evidence["fix"]["jump_m"] == pytest.approx(2000.0, abs=1.0)
    assert (world.context.vehicle.t, world.context.vehicle.x, world.current) == before
    log = world.play(fixes[20:])
    assert log.of(AlertKind.WRONG_ROUTE) == []


# -- offline -------------------------------------------------------------------------------------


def test_offline_during_a_run_opens_at_last_fix_plus_offline_after_s() -> None:
    world = make_world()
    after_s = world.settings.offline_after_s
    fixes = Trip(START_S, 0.0, 0.0).to(300.0, 0.0, 25.0).fixes()
    last = fixes[-1].t
    world.play(fixes, until=last + after_s - 1)
    assert world.log.of(OFFLINE) == []
    world.tick(last + after_s)
    opened = world.log.of(OFFLINE)
    assert [s.change for s in opened] == [Change.OPENED]
    assert opened[0].at == moment(last + after_s)
    assert world.log.when(opened[0]) == last + after_s
    assert opened[0].evidence["last_fix_at"] == moment(last).isoformat().replace("+00:00", "Z")
    world.tick(last + 900.0)  # the clock goes on: still one alert
    assert len(world.log.of(OFFLINE)) == 1

    back = Trip(last + 1000.0, 300.0, 0.0).to(600.0, 0.0, 25.0).fixes()
    log = world.play(back)
    signals = log.of(OFFLINE)
    assert [s.change for s in signals] == [Change.OPENED, Change.RESOLVED]
    assert signals[1].key == signals[0].key
    assert signals[1].at == moment(back[0].t)
    assert log.when(signals[1]) == back[0].t
    assert signals[1].evidence["silent_s"] == 1000.0
    assert signals[1].resolution is Resolution.CLEARED


def parked_before_the_start(world: World, ignition: bool) -> list[FixInput]:
    """Parked at the route's start from 30 to 20 minutes before the run, then silent."""
    return [
        world.fix(t, 0.0, 0.0, speed_kmh=0.0, ignition=ignition)
        for t in range(int(START_S) - 1800, int(START_S) - 1200 + 1, 30)
    ]


def test_no_offline_before_the_run_starts_with_the_engine_off() -> None:
    world = make_world()
    log = world.play(parked_before_the_start(world, ignition=False), until=START_S - 1.0)
    assert log.of(OFFLINE) == []


def test_offline_before_the_run_with_the_engine_on() -> None:
    """Ignition on is on shift, run or no run."""
    world = make_world()
    log = world.play(parked_before_the_start(world, ignition=True), until=START_S - 1.0)
    opened = log.of(OFFLINE)
    assert [s.change for s in opened] == [Change.OPENED]
    assert opened[0].at == moment(START_S - 1200 + world.settings.offline_after_s)


def test_no_offline_after_the_run_ended_with_the_engine_off() -> None:
    world = make_world()
    trip = Trip(START_S, 0.0, 0.0).to(1200.0, 0.0, 25.0).to(1200.0, 600.0, 25.0)
    fixes = trip.to(1200.0, 800.0, 25.0).fixes(ignition=False)  # on, past the path's end
    log = world.play(fixes, until=fixes[-1].t + 1200.0)
    assert world.current is None
    assert RUN_ID in world.context.vehicle.finished
    assert log.of(OFFLINE) == []


def test_buffered_fixes_after_a_silence_never_resolve_offline_before_it_opened() -> None:
    world = make_world()
    fixes = Trip(START_S, 0.0, 0.0).to(300.0, 0.0, 25.0).fixes()
    # fixes at +0, +5, +10 s heard; then nothing until the clock is at +200 s, when the
    # device's backlog arrives, oldest (+15 s) first
    world.play(fixes[:3], until=fixes[2].t + 190.0)
    world.play(fixes[3:])
    opened, resolved = world.log.of(OFFLINE)
    assert opened.at == moment(at(10.0 + world.settings.offline_after_s))
    assert resolved.change is Change.RESOLVED
    assert resolved.at >= opened.at
