"""simulator.wire: sessions against the real brokers (amqtt, and Mosquitto when
configured), and a scripted peer for what no real broker lets a test control
(PUBACKs held back, PINGRESPs never sent, a connection cut mid-session). The codec
has its own tests in test_mqtt_codec.py."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import aiomqtt
import pytest

from broker import free_port
from simulator.mqtt_codec import PacketReader, encode_packet
from simulator.wire import ConnectionLost, ConnectRefused, DeviceSession, InflightFull, Will
from storage import Pool
from tests.support import BrokerUnderTest, DeviceUnderTest, make_devices


def own_topic(device: DeviceUnderTest, leaf: str) -> str:
    return f"sanitrack/{device.tenant}/dev/{device.slug}/{leaf}"


def device_session(
    device: DeviceUnderTest,
    *,
    will: Will | None = None,
    clean_session: bool = True,
    keepalive_s: int = 60,
    max_inflight: int = 1000,
    on_ack: Callable[[int, int], None] | None = None,
) -> DeviceSession:
    """A session logged in as the device, under a client id of its own."""
    return DeviceSession(
        f"{device.username}-{uuid.uuid4().hex[:6]}",
        device.username,
        device.secret,
        will=will,
        clean_session=clean_session,
        keepalive_s=keepalive_s,
        max_inflight=max_inflight,
        on_ack=on_ack,
    )


@contextlib.asynccontextmanager
async def connected(session: DeviceSession, broker: BrokerUnderTest) -> AsyncIterator[None]:
    await session.connect(broker.host, broker.port, timeout_s=10)
    try:
        yield
    finally:
        await session.disconnect()


@contextlib.asynccontextmanager
async def service_subscriber(broker: BrokerUnderTest, topic: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.service.username,
        password=broker.service.password,
        identifier=f"wire-test-{uuid.uuid4().hex[:8]}",
    ) as client:
        await client.subscribe(topic, qos=1)
        yield client


async def receive(client: aiomqtt.Client, count: int, timeout_s: float = 20) -> list[bytes]:
    payloads: list[bytes] = []
    async with asyncio.timeout(timeout_s):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            payloads.append(message.payload)
            if len(payloads) == count:
                break
    return payloads


@contextlib.asynccontextmanager
async def collecting(client: aiomqtt.Client) -> AsyncIterator[list[bytes]]:
    """Every payload the client receives while the block runs, as it arrives."""
    arrived: list[bytes] = []

    async def collect() -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            arrived.append(message.payload)

    task = asyncio.create_task(collect(), name="collect payloads")
    try:
        yield arrived
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish_all(session: DeviceSession, topic: str, payloads: list[bytes]) -> None:
    """Publish every payload, waiting out back-pressure as the simulator would."""
    for payload in payloads:
        while True:
            try:
                session.publish(topic, payload)
                break
            except InflightFull:
                await asyncio.sleep(0.005)


async def eventually(condition: Callable[[], bool], timeout_s: float = 5) -> bool:
    """Poll a session's plain attributes (they change without any event to wait on)."""
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


async def at_least(items: list[bytes], count: int, timeout_s: float = 20) -> bool:
    return await eventually(lambda: len(items) >= count, timeout_s)


# ---------------------------------------------------------------- settings


def test_bad_settings_name_the_field_and_the_range() -> None:
    with pytest.raises(ValueError, match=r"max_inflight=0: allowed 1\.\.65535"):
        DeviceSession("d", None, None, max_inflight=0)
    with pytest.raises(ValueError, match=r"keepalive_s=70000"):
        DeviceSession("d", None, None, keepalive_s=70_000)
    with pytest.raises(ValueError, match="password without username"):
        DeviceSession("d", None, "secret")
    with pytest.raises(ValueError, match=r"Will\.qos=3"):
        Will("a/b", b"", qos=3)
    with pytest.raises(ValueError, match=r"Will\.topic='a/\+'"):
        Will("a/+", b"")


# ---------------------------------------------------------------- real brokers


async def test_qos1_publishes_arrive_byte_exact_and_are_all_acked(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    payloads = [
        bytes(range(256)),
        b"",
        "Hà Đông, Quang Trung".encode(),
        bytes(127),  # remaining lengths just below and above 1- and 2-byte prefixes
        bytes(range(256)) * 64,  # 16 KiB: a 3-byte remaining length
        b'{"lat":20.97,"lon":105.77}',
    ]
    latencies_ns: list[int] = []
    session = device_session(device, on_ack=lambda sent, acked: latencies_ns.append(acked - sent))
    async with (
        service_subscriber(broker, device.topic) as subscriber,
        connected(session, broker),
    ):
        assert session.connected
        for payload in payloads:
            session.publish(device.topic, payload)
        assert await session.wait_acked(15)
        assert await receive(subscriber, len(payloads)) == payloads
    assert (session.published, session.acked, session.in_flight) == (6, 6, 0)
    assert len(latencies_ns) == 6
    assert all(latency >= 0 for latency in latencies_ns)
    assert not session.connected
    assert session.lost is None  # a clean disconnect is not a loss


async def test_two_thousand_publishes_from_four_sessions_are_all_acked(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    devices = await make_devices(pool, 4)
    sessions = [device_session(device, max_inflight=50) for device in devices]
    payloads = [[f"{device.slug}:{n}".encode() for n in range(500)] for device in devices]
    wildcard = f"sanitrack/{devices[0].tenant}/dev/+/pos"
    async with (
        service_subscriber(broker, wildcard) as subscriber,
        collecting(subscriber) as arrived,
        contextlib.AsyncExitStack() as stack,
    ):
        for session in sessions:
            await stack.enter_async_context(connected(session, broker))
        # Rounds of 400 keep the subscriber's backlog under a default Mosquitto's
        # max_queued_messages (1000), past which it drops messages for the subscriber.
        for start in range(0, 500, 100):
            await asyncio.gather(
                *(
                    publish_all(session, device.topic, own[start : start + 100])
                    for session, device, own in zip(sessions, devices, payloads, strict=True)
                )
            )
            assert await at_least(arrived, 4 * (start + 100))
        assert all(await asyncio.gather(*(session.wait_acked(30) for session in sessions)))
    assert [(s.published, s.acked, s.in_flight) for s in sessions] == [(500, 500, 0)] * 4
    assert sorted(arrived) == sorted(p for own in payloads for p in own)


async def test_a_wrong_password_is_refused(pool: Pool, broker: BrokerUnderTest) -> None:
    if not broker.checks_credentials:
        pytest.skip(f"{broker.name} here allows anonymous logins: no password is wrong")
    [device] = await make_devices(pool, 1)
    session = DeviceSession(f"{device.username}-x", device.username, "wrong")
    with pytest.raises(ConnectRefused) as refused:
        await session.connect(broker.host, broker.port, timeout_s=10)
    assert refused.value.return_code in (4, 5)
    assert refused.value.client_id == f"{device.username}-x"
    assert not session.connected


async def test_abort_makes_the_broker_send_the_will_and_disconnect_does_not(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    status = own_topic(device, "status")
    polite = device_session(device, will=Will(status, b"will after disconnect"))
    dropped = device_session(device, will=Will(status, b"will after abort"))
    try:
        async with service_subscriber(broker, status) as subscriber:
            await polite.connect(broker.host, broker.port)
            await polite.disconnect()
            await dropped.connect(broker.host, broker.port)
            dropped.abort()
            assert not dropped.connected
            assert await receive(subscriber, 1, timeout_s=15) == [b"will after abort"]
        async with service_subscriber(broker, status) as latecomer:  # the will was retained
            assert await receive(latecomer, 1) == [b"will after abort"]
        assert dropped.lost is not None
        assert dropped.lost.reason == "aborted by the caller"
        assert polite.lost is None
    finally:
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=broker.service.username,
            password=broker.service.password,
        ) as cleaner:
            await cleaner.publish(status, b"", qos=1, retain=True)  # clear the retained will


async def test_a_device_receives_qos1_commands_on_its_cmd_topic(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    cmd = own_topic(device, "cmd")
    received: list[tuple[str, bytes]] = []
    session = device_session(device, clean_session=False)
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.service.username,
        password=broker.service.password,
    ) as service:
        async with connected(session, broker):
            assert not session.session_present
            granted = session.subscribe(
                cmd, 1, lambda topic, payload: received.append((topic, payload))
            )
            assert await asyncio.wait_for(granted, 10) == 1
            if broker.checks_credentials:  # the ACL: only its own cmd topic
                other = f"sanitrack/{device.tenant}/dev/someone-else/cmd"
                assert await asyncio.wait_for(session.subscribe(other), 10) == 0x80
            await service.publish(cmd, b"empty the bin at 7", qos=1)
            assert await eventually(lambda: len(received) == 1, 10)
        # Offline: the broker keeps this for the persistent session. Had the first
        # command not been acknowledged, it would come again too.
        await service.publish(cmd, b"go to the depot", qos=1)
        async with connected(session, broker):
            assert session.session_present
            assert await eventually(lambda: len(received) == 2, 10)
            await asyncio.sleep(0.5)  # room for a wrong redelivery
    assert received == [(cmd, b"empty the bin at 7"), (cmd, b"go to the depot")]
    assert session.received == 2
    forget = DeviceSession(session.client_id, device.username, device.secret)
    async with connected(forget, broker):  # clean session: the broker drops the stored one
        pass


async def test_keepalive_pings_keep_an_idle_session_connected(
    pool: Pool, broker: BrokerUnderTest
) -> None:
    [device] = await make_devices(pool, 1)
    session = device_session(device, keepalive_s=1)
    async with connected(session, broker):
        await asyncio.sleep(3.5)  # the broker drops a silent client after 1.5 s
        assert session.connected
        session.publish(device.topic, b"still here")
        assert await session.wait_acked(5)


async def test_an_unreachable_broker_is_a_lost_connection() -> None:
    session = DeviceSession("nobody-listens", None, None)
    with pytest.raises(ConnectionLost) as lost:
        await session.connect("127.0.0.1", free_port(), timeout_s=5)
    assert isinstance(lost.value.__cause__, OSError)
    assert not session.connected


# ---------------------------------------------------------------- a scripted peer


class ScriptedPeer:
    """A minimal MQTT server on a real socket that acks what ``ack`` allows."""

    def __init__(
        self,
        ack: Callable[[int], bool] = lambda packet_id: True,
        connack: bool = True,
        answer_pings: bool = True,
        answer_subscribes: bool = True,
    ) -> None:
        self.ack, self.connack = ack, connack
        self.answer_pings, self.answer_subscribes = answer_pings, answer_subscribes
        self.published_ids: list[int] = []
        self.publishes: list[tuple[str, bytes]] = []
        self.pings = 0
        self.writer: asyncio.StreamWriter | None = None
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer, packets = writer, PacketReader()
        while data := await reader.read(65_536):
            answers = []
            for first, body in packets.feed(data):
                kind = first >> 4
                if kind == 1 and self.connack:
                    answers.append(b"\x20\x02\x00\x00")
                elif kind == 3:
                    topic_end = 2 + int.from_bytes(body[:2])
                    packet_id = int.from_bytes(body[topic_end : topic_end + 2])
                    self.published_ids.append(packet_id)
                    self.publishes.append((body[2:topic_end].decode(), body[topic_end + 2 :]))
                    if self.ack(packet_id):
                        answers.append(b"\x40\x02" + body[topic_end : topic_end + 2])
                elif kind == 12:
                    self.pings += 1
                    if self.answer_pings:
                        answers.append(b"\xd0\x00")
                elif kind == 8 and self.answer_subscribes:
                    answers.append(b"\x90\x03" + body[:2] + b"\x01")
            writer.write(b"".join(answers))
        writer.close()

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    def cut(self) -> None:
        assert self.writer is not None
        self.writer.transport.abort()


@contextlib.asynccontextmanager
async def scripted(peer: ScriptedPeer) -> AsyncIterator[ScriptedPeer]:
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    peer.port = server.sockets[0].getsockname()[1]
    try:
        yield peer
    finally:
        if peer.writer is not None:
            peer.writer.transport.abort()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, object]]]:
    """What reached the event loop's exception handler during the test."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


def collected(errors: list[dict[str, object]]) -> Iterator[dict[str, object]]:
    gc.collect()  # "Future exception was never retrieved" is reported on collection
    return iter(errors)


async def test_packet_ids_wrap_around_and_skip_ids_still_in_flight() -> None:
    async with scripted(ScriptedPeer(ack=lambda packet_id: packet_id not in (1, 3))) as peer:
        session = DeviceSession("wrapper", None, None, max_inflight=1000)
        await session.connect("127.0.0.1", peer.port)
        await publish_all(session, "t/wrap", [b"p"] * (65_535 + 2))
        assert await eventually(lambda: len(peer.published_ids) == 65_537)
        await session.disconnect()
    assert peer.published_ids[:3] == [1, 2, 3]
    assert peer.published_ids[-3:] == [65_535, 2, 4]  # 1 and 3 were never acked
    assert peer.publishes[-1] == ("t/wrap", b"p")


async def test_inflight_full_at_the_bound_until_acks_free_a_slot() -> None:
    async with scripted(ScriptedPeer(ack=lambda packet_id: False)) as peer:
        session = DeviceSession("bounded", None, None, max_inflight=5)
        await session.connect("127.0.0.1", peer.port)
        for n in range(5):
            session.publish("t/bound", b"%d" % n)
        with pytest.raises(InflightFull) as full:
            session.publish("t/bound", b"one too many")
        assert (full.value.in_flight, full.value.max_inflight, full.value.write_paused) == (
            5,
            5,
            False,
        )
        session.publish("t/bound", b"qos 0 is not bounded by acks", qos=0)
        assert not await session.wait_acked(0.2)
        peer.send(b"\x40\x02\x00\x02\x40\x02\x00\x04")
        assert await eventually(lambda: session.in_flight == 3)
        session.publish("t/bound", b"fits again")
        assert (session.published, session.acked, session.in_flight) == (7, 2, 4)
        await session.disconnect()


async def test_a_lost_connection_fails_what_waits_and_keeps_the_loop_quiet(
    loop_errors: list[dict[str, object]],
) -> None:
    async with scripted(ScriptedPeer(ack=lambda packet_id: False, answer_subscribes=False)) as peer:
        session = DeviceSession("cut-off", None, None)
        await session.connect("127.0.0.1", peer.port)
        session.publish("t/lost", b"never acked")
        waiting = asyncio.create_task(session.wait_acked(30))
        granted = session.subscribe("t/cmd")
        session.subscribe("t/ignored")  # a future nobody awaits
        await asyncio.sleep(0.05)
        peer.cut()
        with pytest.raises(ConnectionLost):
            await waiting
        with pytest.raises(ConnectionLost):
            await granted
        assert not session.connected
        assert session.lost is not None
        assert session.in_flight == 0
        assert (session.published, session.acked) == (1, 0)
        with pytest.raises(ConnectionLost, match="not connected"):
            session.publish("t/lost", b"after the loss")
    await asyncio.sleep(0.05)
    assert list(collected(loop_errors)) == []


async def test_a_raising_callback_ends_the_connection_with_the_error_as_cause(
    loop_errors: list[dict[str, object]],
) -> None:
    def broken(topic: str, payload: bytes) -> None:
        raise RuntimeError("handler bug")

    async with scripted(ScriptedPeer()) as peer:
        session = DeviceSession("clumsy", None, None)
        await session.connect("127.0.0.1", peer.port)
        assert await asyncio.wait_for(session.subscribe("t/cmd", 1, broken), 5) == 1
        peer.send(encode_packet(0x32, b"\x00\x05t/cmd\x00\x09go"))
        assert await eventually(lambda: not session.connected)
    assert session.lost is not None
    assert isinstance(session.lost.__cause__, RuntimeError)
    await asyncio.sleep(0.05)
    assert list(collected(loop_errors)) == []


async def test_a_missing_pingresp_ends_the_connection() -> None:
    async with scripted(ScriptedPeer(answer_pings=False)) as peer:
        session = DeviceSession("unanswered", None, None, keepalive_s=1)
        await session.connect("127.0.0.1", peer.port)
        assert await eventually(lambda: not session.connected, 5)
    assert peer.pings >= 1
    assert session.lost is not None
    assert "PINGRESP" in session.lost.reason


async def test_a_connection_ended_says_why_at_once() -> None:
    """``connected`` and ``lost`` change together: the transport's own end comes a loop turn
    later, and a caller that saw ``connected`` go false must not find ``lost`` empty."""
    async with scripted(ScriptedPeer()) as peer:
        session = DeviceSession("ended", None, None)
        await session.connect("127.0.0.1", peer.port)
        session.abort()
        assert not session.connected
        assert session.lost is not None
        assert "aborted" in session.lost.reason


async def test_connect_times_out_without_connack() -> None:
    async with scripted(ScriptedPeer(connack=False)) as peer:
        session = DeviceSession("ignored", None, None)
        with pytest.raises(TimeoutError):
            await session.connect("127.0.0.1", peer.port, timeout_s=0.2)
        assert not session.connected
