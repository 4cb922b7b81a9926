"""The rules engine in a running process.

Ingest hands every fix and device event to ``consume`` in fix-time order per device; the
engine's output (alert signals, stop visits) waits in a bounded queue for the writer, which
stores it (``alerts``, ``stop_visits``), announces it to other processes (LISTEN/NOTIFY, in
the same transaction) and sends it to the crew's phones. The writer never holds up ingest:
the alert path does not wait for the positions batch, and positions never wait for alerts.

A clock sweeps every second (offline devices, closed time windows, overrun runs); runs,
devices and geofences are reloaded on a timer (a new plan, a new device).

Recovery: at start the engine replays the stored fixes and events of today's runs. Alert
keys and visit keys are stable, so what the replay produces and was already stored changes
nothing, and what was lost in a crash is stored now: no duplicate alert, no lost one.
Ingest does not wait for it: what ingest hands over meanwhile is held, in order, and
evaluated after the replay (a fix the replay read too is the same fix again: ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg import AsyncConnection

import alerts
import fleet
import planning
import storage
from alerts import AlertEvent, AlertSignal, StopVisit
from geo import LocalProjection
from ingest import DeviceEvent, DeviceFix, DeviceItem, EventKind
from rules.engine import BinLift, FixInput, Item, RulesEngine, StopConfirmation
from rules.stops import Outcome
from sanitrack.clock import Clock, SystemClock
from sanitrack.settings import RulesSettings
from storage import Pool
from tracker import GeofenceIndex, TrackedRun, track_run

log = logging.getLogger(__name__)

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")  # route runs' local dates
_RETRY_MIN_S, _RETRY_MAX_S = 0.2, 10.0
RECOVERY_WRITE_EVERY = 2_000  # outputs: a recovery writes as it goes, holding few at a time


class RulesMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.items = Counter("sanitrack_rules_items", "Fixes and events evaluated", registry=r)
        self.signals = Counter(
            "sanitrack_rules_signals", "Alert changes emitted, by kind", ["kind"], registry=r
        )
        self.visits = Counter("sanitrack_rules_visits", "Stop visits recorded", registry=r)
        self.pending = Gauge(
            "sanitrack_rules_pending", "Signals and visits waiting for the writer", registry=r
        )
        self.dropped = Counter(
            "sanitrack_rules_dropped",
            "Outputs dropped (the writer queue was full) and items not held while recovering"
            " (too many)",
            registry=r,
        )
        self.write_seconds = Histogram(
            "sanitrack_rules_write_seconds",
            "From an output's emission to its commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.unknown_devices = Gauge(
            "sanitrack_rules_unknown_devices", "Items from devices not loaded yet", registry=r
        )


@dataclass(slots=True)
class _Pending:
    signals: list[AlertSignal] = field(default_factory=list)
    visits: list[StopVisit] = field(default_factory=list)
    since: float = 0.0  # monotonic time of the oldest item

    def __len__(self) -> int:
        return len(self.signals) + len(self.visits)


@dataclass(frozen=True, slots=True)
class _DeviceInfo:
    tenant_id: int
    tenant_slug: str
    vehicle_id: int | None
    staff_id: int | None


class RulesService:
    def __init__(
        self,
        settings: RulesSettings,
        pool: Pool,
        *,
        staff: alerts.StaffAlertPublisher | None = None,
        clock: Clock | None = None,
        metrics: RulesMetrics | None = None,
        max_pending: int = 100_000,
        max_held: int = 1_000_000,
    ) -> None:
        self.settings = settings
        self.engine = RulesEngine(settings)
        self._pool = pool
        self._staff = staff
        self._clock = clock or SystemClock()
        self.metrics = metrics or RulesMetrics()
        self._max_pending = max_pending
        self._held: deque[DeviceItem] = deque()  # from ingest while recovering
        self._max_held = max_held
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._devices: dict[int, _DeviceInfo] = {}
        self._tenant_slugs: dict[int, str] = {}
        self._fingerprints: dict[int, tuple[str, str, dt.date]] = {}
        # tenant -> route run id -> the run, projected once (runs are never edited)
        self._tracked: dict[int, dict[int, TrackedRun]] = {}
        self.ready = asyncio.Event()

    def send_to_staff(self, staff: alerts.StaffAlertPublisher) -> None:
        """Where stored alert changes go for the crew's phones (it needs ``recipients``)."""
        self._staff = staff

    # -- input (called by ingest, in order per device) ----------------------------------------

    def consume(self, item: DeviceItem) -> None:
        self.metrics.items.inc()
        if not self.ready.is_set():
            # Recovering: ingest stores positions and feeds the live map meanwhile; the
            # engine takes these once the stored day is replayed (what the replay read too
            # is the same fix again: ignored).
            if len(self._held) >= self._max_held:
                self.metrics.dropped.inc()
                return
            self._held.append(item)
            return
        self._emit(self._evaluate(item))

    def _evaluate(self, item: DeviceItem) -> Outcome:
        engine = self.engine
        if isinstance(item, DeviceFix):
            fix = item.fix
            entry = FixInput(
                fix.time.timestamp(),
                fix.lat,
                fix.lon,
                fix.speed_kmh,
                fix.accuracy_m,
                fix.ignition,
            )
            if item.jump:
                return engine.on_jump(item.device_id, entry)
            return engine.on_fix(item.device_id, entry)
        return self._event(item)

    def _event(self, event: DeviceEvent) -> Outcome:
        if event.kind is EventKind.BIN_LIFT:
            return self.engine.on_bin_lift(
                event.device_id, BinLift(event.time.timestamp(), event.lat, event.lon)
            )
        if event.kind is EventKind.STOP_CONFIRM and event.route_run_id and event.stop_seq:
            info = self._devices.get(event.device_id)
            return self.engine.on_stop_confirmation(
                StopConfirmation(
                    event.time.timestamp(),
                    event.route_run_id,
                    event.stop_seq,
                    info.staff_id if info else None,
                    event.lat,
                    event.lon,
                )
            )
        return Outcome()  # ignition, panic, incident: stored by ingest, no rule yet

    def _emit(self, out: Outcome) -> None:
        if not out.signals and not out.visits:
            return
        pending = self._pending
        if len(pending) + len(out.signals) + len(out.visits) > self._max_pending:
            # Only when the database has been away for long: say so, never block ingest.
            self.metrics.dropped.inc(len(out.signals) + len(out.visits))
            log.error("rules output dropped: %d waiting for the database", len(pending))
            return
        if not pending:
            pending.since = time.monotonic()
        pending.signals.extend(out.signals)
        pending.visits.extend(out.visits)
        for signal in out.signals:
            self.metrics.signals.labels(kind=str(signal.kind)).inc()
        self.metrics.pending.set(len(pending))
        self._wake.set()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load what the engine watches and replay today's stored data, then what ingest
        handed over meanwhile (ingest need not wait: a late-day restart of a large fleet
        replays for minutes, longer than a broker keeps a session's backlog)."""
        await self.load()
        replayed = await self.recover()
        held = 0
        while self._held:  # what ingest hands over while these are evaluated is held too
            batch = [self._held.popleft() for _ in range(min(len(self._held), 5_000))]
            for item in batch:
                self._emit(self._evaluate(item))
            held += len(batch)
            await asyncio.sleep(0)
        self.ready.set()
        log.info(
            "rules engine ready: %d devices, %d runs, %d stored items replayed, %d held"
            " during recovery",
            len(self.engine.devices),
            sum(len(context.vehicle.runs) for context in self.engine.devices.values()),
            replayed,
            held,
        )

    async def run(self) -> None:
        """The writer, the clock sweep and the reload, until cancelled."""
        if not self.ready.is_set():
            await self.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._write_loop(), name="rules-writer")
                tasks.create_task(self._sweep_loop(), name="rules-sweep")
                tasks.create_task(self._reload_loop(), name="rules-reload")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._write_pending()), 10)

    async def load(self) -> None:
        """Tenants, geofences, devices and the route runs of yesterday, today and tomorrow.
        A tenant whose runs, devices and geofences have not changed since the last load is
        skipped; the event loop gets a turn every few hundred devices."""
        today = self._clock.now().astimezone(VIETNAM).date()
        days = [today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)]
        async with self._pool.connection() as conn:
            for tenant in await fleet.list_tenants(conn):
                fingerprint = (
                    await planning.runs_fingerprint(conn, tenant.id, days),
                    await fleet.fleet_fingerprint(conn, tenant.id),
                    today,
                )
                if self._fingerprints.get(tenant.id) == fingerprint:
                    continue
                await self._load_tenant(conn, tenant, days)
                self._fingerprints[tenant.id] = fingerprint

    async def _load_tenant(
        self, conn: AsyncConnection[Any], tenant: fleet.Tenant, days: list[dt.date]
    ) -> None:
        runs = [
            run
            for day in days
            for run in await planning.list_route_runs(conn, tenant.id, day)
            if run.status in (planning.RunStatus.PLANNED, planning.RunStatus.ACTIVE)
        ]
        geofences = await fleet.list_geofences(conn, tenant.id)
        devices = await fleet.list_devices(conn, tenant.id)
        if not devices:
            return
        projection = self._projection(tenant.id, runs, geofences)
        self.engine.set_tenant(tenant.id, projection, GeofenceIndex(geofences, projection))
        self._tenant_slugs[tenant.id] = tenant.slug
        vehicles = await fleet.vehicle_codes(conn, tenant.id)
        people = await fleet.staff_names(conn, tenant.id)
        projection = self.engine.tenants[tenant.id].projection
        by_vehicle: dict[int, list[TrackedRun]] = {}
        known = self._tracked.get(tenant.id, {})
        current: dict[int, TrackedRun] = {}
        for run in runs:
            tracked = known.get(run.id) or track_run(run, projection)
            current[run.id] = tracked
            by_vehicle.setdefault(run.vehicle_id, []).append(tracked)
        self._tracked[tenant.id] = current
        for n, device in enumerate(devices, start=1):
            if n % 500 == 0:
                await asyncio.sleep(0)
            if not device.active:
                continue
            label = (
                vehicles.get(device.vehicle_id, device.slug)
                if device.vehicle_id is not None
                else people.get(device.staff_id or -1, device.slug)
            )
            vehicle_runs = tuple(by_vehicle.get(device.vehicle_id or -1, ()))
            self.engine.set_device(device.id, tenant.id, device.vehicle_id, label, vehicle_runs)
            self._devices[device.id] = _DeviceInfo(
                tenant.id, tenant.slug, device.vehicle_id, device.staff_id
            )

    def _projection(
        self, tenant_id: int, runs: Sequence[planning.RouteRun], geofences: Sequence[fleet.Geofence]
    ) -> LocalProjection:
        """One projection per tenant, kept for the process's life: around its first geofence
        or run (a city is small enough for one equirectangular projection)."""
        known = self.engine.tenants.get(tenant_id)
        if known is not None:
            return known.projection
        if geofences:
            lat, lon = geofences[0].ring[0]
        elif runs:
            lon, lat = runs[0].expected_path[0]
        else:
            lat, lon = 21.0, 105.8  # no geometry yet: Hà Nội; fixes measure fine from here
        return LocalProjection(lat, lon)

    async def recover(self, *, batch_rows: int = 10_000) -> int:
        """Replay the stored fixes and events of every device with a run, from the run's
        start, then sweep to now. Returns how many stored items were replayed.

        Fixes are read one device at a time through a server-side cursor, and what the
        replay produces is written every few thousand outputs: memory and the writer's
        queue stay bounded however large the fleet and however late in the day the
        restart. Bin lifts are read with each device's fixes; crew confirmations (a few a
        run) at once."""
        engine = self.engine
        now = self._clock.now()
        starts: dict[int, float] = {}
        for device_id, context in engine.devices.items():
            for run in context.vehicle.runs:
                begin = run.planned_start_s - self.settings.run_early_s
                starts[device_id] = min(starts.get(device_id, begin), begin)
        if not starts:
            return 0
        horizon = now.timestamp() - 86_400
        since = dt.datetime.fromtimestamp(max(min(starts.values()), horizon), dt.UTC)
        # Crew confirmations (a few a run, sent from phones) by the truck whose run they name;
        # bin lifts (one a bin) come with the truck's fixes.
        async with self._pool.connection() as conn:
            events = await storage.events_since(
                conn, list(self._devices), since, [EventKind.STOP_CONFIRM.value]
            )
        confirmed: dict[int, list[tuple[float, int, Item]]] = {}
        for row in events:
            item = self._stored_event(row)
            device_id = row.device_id
            if isinstance(item, StopConfirmation):
                device_id = engine.run_devices.get(item.route_run_id, -1)
            if item is not None and device_id in starts:
                confirmed.setdefault(device_id, []).append((item.t, 0, item))
        count = devices = 0
        reported = time.monotonic()
        async with self._pool.connection() as conn:
            stored_fixes = storage.fixes_by_device(conn, list(starts), since, batch_rows=batch_rows)
            async for device_id, stored in stored_fixes:
                begin = starts[device_id]
                stream = confirmed.pop(device_id, [])
                for fix in stored:
                    t = fix.time.timestamp()
                    if fix.bin_lift:
                        stream.append((t, 0, BinLift(t, fix.lat, fix.lon)))
                    elif t >= begin and fix.lat is not None and fix.lon is not None:
                        entry = FixInput(
                            t, fix.lat, fix.lon, fix.speed_kmh, fix.accuracy_m, fix.ignition
                        )
                        stream.append((t, 1, entry))
                count += await self._replay(device_id, stream)
                devices += 1
                if time.monotonic() - reported > 5:
                    reported = time.monotonic()
                    log.info(
                        "rules recovery: %d of %d devices, %d items replayed",
                        devices,
                        len(starts),
                        count,
                    )
        for device_id, stream in confirmed.items():  # confirmations and no fix
            count += await self._replay(device_id, stream)
        self._emit(engine.sweep(now.timestamp()))
        await self._write_pending()
        return count

    async def _replay(self, device_id: int, stream: list[tuple[float, int, Item]]) -> int:
        """One device's stored items, in time order (an event before a fix at the same time);
        its output is handed to the writer, after a write if the queue would hold more than
        a few thousand."""
        stream.sort(key=lambda entry: (entry[0], entry[1]))
        out = Outcome()
        for t, _order, item in stream:
            out.extend(self.engine.sweep_device(device_id, t))
            out.extend(self.engine.replay(device_id, item))
        bound = min(self._max_pending, RECOVERY_WRITE_EVERY)
        if len(self._pending) + len(out.signals) + len(out.visits) > bound:
            await self._write_pending()
        self._emit(out)
        return len(stream)

    def _stored_event(self, row: storage.DeviceEventRow) -> Item | None:
        t = row.time.timestamp()
        if row.kind == EventKind.BIN_LIFT:
            return BinLift(t, row.lat, row.lon)
        if row.kind == EventKind.STOP_CONFIRM:
            run_id, seq = row.details.get("route_run_id"), row.details.get("stop_seq")
            if isinstance(run_id, int) and isinstance(seq, int):
                info = self._devices.get(row.device_id)
                staff_id = info.staff_id if info else None
                return StopConfirmation(t, run_id, seq, staff_id, row.lat, row.lon)
        return None

    # -- background loops ------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            self._emit(self.engine.sweep(self._clock.now().timestamp()))

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                await self.load()
            except psycopg.Error as exc:
                log.warning("rules: reloading runs failed, keeping the old ones: %s", exc)
            self.metrics.unknown_devices.set(self.engine.stats.unknown_devices)

    async def _write_loop(self) -> None:
        """Write what is pending, at most once per ``write_interval_s``: a lone alert goes at
        once, a burst (a depot's trucks leaving at dawn) in a few larger transactions, whose
        fixed cost would otherwise take the core the ingest and the engine need."""
        last_s = -math.inf
        while True:
            await self._wake.wait()
            wait_s = last_s + self.settings.write_interval_s - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)  # what comes meanwhile joins this write
            self._wake.clear()
            last_s = time.monotonic()
            await self._write_pending()

    async def _write_pending(self) -> None:
        delay_s = _RETRY_MIN_S
        while self._pending:
            batch, self._pending = self._pending, _Pending()
            self.metrics.pending.set(0)
            try:
                events = await self._store(batch)
            except psycopg.Error as exc:
                log.warning("rules: storing alerts failed, retrying in %.1f s: %s", delay_s, exc)
                self._requeue(batch)
                await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))
                delay_s = min(delay_s * 2, _RETRY_MAX_S)
                continue
            self.metrics.write_seconds.observe(time.monotonic() - batch.since)
            self.metrics.visits.inc(len(batch.visits))
            if self._staff is not None:
                for event in events:
                    self._staff.publish(event)

    def _requeue(self, batch: _Pending) -> None:
        newer = self._pending
        batch.signals.extend(newer.signals)
        batch.visits.extend(newer.visits)
        self._pending = batch
        self.metrics.pending.set(len(batch))

    async def _store(self, batch: _Pending) -> list[AlertEvent]:
        async with self._pool.connection() as conn:
            try:
                async with conn.transaction():
                    events = await alerts.apply_signals(conn, batch.signals)
                    await alerts.record_visits(conn, batch.visits)
                    await alerts.notify(conn, events)
                    await alerts.notify_visits(conn, batch.visits)
                return events
            except alerts.AlertsError as exc:
                log.error("rules: a batch names something that is gone (%s); one by one", exc)
        return await self._store_one_by_one(batch)

    async def _store_one_by_one(self, batch: _Pending) -> list[AlertEvent]:
        stored: list[AlertEvent] = []
        async with self._pool.connection() as conn:
            for signal in batch.signals:
                try:
                    async with conn.transaction():
                        events = await alerts.apply_signals(conn, [signal])
                        await alerts.notify(conn, events)
                    stored.extend(events)
                except alerts.AlertsError as exc:
                    log.error("rules: alert %s not stored: %s", signal.key, exc)
            for visit in batch.visits:
                try:
                    async with conn.transaction():
                        await alerts.record_visits(conn, [visit])
                        await alerts.notify_visits(conn, [visit])
                except alerts.AlertsError as exc:
                    log.error("rules: visit of run %s not stored: %s", visit.route_run_id, exc)
        return stored

    # -- what the staff publisher asks ----------------------------------------------------------

    def recipients(self, alert: alerts.Alert) -> list[tuple[str, int]]:
        """The driver and crew of the alert's run (or of the vehicle's current run)."""
        run_id = alert.route_run_id
        if run_id is None and alert.device_id is not None:
            context = self.engine.devices.get(alert.device_id)
            current = context.vehicle.current if context else None
            run_id = current.run.id if current else None
        slug = self._tenant_slugs.get(alert.tenant_id)
        if slug is None:
            return []
        return [(slug, staff_id) for staff_id in self.engine.crew_of(run_id)]
