"""Fleet rules that do not need a route: speeding, idle, geofence crossings, GPS jumps and
offline devices (the last from the clock, never from a message)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from alerts import AlertKind, AlertSignal, Change, Resolution, Severity
from rules.signals import Subject, alert_key, fix_evidence, moment, signal
from sanitrack.settings import RulesSettings
from tracker import GeofenceIndex, Observation


@dataclass(slots=True)
class FleetState:
    over_since: float | None = None  # speeding: first fix over the limit
    max_speed_kmh: float = 0.0
    speeding_key: str | None = None
    under_since: float | None = None
    idle_since: float | None = None
    idle_key: str | None = None
    inside: frozenset[int] | None = None  # geofences, confirmed (None: no fix yet)
    crossing: dict[int, int] = field(default_factory=dict)  # geofence -> fixes on the new side
    offline_key: str | None = None
    offline_since: float = 0.0  # when the offline alert opened (fix time)
    offline_last_t: float = 0.0  # the last fix before the silence

    def clone(self) -> FleetState:
        copy = replace(self)
        copy.crossing = dict(self.crossing)
        return copy


def speeding(
    state: FleetState, obs: Observation, settings: RulesSettings, subject: Subject
) -> list[AlertSignal]:
    if obs.speed_kmh > settings.speed_limit_kmh:
        state.under_since = None
        if state.over_since is None:
            state.over_since, state.max_speed_kmh = obs.t, 0.0
        state.max_speed_kmh = max(state.max_speed_kmh, obs.speed_kmh)
        if state.speeding_key is None and obs.t - state.over_since >= settings.speeding_min_s:
            state.speeding_key = alert_key(AlertKind.SPEEDING, subject, state.over_since)
            return [_speeding(Change.OPENED, state, subject, state.over_since, obs)]
        return []
    if state.speeding_key is None:
        state.over_since = None
        return []
    if state.under_since is None:
        state.under_since = obs.t
    if obs.t - state.under_since < settings.speeding_clear_s:
        return []
    resolved = _speeding(Change.RESOLVED, state, subject, state.under_since, obs)
    state.speeding_key = state.over_since = state.under_since = None
    return [resolved]


def _speeding(
    change: Change, state: FleetState, subject: Subject, t: float, obs: Observation
) -> AlertSignal:
    assert state.speeding_key is not None
    return signal(
        change,
        state.speeding_key,
        AlertKind.SPEEDING,
        Severity.WARNING,
        subject,
        t,
        f"Xe {subject.label} chạy quá tốc độ: {state.max_speed_kmh:.0f} km/h",
        {
            "max_speed_kmh": round(state.max_speed_kmh, 1),
            "fix": fix_evidence(obs.t, obs.lat, obs.lon),
        },
        resolution=Resolution.CLEARED if change is Change.RESOLVED else None,
    )


def idle(
    state: FleetState, obs: Observation, settings: RulesSettings, subject: Subject
) -> list[AlertSignal]:
    """Ignition on, standing still, not at a stop nor a site, for ``idle_after_s``."""
    idling = obs.ignition is True and not obs.moving and not obs.in_site
    if idling:
        if state.idle_since is None:
            state.idle_since = obs.t
        if (
            state.idle_key is None
            and obs.t - state.idle_since >= settings.idle_after_s
            and not _at_a_stop(obs)
        ):
            state.idle_key = alert_key(AlertKind.IDLE, subject, state.idle_since)
            return [
                signal(
                    Change.OPENED,
                    state.idle_key,
                    AlertKind.IDLE,
                    Severity.INFO,
                    subject,
                    state.idle_since,
                    f"Xe {subject.label} nổ máy đứng yên quá {settings.idle_after_s / 60:.0f} phút",
                    {"fix": fix_evidence(obs.t, obs.lat, obs.lon)},
                )
            ]
        return []
    state.idle_since = None
    if state.idle_key is None:
        return []
    key, state.idle_key = state.idle_key, None
    return [
        signal(
            Change.RESOLVED,
            key,
            AlertKind.IDLE,
            Severity.INFO,
            subject,
            obs.t,
            f"Xe {subject.label} đã hết đứng yên",
            {},
            resolution=Resolution.CLEARED,
        )
    ]


def _at_a_stop(obs: Observation) -> bool:
    """Standing at one of its run's stops (serving it, or waiting for the bins): not idle."""
    if obs.run is None:
        return False
    run = obs.run.run
    for index in run.stops_near(obs.x, obs.y):
        stop = run.stops[index]
        reach = stop.radius_m + obs.accuracy_m
        if (obs.x - stop.x) ** 2 + (obs.y - stop.y) ** 2 <= reach * reach:
            return True
    return False


def geofences(
    state: FleetState,
    obs: Observation,
    settings: RulesSettings,
    subject: Subject,
    index: GeofenceIndex | None,
) -> list[AlertSignal]:
    """Enter and exit, each confirmed by ``geofence_confirm_fixes`` fixes clearly on the new
    side (farther from the edge than half the fix's accuracy, up to 10 m), so a truck parked
    at a depot's fence does not flap. A device first heard inside a geofence is just there."""
    if index is None:
        return []
    if state.inside is None:
        state.inside = obs.geofences
        return []
    out = []
    margin_m = min(obs.accuracy_m / 2, 10.0)
    for fence in (obs.geofences ^ state.inside) | state.crossing.keys():
        now_inside = fence in obs.geofences
        if now_inside == (fence in state.inside):
            state.crossing.pop(fence, None)  # back on the old side: noise
            continue
        if fence in index.by_id and index.boundary_distance_m(fence, obs.x, obs.y) < margin_m:
            continue  # on the edge: neither side yet
        seen = state.crossing[fence] = state.crossing.get(fence, 0) + 1
        if seen < settings.geofence_confirm_fixes:
            continue
        del state.crossing[fence]
        state.inside = state.inside | {fence} if now_inside else state.inside - {fence}
        area = index.by_id.get(fence)
        if area is None:
            continue
        kind = AlertKind.GEOFENCE_ENTER if now_inside else AlertKind.GEOFENCE_EXIT
        verb = "vào" if now_inside else "ra khỏi"
        out.extend(
            _one_shot(
                kind,
                Severity.WARNING if area.kind == "restricted" else Severity.INFO,
                subject,
                obs.t,
                f"Xe {subject.label} {verb} {area.name}",
                {
                    "geofence_id": fence,
                    "geofence": area.name,
                    "geofence_kind": str(area.kind),
                    "fix": fix_evidence(obs.t, obs.lat, obs.lon),
                },
                fence,
            )
        )
    return out


def gps_jump(
    t: float, lat: float, lon: float, jump_m: float | None, subject: Subject
) -> list[AlertSignal]:
    """A fix ingest filtered as an impossible jump, reported (it moved nothing)."""
    return _one_shot(
        AlertKind.GPS_JUMP,
        Severity.INFO,
        subject,
        t,
        f"Thiết bị {subject.label} báo vị trí nhảy bất thường",
        {"fix": fix_evidence(t, lat, lon, jump_m=jump_m)},
    )


def offline_sweep(
    state: FleetState,
    last_t: float | None,
    on_shift: bool,
    now: float,
    settings: RulesSettings,
    subject: Subject,
) -> list[AlertSignal]:
    """Nothing heard for ``offline_after_s`` while on shift: stamped when it became overdue."""
    if last_t is None or state.offline_key is not None or not on_shift:
        return []
    if now - last_t < settings.offline_after_s:
        return []
    state.offline_since = last_t + settings.offline_after_s  # when it opened
    state.offline_last_t = last_t
    state.offline_key = alert_key(AlertKind.OFFLINE, subject, last_t)
    return [
        signal(
            Change.OPENED,
            state.offline_key,
            AlertKind.OFFLINE,
            Severity.WARNING,
            subject,
            last_t + settings.offline_after_s,
            f"Thiết bị của xe {subject.label} mất kết nối",
            {"last_fix_at": moment(last_t).isoformat().replace("+00:00", "Z")},
        )
    ]


def back_online(state: FleetState, t: float, subject: Subject) -> list[AlertSignal]:
    if state.offline_key is None:
        return []
    key, state.offline_key = state.offline_key, None
    return [
        signal(
            Change.RESOLVED,
            key,
            AlertKind.OFFLINE,
            Severity.WARNING,
            subject,
            max(t, state.offline_since),
            f"Thiết bị của xe {subject.label} đã kết nối lại",
            {"silent_s": round(max(t - state.offline_last_t, 0.0), 1)},
            resolution=Resolution.CLEARED,
        )
    ]


def _one_shot(
    kind: AlertKind,
    severity: Severity,
    subject: Subject,
    t: float,
    message: str,
    evidence: dict[str, object],
    *parts: object,
) -> list[AlertSignal]:
    key = alert_key(kind, subject, t, *parts)
    return [
        signal(Change.OPENED, key, kind, severity, subject, t, message, dict(evidence)),
        signal(
            Change.RESOLVED,
            key,
            kind,
            severity,
            subject,
            t,
            message,
            {},
            resolution=Resolution.ONE_SHOT,
        ),
    ]
