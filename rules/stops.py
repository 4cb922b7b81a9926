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
Stops progress skipped while no fix came (a dropout) are *unseen*: no evidence either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from alerts import (
    AlertKind,
    AlertSignal,
    Change,
    Resolution,
    Severity,
    StopVisit,
    VisitEvidence,
    VisitStatus,
)
from rules.signals import Subject, alert_key, moment, signal
from rules.stop_timing import (
    Inferred,
    TimingState,
    note_stretches,
    served_by_stretch,
    served_by_time,
)
from sanitrack.settings import RulesSettings
from tracker import Observation, TrackedRun, TrackedStop

KIND = AlertKind.MISSED_STOP
PENDING, PROBABLE, VISITED, UNSEEN = 0, 1, 2, 3


@dataclass(slots=True)
class StopWatch:
    """The vehicle at one stop: standing there, or going through its radius."""

    first_t: float
    last_t: float
    stood: bool = False  # a stand whose mean position is within the stop's radius
    dwell_s: float = 0.0
    passing_fixes: int = 0  # moving fixes inside the (accuracy-widened) radius
    speed_sum_kmh: float = 0.0
    closest_m: float = math.inf
    lat: float = 0.0  # where the vehicle stood (the stand's mean), or its closest fix
    lon: float = 0.0
    fixes: int = 0
    in_turn: bool = False  # while route progress was at this stop, not on another leg
    matched: bool = False  # the stand's mean was at this stop at its last fix
    visited: VisitEvidence | None = None


@dataclass(slots=True)
class StopsState:
    """One route run's stops: which are served, which were passed or missed."""

    run: TrackedRun
    status: bytearray
    window_order: tuple[int, ...]  # indexes of windowed stops by window end
    alerted: dict[int, str] = field(default_factory=dict)  # index -> open alert key
    missed: set[int] = field(default_factory=set)  # missed for good
    watches: dict[int, StopWatch] = field(default_factory=dict)
    pass_cursor: int = 0  # stops before it are behind the progress
    near_passed: set[int] = field(default_factory=set)  # behind it, but the vehicle is near
    # The stops at the current stand, found where its mean was (found again when it moves).
    stand_hits: tuple[tuple[int, float], ...] = ()
    stand_anchor: tuple[float, float, float] = (math.nan, 0.0, 0.0)  # since, x, y
    window_cursor: int = 0
    closed: bool = False  # the run ended and its unserved stops are missed
    timing: TimingState = field(default_factory=TimingState)
    last_visited: int = -1  # the stop visited last (stood at, lifted, confirmed)
    # No fix for unseen_gap_s since that visit, and the truck came back standing still
    # (progress may be stuck behind it) ...
    dropout: bool = False
    dropout_cursor: int = 0  # ... when progress had passed the stops before this one

    @classmethod
    def of(cls, run: TrackedRun) -> StopsState:
        windowed = [i for i, s in enumerate(run.stops) if s.window_end_s is not None and s.collect]
        order = tuple(sorted(windowed, key=lambda i: run.stops[i].window_end_s or 0.0))
        return cls(run, bytearray(len(run.stops)), order)

    def clone(self) -> StopsState:
        copy = replace(self)
        copy.status = bytearray(self.status)
        copy.alerted = dict(self.alerted)
        copy.missed = set(self.missed)
        copy.near_passed = set(self.near_passed)
        copy.watches = {k: replace(w) for k, w in self.watches.items()}
        copy.timing = self.timing.clone()
        return copy


@dataclass(slots=True)
class Outcome:
    signals: list[AlertSignal] = field(default_factory=list)
    visits: list[StopVisit] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.signals.extend(other.signals)
        self.visits.extend(other.visits)


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
        _visited(state, index, watch, VisitEvidence.DWELL, subject, out, {})


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
            _visit(state, index, watch, VisitStatus.VISITED, watch.visited, subject, watch.last_t)
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
            _visit(
                state, index, watch, VisitStatus.PROBABLE, VisitEvidence.SLOW_PASS, subject, None
            )
        )
        _resolve_if_alerted(state, index, watch.first_t, subject, out)


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
        _visit(
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
    _resolve_if_alerted(state, index, inferred.arrival_t, subject, out)


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
        # at) may have been served unseen: the evidence is cut.
        while (
            state.pass_cursor < len(stops)
            and stops[state.pass_cursor].offset_m <= progress_m + stops[state.pass_cursor].radius_m
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
        ):
            key = alert_key(KIND, subject, stop.planned_arrival_s, state.run.id, stop.seq)
            state.alerted[index] = key
            out.signals.append(
                _missed_signal(
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
            _miss(state, index, closes, "window_closed", subject, out)
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
            visit = _visit(
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
            _miss(state, index, t, "run_ended", subject, out)
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
    _visited(state, best, watch, VisitEvidence.BIN_LIFT, subject, out, {"bin_lift_at": _iso(t)})
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
    _visited(state, index, watch, VisitEvidence.STAFF_CONFIRMATION, subject, out, details)
    return out


def _visited(
    state: StopsState,
    index: int,
    watch: StopWatch,
    evidence: VisitEvidence,
    subject: Subject,
    out: Outcome,
    details: dict[str, Any],
) -> None:
    state.status[index] = VISITED
    visit = _visit(state, index, watch, VisitStatus.VISITED, evidence, subject, None, details)
    out.visits.append(visit)
    _resolve_if_alerted(state, index, watch.first_t, subject, out)
    if state.dropout:
        # The stops between the last visit before a dropout and this one, not passed before
        # it, may have been served while no fix came (progress need not have moved past
        # them: it may be stuck behind the truck): no evidence either way.
        for between in range(max(state.last_visited + 1, state.dropout_cursor), index):
            _unseen(state, between, watch.first_t, subject, out)
        state.dropout = False
    state.last_visited = index


def _unseen(state: StopsState, index: int, t: float, subject: Subject, out: Outcome) -> None:
    """Stop ``index``, unserved, may have been served unseen: not missed; a "passed" notice
    told about it is withdrawn (a stop missed for good when its window closed stays so)."""
    stop = state.run.stops[index]
    if not stop.collect or state.status[index] != PENDING or index in state.missed:
        return
    state.status[index] = UNSEEN
    key = state.alerted.pop(index, None)
    if key is None:
        return
    out.signals.append(
        signal(
            Change.RESOLVED,
            key,
            KIND,
            Severity.WARNING,
            subject,
            t,
            f"Xe {subject.label}: không rõ điểm {stop.seq} có được thu gom không (mất tín hiệu)",
            {"reason": "unseen"},
            route_run_id=state.run.id,
            stop_seq=stop.seq,
            resolution=Resolution.WITHDRAWN,
        )
    )


def _resolve_if_alerted(
    state: StopsState, index: int, t: float, subject: Subject, out: Outcome
) -> None:
    key = state.alerted.pop(index, None)
    if key is None:
        return
    state.missed.discard(index)
    stop = state.run.stops[index]
    out.signals.append(
        signal(
            Change.RESOLVED,
            key,
            KIND,
            Severity.WARNING,
            subject,
            t,
            f"Xe {subject.label} đã thu gom điểm {stop.seq} (muộn)",
            {"visited_at": _iso(t)},
            route_run_id=state.run.id,
            stop_seq=stop.seq,
            resolution=Resolution.VISITED_LATE,
        )
    )


def _miss(
    state: StopsState, index: int, t: float, reason: str, subject: Subject, out: Outcome
) -> None:
    stop = state.run.stops[index]
    state.missed.add(index)
    key = state.alerted.get(index)
    change = Change.UPDATED
    if key is None:
        key = alert_key(KIND, subject, stop.planned_arrival_s, state.run.id, stop.seq)
        state.alerted[index] = key
        change = Change.OPENED
    out.signals.append(
        _missed_signal(change, state, stop, key, subject, t, reason, Severity.CRITICAL)
    )


def _missed_signal(
    change: Change,
    state: StopsState,
    stop: TrackedStop,
    key: str,
    subject: Subject,
    t: float,
    reason: str,
    severity: Severity,
) -> AlertSignal:
    if reason == "passed":
        message = f"Xe {subject.label} đã đi qua điểm {stop.seq} mà chưa thu gom"
    else:
        message = f"Xe {subject.label} bỏ sót điểm {stop.seq} của tuyến {state.run.name}"
    evidence: dict[str, Any] = {
        "reason": reason,
        "stop_seq": stop.seq,
        "service_point_id": stop.service_point_id,
        "planned_arrival": _iso(stop.planned_arrival_s),
        "lat": stop.lat,
        "lon": stop.lon,
    }
    if stop.window_end_s is not None:
        evidence["window_end"] = _iso(stop.window_end_s)
    return signal(
        change,
        key,
        KIND,
        severity,
        subject,
        t,
        message,
        evidence,
        route_run_id=state.run.id,
        stop_seq=stop.seq,
    )


def _visit(
    state: StopsState,
    index: int,
    watch: StopWatch,
    status: VisitStatus,
    evidence: VisitEvidence,
    subject: Subject,
    departure_t: float | None,
    details: dict[str, Any] | None = None,
) -> StopVisit:
    stop = state.run.stops[index]
    return StopVisit(
        tenant_id=subject.tenant_id,
        route_run_id=state.run.id,
        stop_seq=stop.seq,
        vehicle_id=subject.vehicle_id,
        device_id=subject.device_id,
        service_point_id=stop.service_point_id,
        status=status,
        evidence=evidence,
        arrival_at=moment(watch.first_t),
        departure_at=None if departure_t is None else moment(departure_t),
        dwell_s=round(watch.dwell_s, 1),
        closest_m=round(watch.closest_m, 1) if math.isfinite(watch.closest_m) else 0.0,
        lat=watch.lat if watch.lat else stop.lat,
        lon=watch.lon if watch.lon else stop.lon,
        late=stop.window_end_s is not None and watch.first_t > stop.window_end_s,
        details={"fixes": watch.fixes, **(details or {})},
    )


def _iso(t: float) -> str:
    return moment(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")
