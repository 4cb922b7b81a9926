"""Alerts to field staff: the right people get the alerts they act on, as QoS 1 JSON on their
own topic; the queue is bounded; a publisher started before its broker delivers once it is up."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import orjson
import pytest

import alerts
import planning
from alerts import Alert, AlertEvent, AlertKind, AlertState, Change, Resolution, Severity
from broker import free_port
from ingest import MqttEndpoint
from storage import Pool
from tests.alerts.world import T0, make_world
from tests.support import BrokerUnderTest, wait_for

RECEIVE_TIMEOUT_S = 15.0


def alert(kind: AlertKind = AlertKind.WRONG_ROUTE, **changes: Any) -> Alert:
    values: dict[str, Any] = {
        "id": 41,
        "key": "wrong-route:1",
        "tenant_id": 1,
        "kind": kind,
        "severity": Severity.WARNING,
        "device_id": 3,
        "vehicle_id": 5,
        "route_run_id": 7,
        "stop_id": 11,
        "stop_seq": 4,
        "opened_at": T0,
        "last_evidence_at": T0 + dt.timedelta(seconds=90),
        "state": AlertState.OPEN,
        "message": "Xe 29C-10001 đi lệch tuyến 250 m",
        "evidence": {"off_route_m": 250.0, "fix_count": 6, "fixes": [[20.97, 105.77]] * 6},
        "resolved_at": None,
        "resolution": None,
        "resolved_by": None,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "acknowledge_note": None,
        "assigned_to": None,
        "assigned_at": None,
    }
    return Alert(**(values | changes))


def crew(tenant: str, *staff_ids: int) -> alerts.Recipients:
    return lambda _alert: [(tenant, staff_id) for staff_id in staff_ids]


def client_for(broker: BrokerUnderTest) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.service.username,
        password=broker.service.password,
        identifier=f"staff-phone-{secrets.token_hex(4)}",
        protocol=aiomqtt.ProtocolVersion.V5
        if broker.protocol == 5
        else aiomqtt.ProtocolVersion.V311,
    )


@contextlib.asynccontextmanager
async def phone(broker: BrokerUnderTest, topic: str) -> AsyncIterator[aiomqtt.Client]:
    async with client_for(broker) as client:
        await client.subscribe(topic, qos=1)
        yield client


async def receive(client: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    received: list[aiomqtt.Message] = []

    async def take() -> None:
        async for message in client.messages:
            received.append(message)
            if len(received) == count:
                return

    await asyncio.wait_for(take(), RECEIVE_TIMEOUT_S)
    return received


async def test_staff_receive_the_alerts_they_act_on_as_qos1_json(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    tenant = f"t-{secrets.token_hex(4)}"
    opened = AlertEvent(Change.OPENED, alert())
    resolved = AlertEvent(
        Change.RESOLVED,
        alert(
            state=AlertState.RESOLVED,
            resolved_at=T0 + dt.timedelta(minutes=4),
            resolution=Resolution.CLEARED,
            resolve_note="Xe 29C-10001 đã về tuyến",
        ),
    )
    not_for_staff = [
        AlertEvent(Change.UPDATED, alert()),
        AlertEvent(Change.ACKNOWLEDGED, alert()),
        AlertEvent(Change.OPENED, alert(AlertKind.GPS_JUMP)),
        AlertEvent(Change.OPENED, alert(AlertKind.GEOFENCE_ENTER)),
    ]
    endpoint = broker.service_endpoint()
    async with (
        phone(broker, f"sanitrack/{tenant}/staff/+/alerts") as listener,
        alerts.StaffAlertPublisher(
            endpoint, crew(tenant, 8, 9), client_id=f"staff-alerts-{secrets.token_hex(4)}"
        ) as publisher,
    ):
        assert publisher.publish(opened) == 2
        assert [publisher.publish(event) for event in not_for_staff] == [0, 0, 0, 0]
        assert publisher.publish(resolved) == 2
        messages = await receive(listener, 4)
        await asyncio.sleep(0.3)  # room for anything that should not come
        assert publisher.sent == 4
    topics = sorted(str(m.topic) for m in messages)
    assert topics == [f"sanitrack/{tenant}/staff/{n}/alerts" for n in (8, 8, 9, 9)]
    assert {m.qos for m in messages} == {1}
    to_eight = [orjson.loads(m.payload) for m in messages if str(m.topic).endswith("/8/alerts")]
    assert to_eight == [
        {
            "id": 41,
            "kind": "wrong_route",
            "severity": "warning",
            "change": "opened",
            "message": "Xe 29C-10001 đi lệch tuyến 250 m",
            "vehicle_id": 5,
            "route_run_id": 7,
            "stop_seq": 4,
            "opened_at": "2026-12-04T01:00:00Z",
            "resolved_at": None,
            "resolution": None,
            "evidence": {"off_route_m": 250.0, "fix_count": 6},
        },
        {
            "id": 41,
            "kind": "wrong_route",
            "severity": "warning",
            "change": "resolved",
            "message": "Xe 29C-10001 đã về tuyến",
            "vehicle_id": 5,
            "route_run_id": 7,
            "stop_seq": 4,
            "opened_at": "2026-12-04T01:00:00Z",
            "resolved_at": "2026-12-04T01:04:00Z",
            "resolution": "cleared",
            "evidence": {"off_route_m": 250.0, "fix_count": 6},
        },
    ]


async def test_the_crew_hears_the_ends_others_make_and_not_the_engines_twice(
    database_url: str, pool: Pool, broker: BrokerUnderTest
) -> None:
    """A dispatcher closes "you passed stop 2" and a re-plan cancels the run with the
    "off route" alert open: the driver's phone hears both ends, from the bus (they were made
    in other processes). The engine's own end (back on route) it sends itself after its
    commit, so the bus does not send it again; nor do openings come through the bus."""
    world = await make_world(pool)
    passed = world.signal(Change.OPENED, "missed:2", T0)
    off_route = world.signal(Change.OPENED, "off:1", T0, kind=AlertKind.WRONG_ROUTE)
    back = world.signal(
        Change.OPENED, "off:0", T0 - dt.timedelta(minutes=9), kind=AlertKind.WRONG_ROUTE
    )
    bus = alerts.LocalBus()
    async with (
        alerts.AlertListener(database_url, pool) as listener,
        phone(broker, f"sanitrack/{world.tenant_slug}/staff/+/alerts") as driver_phone,
        alerts.StaffAlertPublisher(
            broker.service_endpoint(),
            crew(world.tenant_slug, world.driver_id),
            client_id=f"staff-alerts-{secrets.token_hex(4)}",
        ) as publisher,
    ):
        tasks = [
            asyncio.create_task(alerts.pump(listener, bus)),
            asyncio.create_task(alerts.relay_closures(bus, publisher)),
        ]
        assert await wait_for(lambda: _subscribers(bus), 1) == 1
        async with pool.connection() as conn:
            events = await alerts.apply_signals(conn, [passed, off_route, back])
            ended = dataclasses.replace(back, change=Change.RESOLVED, resolution=Resolution.CLEARED)
            events += await alerts.apply_signals(conn, [ended])
            await alerts.notify(conn, events)
        async with pool.connection() as conn:
            closed = await alerts.resolve(
                conn, world.tenant_id, events[0].alert.id, world.dispatcher_id, "Hộ vắng nhà"
            )
            await alerts.notify(conn, [closed])
        async with pool.connection() as conn:
            await planning.set_run_status(
                conn, world.tenant_id, world.run_id, planning.RunStatus.CANCELLED
            )
        messages = await receive(driver_phone, 2)
        with pytest.raises(TimeoutError):  # nothing more
            await asyncio.wait_for(anext(aiter(driver_phone.messages)), 0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert {str(m.topic) for m in messages} == {
        f"sanitrack/{world.tenant_slug}/staff/{world.driver_id}/alerts"
    }
    heard = [orjson.loads(m.payload) for m in messages]
    assert [(h["id"], h["change"], h["resolution"], h["message"]) for h in heard] == [
        (events[0].alert.id, "resolved", "by_person", "Hộ vắng nhà"),
        (events[1].alert.id, "resolved", "run_cancelled", alerts.RUN_CANCELLED_NOTE),
    ]


async def _subscribers(bus: alerts.LocalBus) -> int:
    return bus.subscribers


async def test_a_full_queue_counts_what_it_could_not_take() -> None:
    nowhere = MqttEndpoint("127.0.0.1", free_port())
    publisher = alerts.StaffAlertPublisher(nowhere, crew("t-1", 8, 9), max_queued=3)
    event = AlertEvent(Change.OPENED, alert())
    assert publisher.publish(event) == 2
    assert publisher.publish(event) == 1
    assert (publisher.pending, publisher.dropped) == (3, 1)
    with pytest.raises(alerts.InvalidValue, match="max_queued"):
        alerts.StaffAlertPublisher(nowhere, crew("t-1"), max_queued=0)


class Gate:
    """A TCP relay to the broker that can be opened and shut: the publisher's network. Shut,
    nothing listens on its port, so connecting is refused at once."""

    def __init__(self, broker: BrokerUnderTest) -> None:
        self.broker = broker
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    def shut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    @contextlib.asynccontextmanager
    async def owned(self) -> AsyncIterator[Gate]:
        try:
            yield self
        finally:
            self.shut()
            for relay in list(self._relays):
                relay.cancel()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.broker.host, self.broker.port)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            relay = asyncio.create_task(self._relay(source, sink))
            self._relays.add(relay)
            relay.add_done_callback(self._relays.discard)

    @staticmethod
    async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        sink.close()


async def test_a_publisher_delivers_what_waited_while_its_broker_was_unreachable(
    broker: BrokerUnderTest,
) -> None:
    tenant = f"t-{secrets.token_hex(4)}"
    gate = Gate(broker)
    endpoint = dataclasses.replace(broker.service_endpoint(), port=gate.port)
    publisher = alerts.StaffAlertPublisher(
        endpoint,
        crew(tenant, 8),
        client_id=f"staff-alerts-{secrets.token_hex(4)}",
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    async with (
        gate.owned(),
        phone(broker, f"sanitrack/{tenant}/staff/8/alerts") as listener,
        publisher,
    ):
        assert publisher.publish(AlertEvent(Change.OPENED, alert(id=1))) == 1
        await asyncio.sleep(0.3)  # a few refused connections
        assert not publisher.connected.is_set()
        assert publisher.pending == 1
        await gate.open()
        [first] = await receive(listener, 1)
        gate.shut()  # the connection drops; what is published meanwhile waits
        assert publisher.publish(AlertEvent(Change.OPENED, alert(id=2))) == 1
        await asyncio.sleep(0.3)
        await gate.open()
        # QoS 1 is at least once: when the gate shut before alert 1's PUBACK came back, the
        # publisher sends 1 again before 2 (the phone applies alerts by id).
        after = [orjson.loads(m.payload)["id"] for m in await receive(listener, 1)]
        if after == [1]:
            after += [orjson.loads(m.payload)["id"] for m in await receive(listener, 1)]

        async def pending() -> int:  # the PUBACK may land just after the phone's copy
            return publisher.pending

        assert await wait_for(pending, 0, timeout_s=5) == 0
    assert orjson.loads(first.payload)["id"] == 1
    assert after in ([2], [1, 2]), after
