"""Alerts to field staff's phones over MQTT (ARCHITECTURE §3): the driver and crew of a run
hear that they left the route or passed a stop, and that it cleared, or that a dispatcher or
a cancelled run closed it.

``publish`` never blocks the bus: messages wait in a bounded queue for one connection owned
by ``async with``, which reconnects with jittered back-off and sends with QoS 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from types import TracebackType

import aiomqtt
import orjson

from alerts.bus import LocalBus
from alerts.errors import InvalidValue, Overflowed
from alerts.models import Alert, AlertEvent, AlertKind, Change, Resolution
from ingest import MqttEndpoint
from ingest.mqtt import subscriber_client

log = logging.getLogger(__name__)

# A person can act on these; a GPS jump or a geofence crossing is for the dispatcher.
STAFF_KINDS = frozenset(
    {
        AlertKind.WRONG_ROUTE,
        AlertKind.MISSED_STOP,
        AlertKind.OFFLINE,
        AlertKind.IDLE,
        AlertKind.SPEEDING,
    }
)
STAFF_CHANGES = frozenset({Change.OPENED, Change.RESOLVED})
# Ends the rules engine does not make (a dispatcher closed it, its run was cancelled): the
# crew hears of them from the bus (``relay_closures``). What the engine writes it sends
# itself, at once after its commit.
RELAYED_RESOLUTIONS = frozenset({Resolution.BY_PERSON, Resolution.RUN_CANCELLED})
RELAY_RESUBSCRIBE_S = 1.0  # after falling behind the bus: what was missed is lost to phones

# (tenant slug, staff id) of everyone who should hear of an alert.
Recipients = Callable[[Alert], Sequence[tuple[str, int]]]


def staff_topic(tenant_slug: str, staff_id: int) -> str:
    return f"sanitrack/{tenant_slug}/staff/{staff_id}/alerts"


def staff_payload(event: AlertEvent) -> bytes:
    """What a phone needs to show the alert: the evidence's figures, not its fix list."""
    alert = event.alert
    summary = {
        name: value
        for name, value in alert.evidence.items()
        if isinstance(value, str | int | float | bool) or value is None
    }
    return orjson.dumps(
        {
            "id": alert.id,
            "kind": alert.kind,
            "severity": alert.severity,
            "change": event.change,
            # Resolved: what cleared it ("đã thu gom điểm 12 (muộn)"), when that was said.
            "message": alert.resolve_note
            if event.change is Change.RESOLVED and alert.resolve_note
            else alert.message,
            "vehicle_id": alert.vehicle_id,
            "route_run_id": alert.route_run_id,
            "stop_seq": alert.stop_seq,
            "opened_at": alert.opened_at,
            "resolved_at": alert.resolved_at,
            "resolution": alert.resolution,
            "evidence": summary,
        },
        option=orjson.OPT_UTC_Z,
    )


def publisher_client(endpoint: MqttEndpoint, client_id: str) -> aiomqtt.Client:
    """A clean-session client, not yet connected: a publisher has nothing to resume. The
    ingest's constructor (it reads too: the watcher over ``client.messages``)."""
    return subscriber_client(endpoint, client_id, receive_maximum=100)


class StaffAlertPublisher:
    """Sends OPENED and RESOLVED alerts of the kinds staff act on to each recipient's topic."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        recipients: Recipients,
        *,
        client_id: str = "sanitrack-staff-alerts",
        max_queued: int = 10_000,
        drain_timeout_s: float = 5.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
    ) -> None:
        if max_queued < 1:
            raise InvalidValue(f"max_queued: {max_queued} is not >= 1")
        self._endpoint = endpoint
        self._recipients = recipients
        self._client_id = client_id
        self._drain_timeout_s = drain_timeout_s
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(max_queued)
        self._sending: tuple[str, bytes] | None = None  # taken, not yet acknowledged
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.sent = 0
        self.dropped = 0

    async def __aenter__(self) -> StaffAlertPublisher:
        self._task = asyncio.create_task(self._connection_loop(), name="staff-alerts-mqtt")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):  # give what is queued a moment to go out
            await asyncio.wait_for(self._queue.join(), self._drain_timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self.pending:
            log.warning("staff alert publisher stopped with %d messages unsent", self.pending)

    @property
    def pending(self) -> int:
        return self._queue.qsize() + (self._sending is not None)

    def publish(self, event: AlertEvent) -> int:
        """Queue the event for its recipients, never waiting; return how many messages were
        queued. When the queue is full the message is counted in ``dropped`` and logged."""
        if event.change not in STAFF_CHANGES or event.alert.kind not in STAFF_KINDS:
            return 0
        payload = staff_payload(event)
        queued = 0
        for tenant_slug, staff_id in self._recipients(event.alert):
            try:
                self._queue.put_nowait((staff_topic(tenant_slug, staff_id), payload))
                queued += 1
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning(
                    "staff alert queue full: alert %d not sent to staff %d",
                    event.alert.id,
                    staff_id,
                )
        return queued

    async def _connection_loop(self) -> None:
        delay_s = self._reconnect_min_s
        while True:
            try:
                async with publisher_client(self._endpoint, self._client_id) as client:
                    self.connected.set()
                    delay_s = self._reconnect_min_s
                    async with asyncio.TaskGroup() as tasks:
                        tasks.create_task(self._send(client), name="staff-alerts-send")
                        tasks.create_task(_watch(client), name="staff-alerts-watch")
            except* aiomqtt.MqttError as lost:
                log.warning(
                    "staff alert MQTT connection lost (%s); reconnecting in %.1f s",
                    lost.exceptions[0],
                    delay_s,
                )
            finally:
                self.connected.clear()
            await asyncio.sleep(delay_s * random.uniform(0.5, 1.5))
            delay_s = min(delay_s * 2, self._reconnect_max_s)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            if self._sending is None:
                self._sending = await self._queue.get()
            topic, payload = self._sending
            # Returns once the broker acknowledged (PUBACK); a message cut off by a lost
            # connection is sent again on the next one (QoS 1 allows the duplicate).
            await client.publish(topic, payload, qos=1)
            self._sending = None
            self._queue.task_done()
            self.sent += 1


async def relay_closures(
    bus: LocalBus, publisher: StaffAlertPublisher, max_queued: int = 10_000
) -> None:
    """Send the crew the ends of their alerts that others made, as the bus hears them (from
    any process), until cancelled: the phone that said "you passed stop 12" says it is
    closed when the dispatcher closes it or the run is cancelled."""
    while True:
        with bus.subscribe(max_queued) as subscription:
            try:
                async for item in subscription:
                    if (
                        isinstance(item, AlertEvent)
                        and item.change is Change.RESOLVED
                        and item.alert.resolution in RELAYED_RESOLUTIONS
                    ):
                        publisher.publish(item)
            except Overflowed:
                log.warning("staff relay fell %d bus items behind; some ends unsent", max_queued)
        await asyncio.sleep(RELAY_RESUBSCRIBE_S)  # a bus shutting down must not spin


async def _watch(client: aiomqtt.Client) -> None:
    """Raise MqttError as soon as the connection drops, so a publish waiting for its PUBACK
    is cut short instead of timing out (the publisher subscribes to nothing)."""
    async for _ in client.messages:
        pass
