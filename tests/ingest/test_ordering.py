from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from ingest import DeviceFix, Fix
from ingest.ordering import ReorderBuffer

T0 = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)


def item(device: int, second: int) -> DeviceFix:
    fix = Fix(time=T0 + dt.timedelta(seconds=second), lat=20.97, lon=105.77, seq=second)
    return DeviceFix(device, 1, fix, T0)


def test_fixes_wait_for_the_window_then_come_out_in_time_order() -> None:
    buffer = ReorderBuffer(window_s=1.0)
    for second, arrival in ((3, 0.0), (1, 0.1), (2, 0.2)):
        buffer.push(item(7, second), arrival)
    assert list(buffer.release(0.9)) == []
    assert [i.fix.seq for i in buffer.release(1.25)] == [1, 2, 3]
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
    assert [i.fix.seq for i in released] == list(range(30))
    assert not any(i.late for i in released)
