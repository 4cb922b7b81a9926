"""missed_stop, and the stop visits that prove service.

A stop is *visited* when the vehicle stands there for ``min_dwell_s``: a stand (the tracker's
run of stopped fixes) whose mean position lies within the stop's radius, so noise neither
invents a visit at a neighbour nor loses one; or when a bin lift happens there; or when a
crew member confirms it. It is *probably* visited, in its turn on the route, when the vehicle
stood there too briefly to time (sparse fixes) or crawled through its radius at walking
pace, or when the time the truck took over the stretch of path around it leaves enough
for its service beyond driving (``rules.stop_timing``: fixes too sparse to see it stand),
or, when the run ends with it unserved, the time the truck spent at its stretch of
neighbouring stops covers their service (sparse and noisy fixes).
When progress along the path is ``pass_margin_m`` beyond an unvisited stop, the driver
is told at once ("passed"); the stop is *missed* for good when its time window closes or the
run ends (the clock sweep), and a visit after that resolves the alert as visited late.
With sparse fixes the driver is not told while the time along the stop's stretch so far
covers it. Stops progress skipped while no fix came (a dropout) are *unseen*: no evidence
either way; so are those between the visits around a dropout the truck came back from
standing still (its progress may be stuck behind it).
"""

from __future__ import annotations

import math
from typing import Any

from alerts import Change, Severity, VisitEvidence, VisitStatus
from rules.signals import Subject, alert_key
from rules.stop_records import (
    iso,
    miss,
    missed_signal,
    resolve_if_alerted,
    visit_record,
    visited,
)
from rules.stop_state import (
    KIND,
    PENDING,
    PROBABLE,
    UNSEEN,
    VISITED,
    Outcome,
    StopsState,
    StopWatch,
)
from rules.stop_timing import Inferred, note_stretches, served_by_stretch, served_by_time
from sanitrack.settings import RulesSettings
from tracker import Observation

__all__ = ["PENDING", "PROBABLE", "UNSEEN", "VISITED", "Outcome", "StopsState"]


def on_fix(
    state: StopsState, obs: Observation, settings: RulesSettings, subject: Subject
) -> Outcome:
    out = Outcome()
    current = obs.run
    if obs.moving:
        state.dropout = False  # seen driving (after a gap progress tells what it skipped)
    elif obs.gap_s is not None and obs.gap_s >= settings.unseen_gap_s and not state.dropout:
        state.dropout, state.dropout_cursor = True, state.pass_cursor
    note_stretches(state.timing, state.run, obs, settings)
    for inferred in served_by_time(state.timing, state.run, obs, settings):
        _inferred(state, inferred, subject, out)
    if obs.stand_since is None and not obs.near_stops and not state.watches:
        if current is not None:  # on the way between stops: the common case
            _passed(state, current.progress_m, obs, settings, subject, out)
        return out
    touched: set[int] = set()
    if obs.stand_since is not None:
        watches = state.watches
        for index, kept in watches.items():
            if kept.stood:  # the stand goes on: its mean may come back to this stop
                kept.matched = False
                touched.add(index)
        for index, distance in _stand_hits(state, obs):  # where it stands: the stand's mean
            touched.add(index)
            served = watches.get(index)
            if served is not None and served.visited is not None:
                served.last_t, served.dwell_s = obs.t, obs.stand_s  # keep its timing
                served.fixes += 1
                served.matched = True
                continue
            _standing(state, index, distance, obs, settings, subject, out)
    for index, distance in obs.near_stops:
        if index in touched:
            continue
        if obs.moving:
            _passing(state, index, distance, obs, settings)
            touched.add(index)
        elif index in state.watches:
            touched.add(index)  # standing near it: the stand's mean decides
    for index in [i for i in state.watches if i not in touched]:
        _left(state, index, obs, settings, subject, out)
    if current is not None:
        _passed(state, current.progress_m, obs, settings, subject, out)
    return out


def _stand_hits(state: StopsState, obs: Observation) -> tuple[tuple[int, float], ...]:
    """The stops whose radius holds the stand's mean; looked up again only when the mean
    has moved a metre (it settles as fixes come)."""
    since, x, y = state.stand_anchor
    if since == obs.stand_since and abs(obs.stand_x - x) + abs(obs.stand_y - y) < 1.0:
        return state.stand_hits
    run = state.run
    hits = []
    for index in run.stops_near(obs.stand_x, obs.stand_y):
        stop = run.stops[index]
        distance = math.hypot(obs.stand_x - stop.x, obs.stand_y - stop.y)
        if distance <= stop.radius_m:
            hits.append((index, distance))
    state.stand_hits = tuple(hits)
    assert obs.stand_since is not None
    state.stand_anchor = (obs.stand_since, obs.stand_x, obs.stand_y)
    return state.stand_hits


def _watch(
    state: StopsState, index: int, first_t: float, obs: Observation, settings: RulesSettings
) -> StopWatch:
    watch = state.watches.get(index)
    if watch is None:
        watch = state.watches[index] = StopWatch(first_t, obs.t)
    watch.last_t = obs.t
    watch.fixes += 1
    if obs.run is not None and not watch.in_turn:
        stop = state.run.stops[index]
        reach_m = 2 * stop.radius_m + settings.pass_margin_m + obs.accuracy_m
        watch.in_turn = abs(obs.run.progress_m - stop.offset_m) <= reach_m
    return watch


def _standing(
    state: StopsState,
    index: int,
    distance: float,
    obs: Observation,
    settings: RulesSettings,
    subject: Subject,
    out: Outcome,
) -> None:
    assert obs.stand_since is not None
    watch = _watch(state, index, obs.stand_since, obs, settings)
    watch.first_t = min(watch.first_t, obs.stand_since)
    watch.stood = watch.matched = True
    watch.dwell_s = max(watch.dwell_s, obs.stand_s)
    watch.closest_m = min(watch.closest_m, distance)
    watch.lat, watch.lon = obs.stand_lat, obs.stand_lon
    if watch.visited is None and watch.dwell_s >= settings.min_dwell_s:
        watch.visited = VisitEvidence.DWELL
        visited(state, index, watch, VisitEvidence.DWELL, subject, out, {})


def _passing(
    state: StopsState, index: int, distance: float, obs: Observation, settings: RulesSettings
) -> None:
    watch = _watch(state, index, obs.t, obs, settings)
    watch.passing_fixes += 1
    watch.speed_sum_kmh += obs.speed_kmh
    if distance < watch.closest_m:
        watch.closest_m, watch.lat, watch.lon = distance, obs.lat, obs.lon


def _left(
    state: StopsState,
    index: int,
    obs: Observation,
    settings: RulesSettings,
    subject: Subject,
    out: Outcome,
) -> None:
    watch = state.watches.pop(index)
    if watch.visited is not None:  # the visit is over: record when it ended
        out.visits.append(
            visit_record(
                state, index, watch, VisitStatus.VISITED, watch.visited, subject, watch.last_t
            )
        )
        return
    # Weak evidence, and only in the stop's turn (a truck standing at a neighbour served on
    # another leg says nothing about this stop): stood there too briefly to time a dwell
    # (sparse fixes), or crawled through at walking pace.
    slow = (
        watch.passing_fixes >= 2
        and watch.speed_sum_kmh / watch.passing_fixes <= settings.probable_max_speed_kmh
    )
    # Stood there (where the stand ended up, not where it began) for as long as a service
    # takes, as far as the fixes can tell: from the stand's start to this first fix moving
    # again. With 5 s fixes a stop of a few seconds cannot pass; with 30 s fixes one stopped
    # fix can.
    could_dwell_s = obs.t - watch.first_t
    stood = watch.stood and watch.matched and could_dwell_s >= settings.min_dwell_s
    if state.status[index] == PENDING and (stood or (slow and watch.in_turn)):
        state.status[index] = PROBABLE
        out.visits.append(
            visit_record(
                state, index, watch, VisitStatus.PROBABLE, VisitEvidence.SLOW_PASS, subject, None
            )
        )
        resolve_if_alerted(state, index, watch.first_t, subject, out)


def _inferred(state: StopsState, inferred: Inferred, subject: Subject, out: Outcome) -> None:
    index = inferred.index
    if state.status[index] != PENDING:
        return
    state.status[index] = PROBABLE
    stop = state.run.stops[index]
    watch = StopWatch(inferred.arrival_t, inferred.arrival_t, lat=stop.lat, lon=stop.lon)
    details = {
        "method": inferred.method,
        "span_s": round(inferred.span_s, 1),
        "spare_s": round(inferred.spare_s, 1),
        "needed_s": round(inferred.needed_s, 1),
    }
    out.visits.append(
        visit_record(
            state,
            index,
            watch,
            VisitStatus.PROBABLE,
            VisitEvidence.INFERRED_FROM_TIME,
            subject,
            None,
            details,
        )
    )
    resolve_if_alerted(state, index, inferred.arrival_t, subject, out)


def _passed(
    state: StopsState,
    progress_m: float,
    obs: Observation,
    settings: RulesSettings,
    subject: Subject,
    out: Outcome,
) -> None:
    """Stops ``pass_margin_m`` behind the progress, unserved: the driver is told at once.
    A stop the vehicle is still near is not passed yet, whatever the progress says (on a
    street driven there and back, progress can run ahead of the vehicle): it waits, and
    the stops after it are looked at all the same."""
    stops = state.run.stops
    if obs.progress_after_gap:
        # Progress resumes after a gap in the fixes: stops up to here (and the one it stands
        # at; driving on, one just ahead is still to come) may have been served unseen: the
        # evidence is cut.
        while state.pass_cursor < len(stops) and stops[state.pass_cursor].offset_m <= progress_m + (
            0.0 if obs.moving else stops[state.pass_cursor].radius_m
        ):
            index = state.pass_cursor
            state.pass_cursor += 1
            state.near_passed.discard(index)
            if state.status[index] == PENDING:
                state.status[index] = UNSEEN
    while (
        state.pass_cursor < len(stops)
        and stops[state.pass_cursor].offset_m + settings.pass_margin_m < progress_m
    ):
        state.near_passed.add(state.pass_cursor)
        state.pass_cursor += 1
    if not state.near_passed:
        return
    for index in sorted(state.near_passed):
        stop = stops[index]
        if math.hypot(obs.x - stop.x, obs.y - stop.y) <= stop.radius_m + settings.pass_margin_m:
            continue  # still near it: look again at the next fix
        state.near_passed.discard(index)
        if obs.progress_rejoined:
            # Back on the route past it after a detour: it may still be served (the driver
            # heard about the detour); the sweep misses it if it is not.
            continue
        if (
            stop.collect
            and state.status[index] == PENDING
            and index not in state.watches
            and index not in state.alerted
            and index not in state.missed
            # sparse fixes: the time spent along its stretch so far may cover it (the run's
            # end decides)
            and served_by_stretch(state.timing, state.run, index, settings, so_far=True) is None
        ):
            key = alert_key(KIND, subject, stop.planned_arrival_s, state.run.id, stop.seq)
            state.alerted[index] = key
            out.signals.append(
                missed_signal(
                    Change.OPENED, state, stop, key, subject, obs.t, "passed", Severity.WARNING
                )
            )


def sweep(state: StopsState, now: float, settings: RulesSettings, subject: Subject) -> Outcome:
    """Clock-driven: stops whose time window closed ``sweep_grace_s`` ago unserved are missed."""
    out = Outcome()
    stops = state.run.stops
    while state.window_cursor < len(state.window_order):
        index = state.window_order[state.window_cursor]
        closes = stops[index].window_end_s
        assert closes is not None
        if closes + settings.sweep_grace_s > now:
            break
        state.window_cursor += 1
        if state.status[index] == PENDING and index not in state.watches:
            # (not told by its stretch's time: the truck may still be serving the stretch)
            miss(state, index, closes, "window_closed", subject, out)
    return out


def close_run(state: StopsState, t: float, subject: Subject, settings: RulesSettings) -> Outcome:
    """The run ended at ``t``: every collect stop still unserved is missed, unless the time
    its stretch took says it was probably served (then a stop missed when its window
    closed is served late)."""
    out = Outcome()
    if state.closed:
        return out
    state.closed = True
    for index in list(state.watches):
        watch = state.watches.pop(index)
        if watch.visited is not None:
            visit = visit_record(
                state, index, watch, VisitStatus.VISITED, watch.visited, subject, watch.last_t
            )
            out.visits.append(visit)
    for index, stop in enumerate(state.run.stops):
        if not stop.collect or state.status[index] != PENDING:
            continue
        inferred = served_by_stretch(state.timing, state.run, index, settings)
        if inferred is not None:
            _inferred(state, inferred, subject, out)
        elif index not in state.missed:
            miss(state, index, t, "run_ended", subject, out)
    return out


def bin_lift(
    state: StopsState, t: float, x: float, y: float, lat: float, lon: float, subject: Subject
) -> Outcome:
    """A bin lift at (x, y) serves the nearest collect stop within its radius (the one the
    truck stands at, even if that one is already visited: a lift never moves to a
    neighbour)."""
    out = Outcome()
    best, best_distance = None, math.inf
    for index in state.run.stops_near(x, y):
        stop = state.run.stops[index]
        if stop.collect:
            distance = math.hypot(x - stop.x, y - stop.y)
            if distance <= stop.radius_m and distance < best_distance:
                best, best_distance = index, distance
    if best is None or state.status[best] == VISITED:
        return out
    watch = state.watches.get(best)
    if watch is None:
        watch = StopWatch(t, t, closest_m=best_distance, lat=lat, lon=lon, fixes=1)
    watch.visited = VisitEvidence.BIN_LIFT
    visited(state, best, watch, VisitEvidence.BIN_LIFT, subject, out, {"bin_lift_at": iso(t)})
    return out


def confirm(
    state: StopsState,
    seq: int,
    t: float,
    staff_id: int | None,
    position: tuple[float, float, float, float] | None,  # x, y, lat, lon
    subject: Subject,
    max_distance_m: float,
) -> Outcome:
    """A crew member confirms stop ``seq`` served (from a phone, at ``position`` if known)."""
    out = Outcome()
    index = next((i for i, s in enumerate(state.run.stops) if s.seq == seq), None)
    if index is None or state.status[index] == VISITED:
        return out
    stop = state.run.stops[index]
    details: dict[str, Any] = {"staff_id": staff_id}
    distance = 0.0
    lat, lon = stop.lat, stop.lon
    if position is not None:
        distance = math.hypot(position[0] - stop.x, position[1] - stop.y)
        if distance > max_distance_m:
            return out  # confirmed from elsewhere: not evidence of service
        lat, lon = position[2], position[3]
    else:
        details["position"] = "unknown"
    watch = StopWatch(t, t, closest_m=distance, lat=lat, lon=lon, fixes=1)
    visited(state, index, watch, VisitEvidence.STAFF_CONFIRMATION, subject, out, details)
    return out
