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

When the fixes are sparse *and* noisy (30 s apart, 30 m off) a stand can smear over two
stops and progress stands still where it began, so spans between moving fixes are cut or
misplaced. What is left is the stretch (``TrackedRun.stretches``: neighbouring stops, each
within twice the radius of the one before): the time from the first sparse fix near its
stops, in its turn on the route, to the last. A stop about to be missed is probably served
when that time, less the drive over the stretch, covers ``stretch_service_share`` of its
stops' service, with at least one fix standing; a stretch held much longer than that is a
hold-up, not service.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from sanitrack.settings import RulesSettings
from tracker import Observation, TrackedRun

AHEAD_M = 300.0  # how far past the progress a sparse fix is looked for on the path
HOLD_UP_SLACK_S = 300.0  # a stretch held longer than its service allows plus this: a hold-up
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
    method: str = "span"  # "span": between moving fixes; "stretch": the stretch's time


@dataclass(frozen=True, slots=True)
class StretchSeen:
    """The sparse fixes near a stretch's stops, in its turn."""

    first_t: float
    last_t: float
    lead_s: float  # the gap before the first: the truck came within it
    standing: int  # fixes standing still


@dataclass(slots=True)
class TimingState:
    moving: deque[MovingFix] = field(default_factory=deque)  # since the span was last cut
    cursor: int = 0  # stops before it were looked at
    stretches: dict[int, StretchSeen] = field(default_factory=dict)  # by stretch index

    def clone(self) -> TimingState:
        return TimingState(deque(self.moving), self.cursor, dict(self.stretches))


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


def note_stretches(
    state: TimingState, run: TrackedRun, obs: Observation, settings: RulesSettings
) -> None:
    """Count a sparse fix towards the stretch of the nearest stop it may be at, in its turn."""
    current = obs.run
    if (
        current is None
        or current.lost
        or settings.stretch_min_gap_s <= 0
        or obs.gap_s is None
        or obs.gap_s < settings.stretch_min_gap_s
        or obs.ignition is False
        or not run.stretches
    ):
        return
    # Where along the path the fix reads, near the progress (which stands still while the
    # tracker sees one stand, and a stand can smear over several stops 30 s apart).
    progress_m = run.path.locate(
        obs.x, obs.y, current.progress_m, settings.progress_behind_m, AHEAD_M
    ).offset_m
    stops, stretch_of = run.stops, run.stretch_of
    reach_m = settings.inference_zone_m + settings.stretch_turn_m
    # The fix counts for one stretch: that of the nearest stop it may be at, in its turn (a
    # truck standing at the next stop beyond a stretch it drove past reads near both).
    nearest, nearest_m = -1, math.inf
    for index in run.stops_near(obs.x, obs.y):
        stretch = stretch_of[index]
        if stretch < 0:
            continue
        stop = stops[index]
        distance_m = math.hypot(obs.x - stop.x, obs.y - stop.y)
        if distance_m >= nearest_m or distance_m > stop.radius_m + obs.accuracy_m:
            continue
        first, last = run.stretches[stretch]
        if stops[first].offset_m - reach_m <= progress_m <= stops[last].offset_m + reach_m:
            nearest, nearest_m = stretch, distance_m
    if nearest < 0:
        return
    seen = state.stretches.get(nearest)
    standing = 0 if obs.moving else 1
    if seen is None:
        lead_s = min(obs.gap_s, settings.unseen_gap_s)
        state.stretches[nearest] = StretchSeen(obs.t, obs.t, lead_s, standing)
    else:
        state.stretches[nearest] = StretchSeen(
            seen.first_t, obs.t, seen.lead_s, seen.standing + standing
        )


def served_by_stretch(
    state: TimingState,
    run: TrackedRun,
    index: int,
    settings: RulesSettings,
    *,
    so_far: bool = False,
) -> Inferred | None:
    """Stop ``index``, about to be missed, probably served: its stretch's time tells.
    ``so_far``: the stretch up to this stop only (the truck may still be working along it)."""
    stretch = run.stretch_of[index] if run.stretch_of else -1
    seen = state.stretches.get(stretch) if stretch >= 0 else None
    if seen is None or seen.standing == 0:
        return None
    first, last = run.stretches[stretch]
    if so_far:
        last = index
    stops = run.stops
    needed_s = sum(stops[i].service_s for i in range(first, last + 1))
    low_m = stops[first].offset_m - settings.inference_zone_m
    high_m = min(stops[last].offset_m + settings.inference_zone_m, run.stop_offsets[-1])
    drive_s = run.planned_drive_s(max(low_m, 0.0), high_m)
    if needed_s <= 0 or math.isnan(drive_s):
        return None  # the plan does not say how long the stretch takes
    span_s = seen.last_t - seen.first_t + seen.lead_s
    spare_s = span_s - drive_s
    share = settings.stretch_service_share
    if (
        not share * needed_s
        <= spare_s
        <= settings.stretch_hold_up_factor * needed_s + HOLD_UP_SLACK_S
    ):
        return None
    return Inferred(
        index, seen.first_t - seen.lead_s / 2, span_s, spare_s, share * needed_s, "stretch"
    )
