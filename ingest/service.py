"""The ingest service: MQTT -> decode -> validate -> filter -> batch writer, and in
parallel per-device ordering -> the in-order consumers (tracker, rules).

Positions (``pos``, OwnTracks) and device events (``evt``) take the same path;
consumers get a device's fixes and events interleaved in time order, and the
fixes the jump filter rejected too (``jump=True``, for the gps_jump alert).

Delivery guarantee: a message is acknowledged to the broker only after every
fix or event it carried is committed to ``positions``, ``device_events`` or
``dead_letters``. The session is persistent, so a crash or restart loses
nothing the broker holds: it sends unacknowledged messages again and
duplicates are stored once.

Back-pressure: at most ``max_pending_messages`` messages are unacknowledged.
With MQTT v5 the broker is told so (Receive Maximum); with any broker,
reading stops at the bound until the database catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiomqtt
import orjson
import psycopg

from ingest.acks import AckTracker, Delivery
from ingest.decode import Limits, Reason, Rejection, decode
from ingest.directory import DeviceDirectory, DeviceRef
from ingest.events import decode_event
from ingest.filters import EventFilter, FixFilter, JumpRules, Verdict
from ingest.fix import DeviceFix, DeviceItem, Fix
from ingest.metrics import IngestMetrics
from ingest.mqtt import MqttEndpoint, ReadPause, ack_function, messages, session_client
from ingest.ordering import ReorderBuffer
from ingest.topics import SUBSCRIPTIONS, TopicKind, route
from ingest.writer import BatchWriter, event_row, position_row
from sanitrack.clock import Clock, SystemClock
from sanitrack.settings import Settings
from storage import DeadLetter, Pool, maintain

log = logging.getLogger(__name__)

# Called with each fix and event of a device in time order; must not block.
ItemConsumer = Callable[[DeviceItem], None]
FixConsumer = ItemConsumer  # the name before events joined the stream
_RECONNECT_MIN_S = 0.5
_RECONNECT_MAX_S = 30.0
_RELEASE_TICK_S = 0.05
_ACCEPTED = frozenset((TopicKind.POSITIONS, TopicKind.OWNTRACKS, TopicKind.EVENT))


@dataclass(frozen=True, slots=True)
class IngestStatus:
    broker_connected: bool
    pending_messages: int
    buffered_rows: int
    last_write_ok: bool


class IngestService:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        endpoint: MqttEndpoint,
        *,
        clock: Clock | None = None,
        metrics: IngestMetrics | None = None,
        consumers: Sequence[ItemConsumer] = (),
    ) -> None:
        self._settings = settings
        self._ingest = settings.ingest
        self._pool = pool
        self._endpoint = endpoint
        self._clock = clock or SystemClock()
        self.metrics = metrics or IngestMetrics()
        self._consumers = list(consumers)
        self._limits = Limits(
            max_payload_bytes=self._ingest.max_payload_bytes,
            max_batch_fixes=self._ingest.max_batch_fixes,
            max_future_s=self._ingest.max_future_s,
            max_age_s=settings.positions.retention_days * 86_400,
            max_speed_kmh=self._ingest.max_speed_kmh,
        )
        self._filter = FixFilter(
            JumpRules(
                max_implied_speed_kmh=self._ingest.max_implied_speed_kmh,
                min_distance_m=self._ingest.jump_min_distance_m,
                confirm_fixes=self._ingest.jump_confirm_fixes,
            )
        )
        self._event_filter = EventFilter()
        self._reorder = ReorderBuffer(self._ingest.reorder_window_ms / 1000)
        self._direct = self._ingest.reorder_window_ms == 0
        self._directory = DeviceDirectory(pool, self._clock)
        self._acks = AckTracker(lambda mid, qos: None)
        self._writer = BatchWriter(
            pool, self._acks, self._ingest, settings.positions, self.metrics, self._clock
        )
        self._below_bound = asyncio.Event()
        self._below_bound.set()
        self._connected = False
        self.subscribed = asyncio.Event()

    @property
    def directory(self) -> DeviceDirectory:
        return self._directory

    def status(self) -> IngestStatus:
        return IngestStatus(
            broker_connected=self._connected,
            pending_messages=len(self._acks),
            buffered_rows=len(self._writer),
            last_write_ok=self._writer.last_error is None,
        )

    async def run(self) -> None:
        """Run until cancelled; on cancellation, store what was received, then stop."""
        async with self._pool.connection() as conn:
            await maintain(conn, self._settings.positions, self._clock.now())
        known = await self._directory.load_all()
        log.info("ingest starting: %d devices known", known)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._writer.run(), name="ingest-writer")
                tasks.create_task(self._release_loop(), name="ingest-reorder")
                tasks.create_task(self._maintenance_loop(), name="ingest-partitions")
                tasks.create_task(self._connection_loop(), name="ingest-mqtt")
        finally:
            await asyncio.shield(self._shutdown())

    async def _shutdown(self) -> None:
        try:
            await asyncio.wait_for(self._writer.flush_all(), timeout=10)
        except (TimeoutError, Exception) as exc:
            log.warning("ingest stopped with unstored rows (the broker will resend): %s", exc)
        for item in self._reorder.drain():
            self._deliver(item)

    async def _connection_loop(self) -> None:
        delay_s = _RECONNECT_MIN_S
        while True:
            client = session_client(
                self._endpoint,
                self._ingest.client_id,
                self._ingest.max_pending_messages,
                self._ingest.session_expiry_s,
            )
            try:
                async with client:
                    self._acks.new_connection(ack_function(client))
                    self._set_connected(True)
                    await client.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])
                    self.subscribed.set()
                    log.info("ingest subscribed to %s", ", ".join(SUBSCRIPTIONS))
                    delay_s = _RECONNECT_MIN_S
                    try:
                        await self._read(client)
                    except asyncio.CancelledError:
                        # Store what was received while still connected, so the acks reach
                        # the broker before DISCONNECT and nothing is sent twice.
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(asyncio.shield(self._writer.flush_all()), 10)
                        raise
            except aiomqtt.MqttError as exc:
                log.warning("MQTT connection lost (%s); reconnecting in %.1f s", exc, delay_s)
            finally:
                self._set_connected(False)
                self.subscribed.clear()
            await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))
            delay_s = min(delay_s * 2, _RECONNECT_MAX_S)

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self.metrics.broker_connected.set(1 if connected else 0)

    async def _read(self, client: aiomqtt.Client) -> None:
        pause = ReadPause(client)
        bound = self._ingest.max_pending_messages
        try:
            async for message in messages(client):
                await self.handle(str(message.topic), message.payload, message.mid, message.qos)
                if len(self._acks) >= bound:
                    self._below_bound.clear()
                    self._writer.on_stored(self._check_bound)
                    pause.pause()
                    self.metrics.reading_paused.set(1)
                    log.warning("%d messages wait for the database: reading paused", bound)
                    await self._below_bound.wait()
                    pause.resume()
                    self.metrics.reading_paused.set(0)
        finally:
            # Whatever ends the loop (cancellation, a lost connection), paho must read the
            # socket again: aiomqtt's disconnect waits for paho to see the socket close.
            pause.resume()
            self.metrics.reading_paused.set(0)

    def _check_bound(self) -> None:
        if len(self._acks) <= self._ingest.max_pending_messages * 0.8:
            self._below_bound.set()

    async def handle(self, topic: str, payload: object, mid: int, qos: int) -> None:
        """Process one message; it is acknowledged once all it produced is stored."""
        self.metrics.messages_received.inc()
        delivery = self._acks.begin(mid, qos)
        received_at = self._clock.now()
        if isinstance(payload, bytes | bytearray | memoryview):
            raw = bytes(payload)
        else:  # aiomqtt types payloads loosely; paho delivers bytes
            raw = str(payload).encode()
        target = route(topic)
        if target is None or target.kind not in _ACCEPTED:
            self._reject(
                delivery,
                topic,
                raw,
                Reason.UNKNOWN_TOPIC,
                "not a position or event topic",
                received_at,
            )
        else:
            device = self._directory.cached(target.tenant, target.device)
            if device is False:
                device = await self._resolve(target.tenant, target.device)
            if not isinstance(device, DeviceRef):
                self._reject(
                    delivery,
                    topic,
                    raw,
                    Reason.UNKNOWN_DEVICE,
                    f"no device {target.device!r} in tenant {target.tenant!r}",
                    received_at,
                )
            elif not device.active:
                self._reject(
                    delivery,
                    topic,
                    raw,
                    Reason.INACTIVE_DEVICE,
                    "the device is deactivated",
                    received_at,
                    device,
                )
            elif target.kind is TopicKind.EVENT:
                self._accept_event(delivery, topic, raw, device, received_at)
            else:
                self._accept(delivery, topic, raw, target.kind, device, received_at)
        self._acks.seal(delivery)
        self.metrics.pending_messages.set(len(self._acks))
        self.metrics.buffered_rows.set(len(self._writer))

    async def _resolve(self, tenant: str, device: str) -> DeviceRef | None:
        """Look a device up, waiting for the database rather than guessing (back-pressure)."""
        delay_s = self._ingest.retry_initial_ms / 1000
        while True:
            try:
                return await self._directory.resolve(tenant, device)
            except psycopg.Error as exc:
                log.warning("device lookup failed, retrying in %.1f s: %s", delay_s, exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self._ingest.retry_max_ms / 1000)

    def _accept(
        self,
        delivery: Delivery,
        topic: str,
        raw: bytes,
        kind: TopicKind,
        device: DeviceRef,
        received_at: dt.datetime,
    ) -> None:
        decoded = decode(raw, kind, self._limits, received_at)
        for rejection in decoded.rejections:
            self._reject(
                delivery,
                topic,
                rejection.payload,
                rejection.reason,
                rejection.detail,
                received_at,
                device,
            )
        accepted = 0
        # In time order within the message (a store-and-forward batch may come unsorted).
        for fix in sorted(decoded.fixes, key=_fix_time):
            verdict = self._filter.check(device.device_id, fix)
            if verdict is Verdict.ACCEPT:
                accepted += 1
                self._writer.add_position(
                    position_row(device.device_id, device.tenant_id, fix, received_at), delivery
                )
                if self._consumers:  # ordering costs ~15 % of CPU; only for a consumer
                    self._push(DeviceFix(device.device_id, device.tenant_id, fix, received_at))
            elif verdict is Verdict.DUPLICATE:
                self.metrics.duplicates.inc()
            else:
                reason = Reason.JUMP if verdict is Verdict.JUMP else Reason.DUPLICATE_CONFLICT
                self._reject(
                    delivery,
                    topic,
                    _fix_json(fix),
                    reason,
                    _explain(verdict, fix),
                    received_at,
                    device,
                )
                if verdict is Verdict.JUMP and self._consumers:
                    self._push(
                        DeviceFix(device.device_id, device.tenant_id, fix, received_at, jump=True)
                    )
        if accepted:
            self.metrics.fixes_accepted.inc(accepted)

    def _accept_event(
        self,
        delivery: Delivery,
        topic: str,
        raw: bytes,
        device: DeviceRef,
        received_at: dt.datetime,
    ) -> None:
        decoded = decode_event(
            raw,
            self._limits,
            received_at,
            device_id=device.device_id,
            tenant_id=device.tenant_id,
        )
        if isinstance(decoded, Rejection):
            self._reject(delivery, topic, raw, decoded.reason, decoded.detail, received_at, device)
            return
        verdict = self._event_filter.check(decoded)
        if verdict is Verdict.DUPLICATE:
            self.metrics.duplicates.inc()
        elif verdict is Verdict.DUPLICATE_CONFLICT:
            self._reject(
                delivery,
                topic,
                raw,
                Reason.DUPLICATE_CONFLICT,
                f"another {decoded.kind} event of this device at {decoded.time.isoformat()}"
                " has other values",
                received_at,
                device,
            )
        else:
            self.metrics.events_accepted.inc()
            self._writer.add_event(event_row(decoded), delivery)
            if self._consumers:
                self._push(decoded)

    def _push(self, item: DeviceItem) -> None:
        if self._direct:  # no reorder window: the rules engine re-evaluates late items
            self._deliver(item)
        else:
            self._reorder.push(item, self._clock.monotonic())

    def _reject(
        self,
        delivery: Delivery,
        topic: str,
        raw: bytes,
        reason: Reason,
        detail: str,
        received_at: dt.datetime,
        device: DeviceRef | None = None,
    ) -> None:
        self.metrics.rejected.labels(reason=str(reason)).inc()
        self._writer.add_dead_letter(
            DeadLetter(
                received_at=received_at,
                topic=topic,
                payload=raw,
                reason=str(reason),
                detail=detail,
                tenant_id=device.tenant_id if device else None,
                device_id=device.device_id if device else None,
            ),
            delivery,
        )

    async def _release_loop(self) -> None:
        while True:
            await asyncio.sleep(_RELEASE_TICK_S)
            for item in self._reorder.release(self._clock.monotonic()):
                self._deliver(item)
            self.metrics.reorder_held.set(len(self._reorder))

    def _deliver(self, item: DeviceItem) -> None:
        for consumer in self._consumers:
            try:
                consumer(item)
            except Exception:  # one failing consumer must not stop ingest
                log.exception("consumer %r failed", consumer)

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.positions.maintenance_interval_s)
            try:
                async with self._pool.connection() as conn:
                    await maintain(conn, self._settings.positions, self._clock.now())
            except Exception:
                log.exception("positions maintenance failed; will retry")

    async def flush(self) -> None:
        """Write everything buffered now (tests and clean shutdown)."""
        await self._writer.flush_all()


def _fix_json(fix: Fix) -> bytes:
    return orjson.dumps(
        {
            "ts": fix.time.isoformat(),
            "lat": fix.lat,
            "lon": fix.lon,
            "speed_kmh": fix.speed_kmh,
            "accuracy_m": fix.accuracy_m,
            "seq": fix.seq,
            "source": str(fix.source),
        }
    )


def _explain(verdict: Verdict, fix: Fix) -> str:
    if verdict is Verdict.JUMP:
        return f"fix at {fix.time.isoformat()} implies an impossible speed from its neighbours"
    return f"another fix of this device at {fix.time.isoformat()} has other coordinates"


def _fix_time(fix: Fix) -> dt.datetime:
    return fix.time
