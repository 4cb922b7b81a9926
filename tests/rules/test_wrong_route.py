"""wrong_route on hand-written timelines: a truck that keeps to its corridor is never
alerted, a real excursion opens once (stamped where it left) and resolves once back."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from alerts import AlertKind, Change, Resolution, Severity
from rules import FixInput
from rules.signals import moment
from tests.rules.world import (
    ALLEY_PATH,
    DEVICE_ID,
    LOOP_PATH,
    MAIN_PATH,
    RUN_ID,
    START_S,
    TWICE_PATH,
    Trip,
    World,
    along_route,
    drive,
    make_world,
)

WRONG = AlertKind.WRONG_ROUTE
STEP_M = 35.0  # a fix every 5 s at 25.2 km/h


def iso(t: float) -> str:
    return moment(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def street(
    world: World, off_m: dict[int, float], count: int = 34, missing: range | tuple[int, ...] = ()
) -> list[FixInput]:
    """Fix k at START_S + 5k, k * 35 m along the street (y = 0), or ``off_m[k]`` north
    of it: a truck at 25.2 km/h. No fix k for k in ``missing``."""
    return [
        world.fix(START_S + 5.0 * k, STEP_M * k, off_m.get(k, 0.0), speed_kmh=25.2)
        for k in range(count)
        if k not in missing
    ]


def detour(depth_m: float) -> list[FixInput]:
    """Along the street, out ``depth_m`` north at x = 400, back at x = 600, on to 1200."""
    trip = (
        Trip(START_S, 0.0, 0.0)
        .to(400.0, 0.0, 25.0)
        .to(400.0, depth_m, 25.0)
        .to(600.0, depth_m, 25.0)
        .to(600.0, 0.0, 25.0)
        .to(1200.0, 0.0, 25.0)
    )
    return trip.fixes(every_s=5.0)


def test_a_clean_drive_along_the_path_is_never_off_route() -> None:
    world = make_world()
    trip = along_route(world, START_S, 25.0, dwell_s={1: 30.0, 2: 30.0, 3: 30.0})
    log = world.play(trip.trip.fixes(rng=random.Random(11), noise_m=12.0))
    assert log.of(WRONG) == []
    # and the rest of the route was served: nothing missed, every stop visited
    assert log.of(AlertKind.MISSED_STOP) == []
    assert {v.stop_seq for v in log.visits if v.status == "visited"} == {1, 2, 3}


def test_a_150_m_detour_of_60_s_opens_once_then_resolves_once() -> None:
    world = make_world()
    fixes = detour(150.0)
    log = world.play(fixes)
    settings = world.settings

    off = [f for f in fixes if world.off_path_m(f) > world.tracked.corridor_m]
    first_off, last_off = off[0].t, off[-1].t
    # the timeline as written: out at x = 400 from +58 s, the corridor's edge crossed at
    # +65 s, back inside at +125 s (60 s off route, 12 fixes)
    assert (first_off - START_S, last_off - START_S, len(off)) == (65.0, 120.0, 12)
    confirming = next(
        f
        for n, f in enumerate(off, start=1)
        if f.t - first_off >= settings.min_off_route_s and n >= settings.min_off_route_fixes
    )
    back = next(f for f in fixes if f.t > last_off)

    signals = log.of(WRONG)
    assert [s.change for s in signals] == [Change.OPENED, Change.RESOLVED]
    opened, resolved = signals
    key = f"wrong_route:{DEVICE_ID}:{RUN_ID}:{round(first_off * 1000)}"
    assert opened.key == resolved.key == key
    assert (opened.route_run_id, opened.severity) == (RUN_ID, Severity.WARNING)

    # OPENED: stamped at the first fix off route, emitted by the fix that confirmed it
    assert opened.at == moment(first_off)
    assert log.when(opened) == confirming.t == first_off + settings.min_off_route_s
    evidence = opened.evidence
    assert evidence["confirmed_at"] == moment(confirming.t).isoformat().replace("+00:00", "Z")
    assert evidence["duration_s"] == settings.min_off_route_s
    assert evidence["off_route_fixes"] == 7
    assert len(evidence["fixes"]) == 7
    assert evidence["fixes"][0]["at"] == iso(first_off)
    assert evidence["threshold_m"] == 50.0
    assert evidence["max_distance_m"] == 150.0
    assert [f["distance_m"] for f in evidence["fixes"]][:3] == [51.4, 86.1, 120.8]
    assert "150 m" in opened.message

    # RESOLVED: stamped at the first fix back inside, once inside for resolve_s
    assert resolved.at == moment(back.t)
    assert log.when(resolved) == back.t + settings.resolve_s
    assert resolved.resolution is Resolution.CLEARED
    assert resolved.evidence["duration_s"] == back.t - first_off == 60.0
    assert resolved.evidence["off_route_fixes"] == 12


@pytest.mark.parametrize("depth_m", [70.0, 90.0])
def test_a_detour_reports_how_far_it_went(depth_m: float) -> None:
    world = make_world()
    log = world.play(detour(depth_m))
    signals = log.of(WRONG)
    assert [s.change for s in signals] == [Change.OPENED, Change.RESOLVED]
    assert signals[0].evidence["max_distance_m"] == depth_m
    assert signals[1].evidence["max_distance_m"] == depth_m


def test_an_open_excursion_that_goes_farther_is_updated() -> None:
    """Out 300 m on a diagonal: each fix farther than any before, after the confirmation,
    updates the alert (beyond 100 m too: the distance to the path is exact)."""
    world = make_world()
    trip = Trip(START_S, 0.0, 0.0).to(400.0, 0.0, 25.0).to(700.0, 300.0, 25.0)
    fixes = trip.to(1000.0, 0.0, 25.0).to(1200.0, 0.0, 25.0).fixes()
    log = world.play(fixes)
    changes = log.changes(WRONG)
    assert changes[0] is Change.OPENED
    assert changes[-1] is Change.RESOLVED
    updates = [s for s in log.of(WRONG) if s.change is Change.UPDATED]
    assert len(updates) == 4, changes  # the fixes at +105 s .. +120 s, each farther
    distances = [s.evidence["max_distance_m"] for s in (log.of(WRONG)[0], *updates)]
    assert distances == sorted(set(distances))
    farthest = max(world.off_path_m(f) for f in fixes)
    assert farthest > 290.0
    assert distances[-1] == pytest.approx(farthest, abs=0.1)
    assert len({s.key for s in log.of(WRONG)}) == 1


def test_an_excursion_shorter_than_min_off_route_s_is_nothing() -> None:
    world = make_world()
    # 6 fixes 80 m north, k = 10..15: 25 s off route (6 >= min_off_route_fixes)
    log = world.play(street(world, {k: 80.0 for k in range(10, 16)}))
    assert log.of(WRONG) == []


def test_an_excursion_of_exactly_min_off_route_s_opens() -> None:
    world = make_world()
    # 7 fixes, k = 10..16: 30 s off route
    log = world.play(street(world, {k: 80.0 for k in range(10, 17)}))
    assert log.changes(WRONG) == [Change.OPENED, Change.RESOLVED]
    opened = log.of(WRONG)[0]
    assert opened.at == moment(START_S + 50.0)
    assert log.when(opened) == START_S + 80.0


def test_fewer_than_min_off_route_fixes_is_nothing() -> None:
    world = make_world()
    # off route at k = 10 and k = 17 (35 s apart), no fix in between: 2 fixes
    log = world.play(street(world, {10: 80.0, 17: 80.0}, missing=range(11, 17)))
    assert log.of(WRONG) == []


def test_min_off_route_fixes_over_the_same_span_opens() -> None:
    world = make_world()
    log = world.play(street(world, {10: 80.0, 13: 80.0, 17: 80.0}, missing=(11, 12, 14, 15, 16)))
    opened = log.of(WRONG)[0]
    assert opened.change is Change.OPENED
    assert log.when(opened) == START_S + 85.0
    assert opened.evidence["off_route_fixes"] == 3


def test_two_fixes_far_into_another_street_over_min_off_route_s_open() -> None:
    """At a sparse fix rate, two fixes each at least clearly_off_factor times the threshold
    away (150 m, against 2 x 50 m) are enough: the truck is well into another street."""
    world = make_world()
    assert world.settings.clearly_off_fixes == 2
    log = world.play(street(world, {10: 150.0, 17: 150.0}, missing=range(11, 17)))
    opened = log.of(WRONG)[0]
    assert opened.change is Change.OPENED
    assert log.when(opened) == START_S + 85.0
    assert opened.evidence["off_route_fixes"] == 2


def test_a_marginal_fix_and_a_far_one_still_need_min_off_route_fixes() -> None:
    """GPS noise just past the edge, then a jump far out (a case seen at 30 s with 30 m
    noise), is two fixes, not an excursion; a third off fix makes it one."""
    world = make_world()
    two = street(world, {10: 60.0, 17: 222.0}, count=18, missing=range(11, 17))
    assert world.play(two).of(WRONG) == []
    world = make_world()
    three = street(
        world, {10: 60.0, 17: 222.0, 23: 150.0}, missing=(*range(11, 17), *range(18, 23))
    )
    opened = world.play(three).of(WRONG)[0]
    assert opened.at == moment(START_S + 50.0)
    assert opened.evidence["off_route_fixes"] == 3


def test_noise_at_the_corridor_edge_never_adds_up() -> None:
    world = make_world()
    # k = 3..30 alternate 45 m and 55 m north of the street: every other fix is off
    log = world.play(street(world, {k: 45.0 if k % 2 else 55.0 for k in range(3, 31)}))
    assert log.of(WRONG) == []


def test_inaccurate_fixes_are_not_evidence_of_being_off_route() -> None:
    world = make_world()
    fixes = street(world, {k: 75.0 for k in range(10, 20)})
    assert world.play(fixes).changes(WRONG) == [Change.OPENED, Change.RESOLVED]
    # the same excursion, but each off fix says it is only good to 70 m (the threshold
    # grows to 80 m), or to 120 m (worse than max_accuracy_m)
    for accuracy_m in (70.0, 120.0):
        world = make_world()
        blurred = [
            FixInput(f.t, f.lat, f.lon, f.speed_kmh, accuracy_m, f.ignition) if 10 <= n < 20 else f
            for n, f in enumerate(fixes)
        ]
        assert world.play(blurred).of(WRONG) == []


def test_a_detour_inside_the_depot_is_quiet() -> None:
    world = make_world()
    # into the depot (south of the street, x 500..800) and out again, 150 m off the path
    fixes = drive(
        [(0.0, 0.0), (550.0, 0.0), (550.0, -150.0), (750.0, -150.0), (750.0, 0.0), (1200.0, 0.0)],
        25.0,
        START_S,
        every_s=5.0,
        dwell={3: 60.0},  # and stands a minute at its far corner
        rng=random.Random(5),
        noise_m=5.0,
    )
    assert max(world.off_path_m(f) for f in fixes) == pytest.approx(150.0, abs=5.0)
    log = world.play(fixes)
    assert log.of(WRONG) == []
    # the detour was in the depot: it was seen entering and leaving it
    assert log.changes(AlertKind.GEOFENCE_ENTER) == [Change.OPENED, Change.RESOLVED]
    assert log.changes(AlertKind.GEOFENCE_EXIT) == [Change.OPENED, Change.RESOLVED]


def test_parked_off_the_route_before_the_planned_start_is_quiet() -> None:
    world = make_world()
    # 200 m north of the street, standing, engine off, from 25 min to 30 s before the start
    fixes = [
        world.fix(t, 300.0, 200.0, speed_kmh=0.0, ignition=False)
        for t in range(int(START_S) - 1500, int(START_S), 30)
    ]
    log = world.play(fixes, until=START_S - 1)
    assert log.signals == []
    current = world.current
    assert current is not None
    assert not current.started


@pytest.mark.parametrize(
    ("path", "stops"),
    [
        pytest.param(ALLEY_PATH, (200.0, 590.0, 1000.0), id="dead-end-alley"),
        pytest.param(TWICE_PATH, (200.0, 700.0, 1100.0, 1500.0), id="street-driven-twice"),
        pytest.param(LOOP_PATH, (150.0, 450.0, 1950.0, 2250.0), id="two-laps-of-a-loop"),
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_loops_and_u_turns_driven_as_planned(
    path: tuple[tuple[float, float], ...], stops: tuple[float, ...], seed: int
) -> None:
    noise_m = 8.0
    world = make_world(path, stops)
    trip = along_route(world, START_S, 25.0, dwell_s=dict.fromkeys(range(1, 5), 30.0))
    log = world.play(trip.trip.fixes(rng=random.Random(seed), noise_m=noise_m))
    assert log.of(WRONG) == []
    assert log.of(AlertKind.MISSED_STOP) == []
    assert {v.stop_seq for v in log.visits if v.status == "visited"} == set(
        range(1, len(stops) + 1)
    )
    # progress never jumps: it follows the truck's true offset, never sliding back more
    # than the noise allows nor skipping to another lap or leg of the street
    progress = world.progress
    assert len(progress) > 50
    for (_, before), (_, after) in itertools.pairwise(progress):
        assert after >= before - 2 * noise_m
    for t, offset in progress:
        assert offset == pytest.approx(trip.offset_at(t), abs=30.0), t


# -- property ----------------------------------------------------------------------------------

_DISC = st.tuples(st.floats(0.0, 48.99), st.floats(0.0, 2 * math.pi))


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from([MAIN_PATH, ALLEY_PATH, TWICE_PATH, LOOP_PATH]),
    noise=st.lists(_DISC, min_size=1, max_size=40),
    every_s=st.sampled_from([2.0, 5.0, 10.0, 30.0]),
)
def test_noise_inside_the_corridor_never_fires_wrong_route(
    path: tuple[tuple[float, float], ...],
    noise: list[tuple[float, float]],
    every_s: float,
) -> None:
    """Each fix displaced from the true point by less than corridor_m - 1 m."""
    world = make_world(path, ())
    trip = along_route(world, START_S, 25.0)
    offsets = [(r * math.cos(a), r * math.sin(a)) for r, a in noise]
    log = world.play(trip.trip.fixes(every_s=every_s, noise=offsets))
    assert [s for s in log.of(WRONG) if s.change is Change.OPENED] == []
