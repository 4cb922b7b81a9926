"""Linear referencing near the last progress: loops, U-turns and streets driven twice do not
make the progress jump; noise within the corridor keeps the fix on the right stretch."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.path import PathIndex

# Out along a street, round a 200 m block, back down the same street (a U-turn route that
# also drives the street twice).
OUT_AND_BACK = [
    (0.0, 0.0),
    (400.0, 0.0),
    (400.0, 200.0),
    (600.0, 200.0),
    (600.0, 0.0),
    (400.0, 0.0),
    (0.0, 0.0),
]
# Two laps of the same 300 m x 300 m block.
TWO_LAPS = [(0.0, 0.0), (300.0, 0.0), (300.0, 300.0), (0.0, 300.0)] * 2 + [(0.0, 0.0)]


def test_bad_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        PathIndex([(0.0, 0.0)])


def test_the_whole_path_and_a_window_can_disagree_and_the_window_wins() -> None:
    path = PathIndex(OUT_AND_BACK)
    assert path.length_m == pytest.approx(1600.0)
    # 100 m from the start, on the street driven twice: at offset 100 on the way out and
    # 1500 on the way back.
    assert path.locate(100.0, 3.0).offset_m == pytest.approx(100.0)
    back = path.locate(100.0, 3.0, around_m=1450.0)
    assert back.offset_m == pytest.approx(1500.0)
    assert back.distance_m == pytest.approx(3.0)


def test_second_lap_of_a_loop() -> None:
    path = PathIndex(TWO_LAPS)
    lap = 1200.0
    for offset in range(0, 2400, 37):
        x, y = path.point_at(offset)
        located = path.locate(x + 4.0, y - 4.0, around_m=max(0.0, offset - 30.0))
        expected = offset
        # a corner point is equally near two segments; both give the corner's offset
        assert located.offset_m == pytest.approx(expected, abs=8.0), (offset, located)
    x, y = path.point_at(150.0 + lap)
    assert path.locate(x, y, around_m=lap + 100.0).offset_m == pytest.approx(lap + 150.0)


def test_point_at_clamps_and_interpolates() -> None:
    path = PathIndex(OUT_AND_BACK)
    assert path.point_at(-5.0) == (0.0, 0.0)
    assert path.point_at(5000.0) == (0.0, 0.0)
    assert path.point_at(500.0) == pytest.approx((400.0, 100.0))


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=0.0, max_value=40.0), min_size=5, max_size=80),
    noise=st.lists(
        st.tuples(st.floats(-15.0, 15.0), st.floats(-15.0, 15.0)), min_size=80, max_size=80
    ),
)
def test_progress_follows_a_noisy_drive_in_order(
    steps: list[float], noise: list[tuple[float, float]]
) -> None:
    """A vehicle driving the path in order, fixes off by up to 15 m each way, located near
    its last progress, is always placed within the noise of where it really is."""
    path = PathIndex(OUT_AND_BACK)
    progress, true_offset, worst_noise = 0.0, 0.0, 0.0
    for step, (dx, dy) in zip(steps, noise, strict=False):
        true_offset = min(path.length_m, true_offset + step)
        x, y = path.point_at(true_offset)
        located = path.locate(x + dx, y + dy, around_m=progress, behind_m=50.0, ahead_m=200.0)
        # Within the noise, measured along the path (a corner can fold it onto the next leg).
        # Going back costs, so a fix that put progress ahead keeps it there while the vehicle
        # stands still: the error is bounded by the worst noise so far, not this fix's.
        worst_noise = max(worst_noise, math.hypot(dx, dy))
        assert abs(located.offset_m - true_offset) <= 2 * worst_noise + 1e-6
        assert located.distance_m <= math.hypot(dx, dy) + 1e-6
        progress = located.offset_m
