"""wrong_route: the vehicle left its route run's corridor, and stayed out.

A fix is off route when its distance to the expected path (near the vehicle's progress)
exceeds max(corridor_m, accuracy_m + accuracy_margin_m). An excursion opens an alert once
it has lasted ``min_off_route_s`` over at least ``min_off_route_fixes`` fixes in a row, or
over ``clearly_off_fixes`` when each was ``clearly_off_factor`` times the threshold away (a
truck well into another street, seen sooner at sparse fix rates; GPS noise past the edge
and a single jump beside it are not). One fix back inside ends an excursion that has not
opened yet (noise at the corridor's edge never adds up), and an open one resolves after
``resolve_s`` back inside. Quiet while the run has not started or has ended, and inside
depots, transfer stations and landfills. GPS jumps never reach this rule: ingest filters
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from alerts import AlertKind, AlertSignal, Change, Resolution, Severity
from rules.signals import Subject, alert_key, fix_evidence, moment, signal
from sanitrack.settings import RulesSettings
from tracker import Observation

KIND = AlertKind.WRONG_ROUTE
MAX_EVIDENCE_FIXES = 60  # the first ones: where it left and how far it went


@dataclass(slots=True)
class WrongRouteState:
    run_id: int | None = None
    off_since: float | None = None  # the first fix of the current excursion
    last_off: float = 0.0
    off_fixes: int = 0
    clearly_off: bool = False  # every fix of the excursion far beyond the threshold
    max_distance_m: float = 0.0
    fixes: list[dict[str, Any]] = field(default_factory=list)
    open_key: str | None = None
    back_since: float | None = None  # an open alert's first fix back inside

    def clone(self) -> WrongRouteState:
        copy = replace(self)
        copy.fixes = list(self.fixes)
        return copy


def check(
    state: WrongRouteState, obs: Observation, settings: RulesSettings, subject: Subject
) -> list[AlertSignal]:
    current = obs.run
    if current is None or obs.off_path_m is None:
        return []
    run = current.run
    if state.run_id != run.id:  # a new run: nothing carries over
        state.run_id, state.off_since, state.open_key, state.back_since = run.id, None, None, None
    threshold = max(run.corridor_m, obs.accuracy_m + settings.accuracy_margin_m)
    off = (
        obs.off_path_m > threshold and obs.accuracy_m <= settings.max_accuracy_m and not obs.in_site
    )
    if off:
        return _off(state, obs, settings, subject, threshold)
    return _inside(state, obs, settings, subject)


def _off(
    state: WrongRouteState,
    obs: Observation,
    settings: RulesSettings,
    subject: Subject,
    threshold: float,
) -> list[AlertSignal]:
    assert obs.run is not None
    assert obs.off_path_m is not None
    state.back_since = None
    if state.off_since is None:
        state.off_since = obs.t
        state.off_fixes = 0
        state.clearly_off = True
        state.max_distance_m = 0.0
        state.fixes = []
    state.off_fixes += 1
    state.clearly_off &= obs.off_path_m >= settings.clearly_off_factor * threshold
    state.last_off = obs.t
    farther = obs.off_path_m > state.max_distance_m
    state.max_distance_m = max(state.max_distance_m, obs.off_path_m)
    if len(state.fixes) < MAX_EVIDENCE_FIXES:
        state.fixes.append(
            fix_evidence(
                obs.t, obs.lat, obs.lon, distance_m=obs.off_path_m, accuracy_m=obs.accuracy_m
            )
        )
    duration_s = obs.t - state.off_since
    if state.open_key is None:
        enough_fixes = state.off_fixes >= settings.min_off_route_fixes or (
            state.clearly_off and state.off_fixes >= settings.clearly_off_fixes
        )
        if duration_s >= settings.min_off_route_s and enough_fixes:
            state.open_key = alert_key(KIND, subject, state.off_since, obs.run.run.id)
            opened = _signal(
                Change.OPENED,
                state,
                obs,
                subject,
                threshold,
                at=state.off_since,
                confirmed_at=obs.t,
            )
            return [opened]
        return []
    if farther:  # keep the dispatcher's view of the excursion current, not every fix
        return [_signal(Change.UPDATED, state, obs, subject, threshold)]
    return []


def _inside(
    state: WrongRouteState, obs: Observation, settings: RulesSettings, subject: Subject
) -> list[AlertSignal]:
    if state.open_key is None:
        state.off_since = None  # an excursion too short to count
        return []
    if state.back_since is None:
        state.back_since = obs.t
    if obs.t - state.back_since < settings.resolve_s:
        return []
    assert obs.run is not None
    resolved = _signal(
        Change.RESOLVED,
        state,
        obs,
        subject,
        obs.run.run.corridor_m,
        at=state.back_since,
        resolution=Resolution.CLEARED,
    )
    state.open_key = None
    state.off_since = None
    state.back_since = None
    return [resolved]


def _signal(
    change: Change,
    state: WrongRouteState,
    obs: Observation,
    subject: Subject,
    threshold: float,
    *,
    at: float | None = None,
    confirmed_at: float | None = None,
    resolution: Resolution | None = None,
) -> AlertSignal:
    assert obs.run is not None
    assert state.open_key is not None
    assert state.off_since is not None
    run = obs.run.run
    ended = state.back_since if state.back_since is not None else state.last_off
    evidence: dict[str, Any] = {
        "max_distance_m": round(state.max_distance_m, 1),
        "duration_s": round(ended - state.off_since, 1),
        "off_route_fixes": state.off_fixes,
        "threshold_m": round(threshold, 1),
        "corridor_m": run.corridor_m,
        "progress_m": round(obs.run.progress_m, 1),
        "fixes": list(state.fixes),
    }
    if confirmed_at is not None:
        evidence["confirmed_at"] = moment(confirmed_at).isoformat().replace("+00:00", "Z")
    message = (
        f"Xe {subject.label} đi sai tuyến {run.name}: cách tuyến {state.max_distance_m:.0f} m"
        if change is not Change.RESOLVED
        else f"Xe {subject.label} đã trở lại tuyến {run.name}"
    )
    return signal(
        change,
        state.open_key,
        KIND,
        Severity.WARNING,
        subject,
        obs.t if at is None else at,
        message,
        evidence,
        route_run_id=run.id,
        resolution=resolution,
    )
