from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from ingest import DeviceEvent, DeviceFix, DeviceItem, EventKind, Fix
from ingest.ordering import ReorderBuffer

T0 = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)


def item(device: int, second: int) -> DeviceFix:
    fix = Fix(time=T0 + dt.timedelta(seconds=second), lat=20.97, lon=105.77, seq=second)
    return DeviceFix(device, 1, fix, T0)


def seq(i: DeviceItem) -> int | None:
    assert isinstance(i, DeviceFix)
    return i.fix.seq


def test_fixes_wait_for_the_window_then_come_out_in_time_order() -> None:
    buffer = ReorderBuffer(window_s=1.0)
    for second, arrival in ((3, 0.0), (1, 0.1), (2, 0.2)):
        buffer.push(item(7, second), arrival)
    assert list(buffer.release(0.9)) == []
    assert [seq(i) for i in buffer.release(1.25)] == [1, 2, 3]
    assert len(buffer) == 0


def test_a_fix_older_than_one_already_released_is_marked_late() -> None:
    buffer = ReorderBuffer(window_s=0.5)
    buffer.push(item(7, 10), 0.0)
    assert [i.late for i in buffer.release(1.0)] == [False]
    buffer.push(item(7, 5), 2.0)
    buffer.push(item(8, 5), 2.0)  # other devices are unaffected
    assert sorted((i.device_id, i.late) for i in buffer.release(3.0)) == [(7, True), (8, False)]


@given(st.permutations(list(range(30))))
def test_any_arrival_order_within_the_window_is_restored(order: list[int]) -> None:
    buffer = ReorderBuffer(window_s=10.0)
    for n, second in enumerate(order):
        buffer.push(item(1, second), n * 0.01)
    released = list(buffer.release(100.0))
    assert [seq(i) for i in released] == list(range(30))
    assert not any(i.late for i in released)


def lift(device: int, second: float) -> DeviceEvent:
    return DeviceEvent(device, 1, EventKind.BIN_LIFT, T0 + dt.timedelta(seconds=second), T0)


def label(i: DeviceItem) -> str:
    if isinstance(i, DeviceFix):
        return f"fix {i.fix.seq}"
    return f"{i.kind} {(i.time - T0).total_seconds():g}"


def test_events_are_released_between_the_fixes_around_them() -> None:
    buffer = ReorderBuffer(window_s=1.0)
    buffer.push(lift(7, 5), 0.0)  # arrived first, happened between fixes 0 and 10
    buffer.push(item(7, 10), 0.1)
    buffer.push(item(7, 0), 0.2)
    buffer.push(lift(7, 10.5), 0.3)
    assert [label(i) for i in buffer.release(1.5)] == [
        "fix 0",
        "bin_lift 5",
        "fix 10",
        "bin_lift 10.5",
    ]


def test_a_late_event_is_marked_late_and_keeps_its_values() -> None:
    buffer = ReorderBuffer(window_s=0.5)
    buffer.push(item(7, 10), 0.0)
    assert [i.late for i in buffer.release(1.0)] == [False]
    confirm = DeviceEvent(
        7,
        1,
        EventKind.STOP_CONFIRM,
        T0 + dt.timedelta(seconds=4),
        T0,
        route_run_id=812,
        stop_seq=4,
        note="served",
    )
    buffer.push(confirm, 2.0)
    buffer.push(lift(7, 11), 2.0)
    first, second = buffer.release(3.0)
    assert first == DeviceEvent(
        7,
        1,
        EventKind.STOP_CONFIRM,
        T0 + dt.timedelta(seconds=4),
        T0,
        route_run_id=812,
        stop_seq=4,
        note="served",
        late=True,
    )
    assert (label(second), second.late) == ("bin_lift 11", False)


def test_a_late_jump_fix_keeps_its_jump_flag() -> None:
    buffer = ReorderBuffer(window_s=0.5)
    buffer.push(item(7, 10), 0.0)
    list(buffer.release(1.0))
    jump = DeviceFix(7, 1, Fix(time=T0, lat=21.5, lon=105.77, seq=0), T0, jump=True)
    buffer.push(jump, 2.0)
    [released] = buffer.release(3.0)
    assert isinstance(released, DeviceFix)
    assert (released.late, released.jump, released.fix) == (True, True, jump.fix)


@given(st.permutations([*range(0, 60, 2), *(n + 0.5 for n in range(0, 60, 4))]))
def test_any_arrival_order_of_fixes_and_events_is_restored(order: list[float]) -> None:
    buffer = ReorderBuffer(window_s=10.0)
    for n, second in enumerate(order):
        buffer.push(item(1, int(second)) if second == int(second) else lift(1, second), n * 0.01)
    released = list(buffer.release(100.0))
    assert [i.time for i in released] == sorted(i.time for i in released)
    assert len(released) == len(order)
    assert not any(i.late for i in released)
