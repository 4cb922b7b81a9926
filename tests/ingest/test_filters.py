from __future__ import annotations

import datetime as dt

from ingest import DeviceEvent, EventKind, Fix
from ingest.filters import EventFilter, FixFilter, JumpRules, Verdict, distance_m

T0 = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)


def at(seconds: float, north_m: float = 0.0) -> Fix:
    return Fix(time=T0 + dt.timedelta(seconds=seconds), lat=20.97 + north_m / 111_320, lon=105.77)


def test_distance_is_haversine() -> None:
    assert abs(distance_m(20.97, 105.77, 20.98, 105.77) - 1111.95) < 0.5


def test_identical_repeat_is_a_duplicate_and_a_different_one_a_conflict() -> None:
    f = FixFilter(JumpRules())
    assert f.check(1, at(0)) is Verdict.ACCEPT
    assert f.check(1, at(0)) is Verdict.DUPLICATE
    assert f.check(1, at(0, north_m=30)) is Verdict.DUPLICATE_CONFLICT
    assert f.check(2, at(0)) is Verdict.ACCEPT  # another device


def test_a_single_jump_is_rejected_and_the_track_continues() -> None:
    f = FixFilter(JumpRules(max_implied_speed_kmh=150, confirm_fixes=2))
    assert f.check(1, at(0)) is Verdict.ACCEPT
    assert f.check(1, at(5, 30)) is Verdict.ACCEPT
    assert f.check(1, at(10, 900)) is Verdict.JUMP  # 870 m in 5 s
    assert f.check(1, at(15, 60)) is Verdict.ACCEPT  # back on the real track


def test_a_jump_confirmed_by_the_next_fix_is_accepted() -> None:
    """After a cold start the first fix is wrong; the device really is elsewhere."""
    f = FixFilter(JumpRules(max_implied_speed_kmh=150, confirm_fixes=2))
    assert f.check(1, at(0)) is Verdict.ACCEPT
    assert f.check(1, at(5, 2000)) is Verdict.JUMP
    assert f.check(1, at(10, 2020)) is Verdict.ACCEPT  # agrees with the suspect
    assert f.check(1, at(15, 2040)) is Verdict.ACCEPT


def test_late_fix_is_judged_against_its_time_neighbours() -> None:
    f = FixFilter(JumpRules(max_implied_speed_kmh=150))
    for n in (0, 10, 20):
        assert f.check(1, at(n, n * 5.0)) is Verdict.ACCEPT
    assert f.check(1, at(15, 75)) is Verdict.ACCEPT  # between its neighbours
    assert f.check(1, at(5, 1500)) is Verdict.JUMP  # late and far from both


def test_small_moves_are_never_jumps_even_in_zero_time() -> None:
    f = FixFilter(JumpRules(min_distance_m=100))
    assert f.check(1, at(0)) is Verdict.ACCEPT
    assert f.check(1, at(0.001, 50)) is Verdict.ACCEPT


def test_a_resent_event_is_a_duplicate_and_one_with_other_values_a_conflict() -> None:
    f = EventFilter()
    on = DeviceEvent(1, 1, EventKind.IGNITION, T0, T0, value=True)
    assert f.check(on) is Verdict.ACCEPT
    assert f.check(DeviceEvent(1, 1, EventKind.IGNITION, T0, at(9).time, value=True)) is (
        Verdict.DUPLICATE  # received again later: still the same event
    )
    assert f.check(DeviceEvent(1, 1, EventKind.IGNITION, T0, T0, value=False)) is (
        Verdict.DUPLICATE_CONFLICT
    )
    assert f.check(DeviceEvent(1, 1, EventKind.BIN_LIFT, T0, T0)) is Verdict.ACCEPT  # other kind
    assert f.check(DeviceEvent(2, 1, EventKind.IGNITION, T0, T0, value=True)) is Verdict.ACCEPT


def test_event_memory_is_bounded_per_device() -> None:
    f = EventFilter()
    lifts = [DeviceEvent(1, 1, EventKind.BIN_LIFT, at(n).time, T0) for n in range(40)]
    assert all(f.check(lift) is Verdict.ACCEPT for lift in lifts)
    assert f.check(lifts[-1]) is Verdict.DUPLICATE
    assert f.check(lifts[0]) is Verdict.ACCEPT  # forgotten: the table's unique key stores it once
