"""What the missed_stop rule tells: visits recorded, stops missed or unseen, alerts opened
and resolved, as signals and ``stop_visits`` rows."""

from __future__ import annotations

import math
from typing import Any

from alerts import (
    AlertSignal,
    Change,
    Resolution,
    Severity,
    StopVisit,
    VisitEvidence,
    VisitStatus,
)
from rules.signals import Subject, alert_key, moment, signal
from rules.stop_state import KIND, PENDING, UNSEEN, VISITED, Outcome, StopsState, StopWatch
from tracker import TrackedStop


def visited(
    state: StopsState,
    index: int,
    watch: StopWatch,
    evidence: VisitEvidence,
    subject: Subject,
    out: Outcome,
    details: dict[str, Any],
) -> None:
    state.status[index] = VISITED
    visit = visit_record(state, index, watch, VisitStatus.VISITED, evidence, subject, None, details)
    out.visits.append(visit)
    resolve_if_alerted(state, index, watch.first_t, subject, out)
    if state.dropout:
        # The stops between the last visit before a dropout and this one, not passed before
        # it, may have been served while no fix came (progress need not have moved past
        # them: it may be stuck behind the truck): no evidence either way.
        for between in range(max(state.last_visited + 1, state.dropout_cursor), index):
            unseen(state, between, watch.first_t, subject, out)
        state.dropout = False
    state.last_visited = index


def unseen(state: StopsState, index: int, t: float, subject: Subject, out: Outcome) -> None:
    """Stop ``index``, unserved, may have been served unseen: not missed; a "passed" notice
    told about it is withdrawn (a stop missed for good when its window closed stays so)."""
    stop = state.run.stops[index]
    if not stop.collect or state.status[index] != PENDING or index in state.missed:
        return
    state.status[index] = UNSEEN
    key = state.alerted.pop(index, None)
    if key is not None:
        message = (
            f"Xe {subject.label}: không rõ điểm {stop.seq} có được thu gom không (mất tín hiệu)"
        )
        evidence = {"reason": "unseen"}
        out.signals.append(
            _resolved(state, stop, key, subject, t, message, evidence, withdrawn=True)
        )


def resolve_if_alerted(
    state: StopsState, index: int, t: float, subject: Subject, out: Outcome
) -> None:
    key = state.alerted.pop(index, None)
    if key is None:
        return
    state.missed.discard(index)
    stop = state.run.stops[index]
    message = f"Xe {subject.label} đã thu gom điểm {stop.seq} (muộn)"
    evidence = {"visited_at": iso(t)}
    out.signals.append(_resolved(state, stop, key, subject, t, message, evidence))


def _resolved(
    state: StopsState,
    stop: TrackedStop,
    key: str,
    subject: Subject,
    t: float,
    message: str,
    evidence: dict[str, Any],
    *,
    withdrawn: bool = False,
) -> AlertSignal:
    """The stop's alert resolved: served late after all, or withdrawn (no evidence)."""
    return signal(
        Change.RESOLVED,
        key,
        KIND,
        Severity.WARNING,
        subject,
        t,
        message,
        evidence,
        route_run_id=state.run.id,
        stop_seq=stop.seq,
        resolution=Resolution.WITHDRAWN if withdrawn else Resolution.VISITED_LATE,
    )


def miss(
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
        missed_signal(change, state, stop, key, subject, t, reason, Severity.CRITICAL)
    )


def missed_signal(
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
        "planned_arrival": iso(stop.planned_arrival_s),
        "lat": stop.lat,
        "lon": stop.lon,
    }
    if stop.window_end_s is not None:
        evidence["window_end"] = iso(stop.window_end_s)
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


def visit_record(
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


def iso(t: float) -> str:
    return moment(t).isoformat(timespec="milliseconds").replace("+00:00", "Z")
