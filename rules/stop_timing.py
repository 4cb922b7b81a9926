"""Stops served between sparse fixes, told by time: the truck took longer than driving.

With fixes 30 s apart a 25-60 s service is seen by one or two fixes, or by none, and noise
puts them tens of metres off: no dwell can be timed. But between the last moving fix
before a stop (at progress pA, time tA) and the first moving fix after it (pB, tB) the
truck drove the path from pA to pB; driving it takes about the plan's pace (or the faster
speed the truck reported) times the distance, and the rest of tB - tA it stood. When that
rest covers the service of every stop between pA and pB, they were probably served. A
truck driving past stops keeps to street speed and has no time left over.

Moving fixes are the span's ends because a standing fix may be standing at a stop whose
service it cuts in two. What the time could also have been spent on cuts the span: a gap
of ``unseen_gap_s`` (a dropout: its stops stay unseen), a fix off the path (a detour), in
a site (an unload), or standing away from every stop (a hold-up in traffic); so does a span
longer than ``max_inference_gap_s``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from sanitrack.settings import RulesSettings
from tracker import Observation, TrackedRun

MAX_MOVING_FIXES = 64  # kept per run: bounded by count as well as by max_inference_gap_s


@dataclass(frozen=True, slots=True)
class MovingFix:
    t: float
    progress_m: float
    speed_kmh: float


@dataclass(frozen=True, slots=True)
class Inferred:
    """A stop probably served, and the time that tells it."""

    index: int
    arrival_t: float  # estimated: the span's start plus the drive to the stop
    span_s: float
    spare_s: float  # the span less the drive
    needed_s: float  # the service the span's stops need


@dataclass(slots=True)
class TimingState:
    moving: deque[MovingFix] = field(default_factory=deque)  # since the span was last cut
    cursor: int = 0  # stops before it were looked at

    def clone(self) -> TimingState:
        return TimingState(deque(self.moving), self.cursor)


def served_by_time(
    state: TimingState, run: TrackedRun, obs: Observation, settings: RulesSettings
) -> list[Inferred]:
    """The stops this fix closes a span over whose spare time covers their service."""
    if settings.max_inference_gap_s <= 0:
        return []
    current = obs.run
    if (
        current is None
        or obs.gap_s is None
        or obs.gap_s >= settings.unseen_gap_s
        or not obs.on_path
        or obs.in_site
        or (not obs.moving and not _near_a_stop(run, obs))
    ):
        state.moving.clear()
    if not obs.moving or current is None or current.lost or not obs.on_path:
        return []  # progress is where the vehicle stood, or was not found near it
    here = MovingFix(obs.t, current.progress_m, obs.speed_kmh)
    moving = state.moving
    while moving and moving[0].t < obs.t - settings.max_inference_gap_s:
        moving.popleft()
    found: list[Inferred] = []
    stops = run.stops
    zone_m = settings.inference_zone_m
    while state.cursor < len(stops) and stops[state.cursor].offset_m + zone_m < here.progress_m:
        index = state.cursor
        state.cursor += 1
        stop = stops[index]
        if not stop.collect:
            continue
        start = next((m for m in reversed(moving) if m.progress_m < stop.offset_m - zone_m), None)
        if start is None:
            continue
        inferred = _spare_time(run, start, here, index, settings)
        if inferred is not None:
            found.append(inferred)
    moving.append(here)
    if len(moving) > MAX_MOVING_FIXES:
        moving.popleft()
    return found


def _spare_time(
    run: TrackedRun, start: MovingFix, end: MovingFix, index: int, settings: RulesSettings
) -> Inferred | None:
    distance_m = end.progress_m - start.progress_m
    needed_s = 0.0
    for between in run.stops_between(start.progress_m, end.progress_m):
        stop = run.stops[between]
        if not stop.collect:
            return None  # an unload takes what time it takes
        needed_s += max(
            settings.inference_min_service_s, settings.inference_service_share * stop.service_s
        )
    # The truck cannot have driven faster than the faster speed it reported at either end
    # (a plan's pace may be optimistic); without a plan's pace that speed is all there is.
    drive_s = run.planned_drive_s(start.progress_m, end.progress_m)
    fastest_mps = max(start.speed_kmh, end.speed_kmh) / 3.6
    if fastest_mps > 0:
        reported_s = distance_m / fastest_mps
        drive_s = reported_s if math.isnan(drive_s) else max(drive_s, reported_s)
    if math.isnan(drive_s):
        return None
    span_s = end.t - start.t
    spare_s = span_s - drive_s
    if spare_s < needed_s:
        return None
    share = (run.stops[index].offset_m - start.progress_m) / distance_m
    return Inferred(index, start.t + drive_s * share, span_s, spare_s, needed_s)


def _near_a_stop(run: TrackedRun, obs: Observation) -> bool:
    """Standing where a stop may be served: within its radius, widened by the accuracy."""
    for index in run.stops_near(obs.x, obs.y):
        stop = run.stops[index]
        if math.hypot(obs.x - stop.x, obs.y - stop.y) <= stop.radius_m + obs.accuracy_m:
            return True
    return False
