"""The rules engine: per device, each fix is enriched by the tracker, then checked by every
rule, in fix-time order. No I/O and no clock of its own: the caller passes fixes, events and
the time of each sweep, so a stored day replays to the same alerts.

A fix older than the device's newest (late, out of order, skewed) is not lost: the device's
state is restored from the last checkpoint before it and the fixes since are evaluated again
with it in place. What that changes is emitted; an alert the new order no longer supports is
withdrawn, and one whose start it moves is renamed (its opening ``replaces`` the old key: one
alert, as a replay of the stored day in order would give). Alert keys are stable, so what was
emitted before is not emitted twice.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from dataclasses import dataclass, field, replace

from alerts import AlertSignal, Change, Resolution, Severity, StopVisit
from geo import LocalProjection
from rules import fleet, stops, wrong_route
from rules.fleet import FleetState
from rules.signals import Subject, key_stem, moment, signal
from rules.stops import Outcome, StopsState
from rules.wrong_route import WrongRouteState
from sanitrack.settings import RulesSettings
from tracker import (
    DEFAULT_ACCURACY_M,
    GeofenceIndex,
    Observation,
    TrackedRun,
    Tracker,
    VehicleState,
    end_run,
)

CHECKPOINT_EVERY = 32  # fixes
RECHECK_S = 60.0  # a device's sweep runs at least this often (its state may have changed)


@dataclass(frozen=True, slots=True)
class FixInput:
    t: float  # fix time, epoch seconds
    lat: float
    lon: float
    speed_kmh: float | None = None
    accuracy_m: float | None = None
    ignition: bool | None = None


@dataclass(frozen=True, slots=True)
class BinLift:
    t: float
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class StopConfirmation:
    t: float
    route_run_id: int
    stop_seq: int
    staff_id: int | None
    lat: float | None
    lon: float | None


Item = FixInput | BinLift | StopConfirmation


@dataclass(slots=True)
class _Checkpoint:
    t: float
    vehicle: VehicleState
    wrong_route: WrongRouteState
    fleet: FleetState
    stops: dict[int, StopsState]
    emitted: int  # len(emitted) when taken


@dataclass(slots=True)
class DeviceContext:
    subject: Subject
    tenant: TenantContext
    vehicle: VehicleState
    wrong_route: WrongRouteState = field(default_factory=WrongRouteState)
    fleet: FleetState = field(default_factory=FleetState)
    stops: dict[int, StopsState] = field(default_factory=dict)  # by route run id
    history: deque[Item] = field(default_factory=deque)  # in time order, for re-evaluation
    checkpoints: deque[_Checkpoint] = field(default_factory=deque)
    emitted: list[AlertSignal] = field(default_factory=list)  # since the oldest checkpoint
    visits: list[StopVisit] = field(default_factory=list)
    since_checkpoint: int = 0

    def stops_of(self, run: TrackedRun) -> StopsState:
        state = self.stops.get(run.id)
        if state is None:
            state = self.stops[run.id] = StopsState.of(run)
        return state


@dataclass(slots=True)
class TenantContext:
    tenant_id: int
    projection: LocalProjection
    tracker: Tracker
    geofences: GeofenceIndex | None


@dataclass(slots=True)
class EngineStats:
    fixes: int = 0
    late_fixes: int = 0  # evaluated again in order
    too_late_fixes: int = 0  # older than the re-evaluation window: not evaluated
    jumps: int = 0
    unknown_devices: int = 0


class RulesEngine:
    def __init__(self, settings: RulesSettings) -> None:
        self.settings = settings
        self.tenants: dict[int, TenantContext] = {}
        self.devices: dict[int, DeviceContext] = {}
        self.run_devices: dict[int, int] = {}  # route run id -> the device that drives it
        # route run id -> its crew, driver first; kept after a re-plan drops the run, so the
        # crew still hears that its alerts closed with it
        self.run_crews: dict[int, tuple[int, ...]] = {}
        self.stats = EngineStats()
        self.last_sweep = 0.0
        # (when the clock next has something to decide for a device, device id): a sweep
        # looks only at the devices whose time has come.
        self._deadlines: list[tuple[float, int]] = []

    # -- configuration -----------------------------------------------------------------------

    def set_tenant(
        self,
        tenant_id: int,
        projection: LocalProjection,
        geofences: GeofenceIndex | None = None,
    ) -> None:
        tracker = Tracker(self.settings, geofences)
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            self.tenants[tenant_id] = TenantContext(tenant_id, projection, tracker, geofences)
        else:  # geofences reloaded; the projection stays, runs are projected with it
            tenant.tracker, tenant.geofences = tracker, geofences
            for context in self.devices.values():
                if context.subject.tenant_id == tenant_id:
                    context.tenant = tenant

    def set_device(
        self,
        device_id: int,
        tenant_id: int,
        vehicle_id: int | None,
        label: str,
        runs: tuple[TrackedRun, ...] = (),
    ) -> None:
        """Add a device or replace its runs (a re-plan); its progress on a kept run stays."""
        tenant = self.tenants[tenant_id]
        runs = tuple(sorted(runs, key=lambda r: r.planned_start_s))
        for run in runs:
            self.run_devices[run.id] = device_id
            self.run_crews[run.id] = run.crew
        context = self.devices.get(device_id)
        if context is None:
            subject = Subject(tenant_id, device_id, vehicle_id, label)
            vehicle = VehicleState(device_id, tenant_id, vehicle_id, label, runs)
            self.devices[device_id] = DeviceContext(subject, tenant, vehicle)
            heapq.heappush(self._deadlines, (0.0, device_id))
            return
        context.vehicle.runs = runs
        current = context.vehicle.current
        if current is not None:
            replacement = next((r for r in runs if r.id == current.run.id), None)
            if replacement is None:
                context.vehicle.current = None  # its run was cancelled
            else:
                current.run = replacement

    # -- input ---------------------------------------------------------------------------------

    def on_fix(self, device_id: int, fix: FixInput) -> Outcome:
        context = self.devices.get(device_id)
        if context is None:
            self.stats.unknown_devices += 1
            return Outcome()
        self.stats.fixes += 1
        last = context.vehicle.t
        if last is not None and fix.t <= last:
            if fix.t == last:
                return Outcome()  # the same fix again (a resend after a restart)
            return self._late(context, fix)
        return self._accept(context, fix)

    def on_jump(self, device_id: int, fix: FixInput) -> Outcome:
        """A fix ingest filtered as a GPS jump: reported, and moves nothing."""
        context = self.devices.get(device_id)
        if context is None:
            return Outcome()
        self.stats.jumps += 1
        vehicle = context.vehicle
        jump_m = None
        if vehicle.t is not None:
            x, y = context.tenant.projection.to_xy(fix.lat, fix.lon)
            jump_m = ((x - vehicle.x) ** 2 + (y - vehicle.y) ** 2) ** 0.5
        return Outcome(fleet.gps_jump(fix.t, fix.lat, fix.lon, jump_m, context.subject))

    def on_bin_lift(self, device_id: int, lift: BinLift) -> Outcome:
        context = self.devices.get(device_id)
        if context is None:
            return Outcome()
        return self._accept(context, lift)

    def on_stop_confirmation(self, confirmation: StopConfirmation) -> Outcome:
        device_id = self.run_devices.get(confirmation.route_run_id)
        context = self.devices.get(device_id) if device_id is not None else None
        if context is None:
            return Outcome()
        return self._accept(context, confirmation)

    def replay(self, device_id: int, item: Item) -> Outcome:
        """A stored item of ``device_id`` (a stop confirmation: of the run it drives)."""
        if isinstance(item, FixInput):
            return self.on_fix(device_id, item)
        if isinstance(item, BinLift):
            return self.on_bin_lift(device_id, item)
        return self.on_stop_confirmation(item)

    def sweep_device(self, device_id: int, now: float) -> Outcome:
        """The clock's sweep for one device (a replay advances each device's own clock)."""
        context = self.devices.get(device_id)
        if context is None:
            return Outcome()
        return self._sweep_device(context, now)

    def sweep(self, now: float) -> Outcome:
        """What the clock decides: offline devices, closed time windows, overrun runs."""
        self.last_sweep = now
        out = Outcome()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, device_id = heapq.heappop(deadlines)
            context = self.devices.get(device_id)
            if context is None:
                continue
            out.extend(self._sweep_device(context, now))
            heapq.heappush(deadlines, (self._next_deadline(context, now), device_id))
        return out

    def _next_deadline(self, context: DeviceContext, now: float) -> float:
        """The earliest time the clock may decide something for this device: going
        offline, a time window closing, a run overrunning (or a recheck)."""
        settings = self.settings
        vehicle = context.vehicle
        soonest = now + RECHECK_S
        if context.fleet.offline_key is None and vehicle.t is not None:
            overdue = vehicle.t + settings.offline_after_s
            if overdue > now:  # past and not fired: off shift (the recheck looks again)
                soonest = min(soonest, overdue)
        for run in vehicle.runs:
            state = context.stops.get(run.id)
            if state is not None and state.closed:
                continue
            soonest = min(soonest, run.planned_end_s + settings.run_overrun_s)
            if state is None:
                if run.first_window_end_s is not None:
                    soonest = min(soonest, run.first_window_end_s + settings.sweep_grace_s)
            elif state.window_cursor < len(state.window_order):
                closes = run.stops[state.window_order[state.window_cursor]].window_end_s
                if closes is not None:
                    soonest = min(soonest, closes + settings.sweep_grace_s)
        return max(soonest, now + 0.001)

    # -- evaluation ------------------------------------------------------------------------------

    def _accept(self, context: DeviceContext, item: Item) -> Outcome:
        out = self._evaluate(context, item)
        self._remember(context, item, out)
        return out

    def _evaluate(self, context: DeviceContext, item: Item) -> Outcome:
        if isinstance(item, FixInput):
            return self._evaluate_fix(context, item)
        vehicle = context.vehicle
        if isinstance(item, BinLift):
            current = vehicle.current
            if current is None:
                return Outcome()
            if item.lat is None or item.lon is None:
                x, y, lat, lon = vehicle.x, vehicle.y, vehicle.lat, vehicle.lon
            else:
                x, y = context.tenant.projection.to_xy(item.lat, item.lon)
                lat, lon = item.lat, item.lon
            state = context.stops_of(current.run)
            return stops.bin_lift(state, item.t, x, y, lat, lon, context.subject)
        # A crew confirmation names its run: it counts even after the run ended (a stop
        # missed at the run's end is then served late).
        run = next((r for r in vehicle.runs if r.id == item.route_run_id), None)
        if run is None:
            return Outcome()
        position = None
        if item.lat is not None and item.lon is not None:
            x, y = context.tenant.projection.to_xy(item.lat, item.lon)
            position = (x, y, item.lat, item.lon)
        reach = max(2 * run.max_radius_m, 50.0)
        return stops.confirm(
            context.stops_of(run),
            item.stop_seq,
            item.t,
            item.staff_id,
            position,
            context.subject,
            reach,
        )

    def _evaluate_fix(self, context: DeviceContext, fix: FixInput) -> Outcome:
        settings = self.settings
        subject = context.subject
        tenant = context.tenant
        x, y = tenant.projection.to_xy(fix.lat, fix.lon)
        obs = Observation(
            fix.t,
            fix.lat,
            fix.lon,
            x,
            y,
            fix.accuracy_m if fix.accuracy_m is not None else DEFAULT_ACCURACY_M,
            fix.speed_kmh if fix.speed_kmh is not None else -1.0,
            fix.ignition,
        )
        out = Outcome(fleet.back_online(context.fleet, fix.t, subject))
        tenant.tracker.update(context.vehicle, obs)
        if obs.run is not None:
            run_stops = context.stops_of(obs.run.run)
            out.extend(stops.on_fix(run_stops, obs, settings, subject))
            out.signals.extend(wrong_route.check(context.wrong_route, obs, settings, subject))
        if obs.run_ended_now is not None:
            out.extend(self._end_run(context, obs.run_ended_now.run, fix.t, on_path=obs.on_path))
        out.signals.extend(fleet.speeding(context.fleet, obs, settings, subject))
        out.signals.extend(fleet.idle(context.fleet, obs, settings, subject))
        out.signals.extend(fleet.geofences(context.fleet, obs, settings, subject, tenant.geofences))
        return out

    def _end_run(
        self, context: DeviceContext, run: TrackedRun, t: float, *, on_path: bool
    ) -> Outcome:
        out = stops.close_run(context.stops_of(run), t, context.subject, self.settings)
        excursion = context.wrong_route
        if excursion.open_key is not None and excursion.run_id == run.id and on_path:
            out.signals.append(
                signal(
                    Change.RESOLVED,
                    excursion.open_key,
                    wrong_route.KIND,
                    Severity.WARNING,
                    context.subject,
                    t,
                    f"Xe {context.subject.label} đã về cuối tuyến {run.name}",
                    {},
                    route_run_id=run.id,
                    resolution=Resolution.CLEARED,
                )
            )
            excursion.open_key = excursion.off_since = excursion.back_since = None
        return out

    def _sweep_device(self, context: DeviceContext, now: float) -> Outcome:
        settings = self.settings
        vehicle = context.vehicle
        out = Outcome()
        current = vehicle.current
        if current is not None and now > current.run.planned_end_s + settings.run_overrun_s:
            end_run(vehicle)  # overrun: close_run below misses what it did not serve
        for run in vehicle.runs:
            overrun_at = run.planned_end_s + settings.run_overrun_s
            state = context.stops.get(run.id)
            if state is None:
                window_closed = (
                    run.first_window_end_s is not None
                    and run.first_window_end_s + settings.sweep_grace_s <= now
                )
                if not window_closed and now <= overrun_at:
                    continue
                state = context.stops_of(run)
            if state.closed:
                continue
            out.extend(stops.sweep(state, now, settings, context.subject))
            if now > overrun_at:
                vehicle.finished = vehicle.finished | {run.id}
                out.extend(self._end_run(context, run, overrun_at, on_path=False))
        on_shift = (current is not None and current.started) or vehicle.ignition is True
        out.signals.extend(
            fleet.offline_sweep(context.fleet, vehicle.t, on_shift, now, settings, context.subject)
        )
        context.emitted.extend(out.signals)
        context.visits.extend(out.visits)
        return out

    # -- re-evaluation of late input -----------------------------------------------------------

    def _remember(self, context: DeviceContext, item: Item, out: Outcome) -> None:
        window_s = self.settings.rewind_window_s
        if window_s <= 0:
            return
        if context.since_checkpoint == 0:
            # The first one is the fresh state, before anything: a fix older than the first
            # delivered can still be put in its place.
            self._checkpoint(context, item.t if context.checkpoints else -math.inf)
        context.history.append(item)
        context.emitted.extend(out.signals)
        context.visits.extend(out.visits)
        context.since_checkpoint = (context.since_checkpoint + 1) % CHECKPOINT_EVERY
        # Forget what is older than the window, keeping one checkpoint before it.
        horizon = item.t - window_s
        while len(context.checkpoints) > 1 and context.checkpoints[1].t <= horizon:
            dropped = context.checkpoints.popleft()
            cut = context.checkpoints[0].emitted - dropped.emitted
            del context.emitted[:cut]
            for checkpoint in context.checkpoints:
                checkpoint.emitted -= cut
        oldest = context.checkpoints[0].t if context.checkpoints else item.t
        while context.history and context.history[0].t < oldest:
            context.history.popleft()
        if len(context.visits) > 4 * CHECKPOINT_EVERY:
            del context.visits[: len(context.visits) // 2]

    def _checkpoint(self, context: DeviceContext, before_t: float) -> None:
        """The state just before the item at ``before_t`` is evaluated."""
        context.checkpoints.append(
            _Checkpoint(
                before_t,
                context.vehicle.clone(),
                context.wrong_route.clone(),
                context.fleet.clone(),
                {run_id: state.clone() for run_id, state in context.stops.items()},
                len(context.emitted),
            )
        )

    def _late(self, context: DeviceContext, fix: FixInput) -> Outcome:
        checkpoint = None
        for candidate in reversed(context.checkpoints):
            if candidate.t <= fix.t:
                checkpoint = candidate
                break
        if any(item.t == fix.t for item in context.history if isinstance(item, FixInput)):
            return Outcome()  # the same fix again
        newest = context.vehicle.t
        if newest is not None and fix.t < newest - self.settings.rewind_window_s:
            self.stats.too_late_fixes += 1
            return Outcome()
        if checkpoint is None:
            self.stats.too_late_fixes += 1
            return Outcome()
        self.stats.late_fixes += 1
        previous = context.emitted[checkpoint.emitted :]
        previous_visits = {_visit_key(v) for v in context.visits}
        del context.emitted[checkpoint.emitted :]
        replay = [item for item in context.history if item.t >= checkpoint.t]
        keep = [item for item in context.history if item.t < checkpoint.t]
        replay.sort(key=_time_of)  # events may have come in late, unordered
        bisect.insort(replay, fix, key=_time_of)
        # Restore (copies: the checkpoint may serve again) and drop the newer checkpoints.
        context.vehicle = checkpoint.vehicle.clone()
        context.wrong_route = checkpoint.wrong_route.clone()
        context.fleet = checkpoint.fleet.clone()
        context.stops = {run_id: state.clone() for run_id, state in checkpoint.stops.items()}
        while context.checkpoints and context.checkpoints[-1] is not checkpoint:
            context.checkpoints.pop()
        context.checkpoints.pop()
        context.history = deque(keep)
        context.since_checkpoint = 0
        replayed = Outcome()
        for item in replay:
            item_out = self._evaluate(context, item)
            self._remember(context, item, item_out)
            replayed.extend(item_out)
        replayed.extend(self._sweep_device(context, max(self.last_sweep, replay[-1].t)))
        before = {(s.key, s.change) for s in previous}
        out = Outcome()
        out.signals = [s for s in replayed.signals if (s.key, s.change) not in before]
        # What was opened before and the new order does not say at all: the same alert with
        # its start moved (its key holds the start), or one that never held.
        said = {s.key for s in replayed.signals}
        gone = [s for s in previous if s.change is Change.OPENED and s.key not in said]
        out.signals = _renamed(out.signals, gone, {s.key for s in previous})
        renamed = {s.replaces for s in out.signals if s.replaces is not None}
        # An alert already resolved stays as it was (the store ignores a second end).
        resolved_before = {s.key for s in previous if s.change is Change.RESOLVED}
        for old in gone:
            if old.key not in renamed and old.key not in resolved_before:
                out.signals.append(_withdrawn(old, fix.t))
        out.visits = [v for v in replayed.visits if _visit_key(v) not in previous_visits]
        return out

    # -- what others ask ------------------------------------------------------------------------

    def crew_of(self, route_run_id: int | None) -> tuple[int, ...]:
        if route_run_id is None:
            return ()
        return self.run_crews.get(route_run_id, ())


def _renamed(
    signals: list[AlertSignal], gone: list[AlertSignal], keys_before: set[str]
) -> list[AlertSignal]:
    """``signals`` with each new opening that continues a ``gone`` one (the same kind,
    device, run and stop: the key less its time) marked as replacing it, in time order."""
    waiting: dict[str, deque[str]] = {}
    for old in sorted(gone, key=lambda s: s.at):
        waiting.setdefault(key_stem(old.key), deque()).append(old.key)
    if not waiting:
        return signals
    marked = []
    for new in signals:
        olds = waiting.get(key_stem(new.key))
        if new.change is Change.OPENED and new.key not in keys_before and olds:
            new = replace(new, replaces=olds.popleft())
        marked.append(new)
    return marked


def _time_of(item: Item) -> float:
    return item.t


def _visit_key(visit: StopVisit) -> tuple[object, ...]:
    return (visit.route_run_id, visit.stop_seq, visit.arrival_at, visit.status, visit.departure_at)


def _withdrawn(old: AlertSignal, t: float) -> AlertSignal:
    return replace(
        old,
        change=Change.RESOLVED,
        at=max(old.at, moment(t)),
        message=old.message + " (rút lại: dữ liệu đến muộn cho thấy không vi phạm)",
        evidence={"withdrawn_by_fix_at": moment(t).isoformat()},
        resolution=Resolution.WITHDRAWN,
    )
