"""The device side of MQTT 3.1.1 on `asyncio.Protocol`, lean enough for 20,000 sessions.

Why not paho or aiomqtt: the load simulator holds up to ~20,000 device sessions in
one process. paho wants a network thread or a loop call per client; aiomqtt runs
a task per connection and a future per QoS 1 message (measured: 12-13 KiB RSS and
one task per connected client). Like emqtt-bench, a session here is one
`asyncio.Protocol` (measured: 2.4-3.2 KiB RSS, no task, no thread);
`publish()` encodes and writes at once and never awaits, and one keepalive timer
per event loop serves every session. `python -m bench.wire` prints the figures.

What is left out on purpose: QoS 2, TLS, MQTT 5, and resending unacknowledged
publishes after a reconnect (a lost connection forgets them: `published - acked`
counts them; the simulator reports that as loss).

The bytes themselves, encoding and the packet reader, are `simulator.mqtt_codec`;
the errors are `simulator.wire_errors`, re-exported here.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable

from simulator.mqtt_codec import (
    MAX_PACKET_ID,
    PacketReader,
    Will,
    check_topic_name,
    encode_connect,
    encode_packet,
    encode_string,
    encode_uint16,
    length_prefix,
    topic_matches,
)
from simulator.wire_errors import (
    ConnectionLost,
    ConnectRefused,
    InflightFull,
    ProtocolError,
    WireError,
)

__all__ = [
    "ConnectRefused",
    "ConnectionLost",
    "DeviceSession",
    "InflightFull",
    "ProtocolError",
    "Will",
    "WireError",
]

_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"
_PUBACK = b"\x40\x02"
_NS = 1_000_000_000


# ---------------------------------------------------------------- keepalive


class _KeepaliveTimer:
    """One timer per event loop for every session: slots of whole seconds of
    `time.monotonic`, each holding the sessions to check then. A session is checked
    about once per keepalive interval, so 20,000 sessions at 60 s cost ~333 checks/s."""

    # No reference to the loop or its timer handle: the registry's weak key stays weak.
    __slots__ = ("_slots", "_ticking")

    def __init__(self) -> None:
        self._slots: dict[int, list[DeviceSession]] = {}
        self._ticking = False

    def schedule(self, session: DeviceSession, due_s: int) -> None:
        session._keepalive_due_s = due_s
        self._slots.setdefault(due_s, []).append(session)
        if not self._ticking:
            self._ticking = True
            loop = asyncio.get_running_loop()
            loop.call_at(int(loop.time()) + 1, self._tick)

    def _tick(self) -> None:
        now_ns = time.monotonic_ns()
        now_s = (now_ns + 5_000_000) // _NS  # call_at may fire a hair early
        try:
            for due_s in [due for due in self._slots if due <= now_s]:
                for session in self._slots.pop(due_s):
                    if session._keepalive_due_s == due_s:  # else rescheduled or reconnected
                        session._check_keepalive(now_ns, self)
        finally:  # one failing session must not stop the pings of all the others
            self._ticking = bool(self._slots)
            if self._ticking:
                asyncio.get_running_loop().call_at(now_s + 1, self._tick)


_timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _KeepaliveTimer] = (
    weakref.WeakKeyDictionary()
)


def _keepalive_timer() -> _KeepaliveTimer:
    loop = asyncio.get_running_loop()
    timer = _timers.get(loop)
    if timer is None:
        timer = _timers[loop] = _KeepaliveTimer()
    return timer


# ---------------------------------------------------------------- the session


class DeviceSession(asyncio.Protocol):
    """One device's MQTT connection; the session is its own asyncio protocol, so
    it costs no task: `publish` and `subscribe` write at once, the event loop calls
    `data_received` with the broker's bytes, and the shared timer sends PINGREQ.

    Counters are plain ints: ``published`` (all QoS), ``acked`` (PUBACKs of ours),
    ``received`` (incoming PUBLISH). ``on_ack(publish_ns, ack_ns)`` gets both
    `time.monotonic_ns` instants of every acknowledged QoS 1 publish. After a
    connection ends, ``lost`` says why (None after `disconnect`); a callback that
    raises ends the connection too, and is ``lost.__cause__``.
    """

    __slots__ = (
        "_closed",
        "_connack",
        "_connected",
        "_disconnecting",
        "_drained",
        "_end_error",
        "_handlers",
        "_inflight",
        "_keepalive_due_s",
        "_last_sent_ns",
        "_next_id",
        "_password",
        "_ping_sent_ns",
        "_reader",
        "_subscribing",
        "_topic",
        "_topic_encoded",
        "_transport",
        "_username",
        "_write_paused",
        "acked",
        "clean_session",
        "client_id",
        "keepalive_s",
        "lost",
        "max_inflight",
        "on_ack",
        "published",
        "received",
        "session_present",
        "will",
    )

    def __init__(
        self,
        client_id: str,
        username: str | None,
        password: str | None,
        *,
        keepalive_s: int = 60,
        will: Will | None = None,
        clean_session: bool = True,
        max_inflight: int = 1000,
        on_ack: Callable[[int, int], None] | None = None,
    ) -> None:
        if not 0 <= keepalive_s <= 65_535:
            raise ValueError(f"keepalive_s={keepalive_s!r}: allowed 0 (off)..65535")
        if not 1 <= max_inflight <= MAX_PACKET_ID:
            raise ValueError(f"max_inflight={max_inflight!r}: allowed 1..{MAX_PACKET_ID}")
        if password is not None and username is None:
            raise ValueError("password without username: MQTT 3.1.1 does not allow it")
        # Too long a field fails here, not at every connect.
        encode_connect(client_id, username, password, keepalive_s, will, clean_session)
        self.client_id = client_id
        self._username = username
        self._password = password
        self.keepalive_s = keepalive_s
        self.will = will
        self.clean_session = clean_session
        self.max_inflight = max_inflight
        self.on_ack = on_ack
        self.published = self.acked = self.received = 0
        self.session_present = False
        self.lost: ConnectionLost | None = None
        self._transport: asyncio.Transport | None = None
        self._reader = PacketReader()
        self._connected = self._write_paused = self._disconnecting = False
        self._inflight: dict[int, int] = {}  # packet id -> time.monotonic_ns() at publish
        self._next_id = 1
        self._topic = ""
        self._topic_encoded = b""
        self._last_sent_ns = self._ping_sent_ns = self._keepalive_due_s = 0
        self._connack: asyncio.Future[int] | None = None
        self._subscribing: dict[int, asyncio.Future[int]] | None = None
        self._handlers: dict[str, Callable[[str, bytes], None] | None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._end_error: ConnectionLost | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    # ------------------------------------------------------------ the caller's side

    async def connect(self, host: str, port: int, timeout_s: float = 10.0) -> None:
        """CONNECT and wait for CONNACK. Raises ConnectRefused, ConnectionLost (also when
        the broker cannot be reached) or TimeoutError."""
        loop = asyncio.get_running_loop()
        if self._connected or self._connack is not None:
            raise RuntimeError(f"{self.client_id}: already connected or connecting")
        if self._transport is not None:  # aborted just now: its connection_lost comes first
            closed = self._closed = self._closed or loop.create_future()
            await closed
        self.lost = self._end_error = None
        self._disconnecting = self.session_present = False
        self._ping_sent_ns = 0
        self._reader = PacketReader()
        if self.clean_session:
            self._handlers = None  # the broker forgets the subscriptions too
        connack = self._connack = loop.create_future()
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    await loop.create_connection(lambda: self, host, port)
                except OSError as error:
                    lost = ConnectionLost(self.client_id, f"cannot connect to {host}:{port}")
                    raise lost from error
                self._write(
                    encode_connect(
                        self.client_id,
                        self._username,
                        self._password,
                        self.keepalive_s,
                        self.will,
                        self.clean_session,
                    )
                )
                return_code = await connack
        except BaseException:
            self._end(f"CONNECT to {host}:{port} did not complete")
            raise
        finally:
            self._connack = None
        if return_code:
            self._end(f"CONNACK return code {return_code}")
            raise ConnectRefused(self.client_id, return_code)
        self._connected = True
        if self.keepalive_s:
            self._schedule_keepalive(_keepalive_timer())

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Encode and write at once. QoS 1 takes a free packet id; raises InflightFull
        (back-pressure) or ConnectionLost, having written nothing."""
        transport = self._transport
        if not self._connected or transport is None:
            raise ConnectionLost(self.client_id, "not connected")
        if topic != self._topic:
            check_topic_name(topic, "topic")
            self._topic_encoded = encode_string(topic, "topic")
            self._topic = topic
        now_ns = time.monotonic_ns()
        if qos == 1:
            inflight = self._inflight
            if len(inflight) >= self.max_inflight or self._write_paused:
                raise InflightFull(
                    self.client_id, len(inflight), self.max_inflight, self._write_paused
                )
            packet_id = self._next_id
            while packet_id in inflight or (self._subscribing and packet_id in self._subscribing):
                packet_id = packet_id % MAX_PACKET_ID + 1
            self._next_id = packet_id % MAX_PACKET_ID + 1
            inflight[packet_id] = now_ns
            topic_encoded = self._topic_encoded
            transport.write(
                b"".join(
                    (
                        b"\x33" if retain else b"\x32",
                        length_prefix(len(topic_encoded) + 2 + len(payload)),
                        topic_encoded,
                        encode_uint16(packet_id),
                        payload,
                    )
                )
            )
        elif qos == 0:
            if self._write_paused:
                raise InflightFull(self.client_id, len(self._inflight), self.max_inflight, True)
            topic_encoded = self._topic_encoded
            transport.write(
                b"".join(
                    (
                        b"\x31" if retain else b"\x30",
                        length_prefix(len(topic_encoded) + len(payload)),
                        topic_encoded,
                        payload,
                    )
                )
            )
        else:
            raise ValueError(f"qos={qos!r}: allowed 0 or 1")
        self._last_sent_ns = now_ns
        self.published += 1

    def subscribe(
        self,
        topic_filter: str,
        qos: int = 1,
        on_message: Callable[[str, bytes], None] | None = None,
    ) -> asyncio.Future[int]:
        """SUBSCRIBE; the future resolves with SUBACK's granted QoS (0x80: refused).
        Incoming messages on the filter go to ``on_message(topic, payload)``."""
        if qos not in (0, 1):
            raise ValueError(f"qos={qos!r}: allowed 0 or 1")
        if not self._connected:
            raise ConnectionLost(self.client_id, "not connected")
        subscribing = self._subscribing
        if subscribing is None:
            subscribing = self._subscribing = {}
        if len(subscribing) + len(self._inflight) >= MAX_PACKET_ID:
            raise InflightFull(self.client_id, len(self._inflight), self.max_inflight, False)
        body = encode_string(topic_filter, "topic_filter") + bytes((qos,))
        packet_id = self._next_id
        while packet_id in self._inflight or packet_id in subscribing:
            packet_id = packet_id % MAX_PACKET_ID + 1
        self._next_id = packet_id % MAX_PACKET_ID + 1
        granted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        subscribing[packet_id] = granted
        if self._handlers is None:
            self._handlers = {}
        self._handlers[topic_filter] = on_message
        self._write(encode_packet(0x82, encode_uint16(packet_id) + body))
        return granted

    async def wait_acked(self, timeout_s: float) -> bool:
        """True once nothing is in flight, False after ``timeout_s``; raises
        ConnectionLost if the connection ends first."""
        if not self._inflight:
            return True
        if not self._connected:
            raise ConnectionLost(self.client_id, "not connected")
        drained = self._drained
        if drained is None:
            drained = self._drained = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(drained)
        except TimeoutError:
            return False
        return True

    async def disconnect(self, timeout_s: float = 5.0) -> None:
        """DISCONNECT, then close once the write buffer is flushed: no will."""
        transport = self._transport
        if transport is None:
            return
        self._connected = False
        self._disconnecting = True
        closed = self._closed = self._closed or asyncio.get_running_loop().create_future()
        transport.write(_DISCONNECT)
        transport.close()
        try:
            async with asyncio.timeout(timeout_s):
                await closed
        except TimeoutError:
            transport.abort()  # the broker does not read: still no will, DISCONNECT is queued

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker publishes the will."""
        self._end("aborted by the caller")

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._handle(self._reader.feed(data))
        except Exception as error:  # a malformed stream or a raising callback
            self._end(f"{type(error).__name__} while reading: {error}", error)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._connected = self._write_paused = False
        if self._disconnecting:
            error = ConnectionLost(self.client_id, "disconnected by the caller")
        elif self._end_error is not None:
            error = self.lost = self._end_error
        else:
            reason = f"connection error: {exc}" if exc else "connection closed by the broker"
            error = self.lost = ConnectionLost(self.client_id, reason)
            error.__cause__ = exc
        self._inflight.clear()
        subscribing, self._subscribing = self._subscribing, None
        futures = [self._connack, self._drained, *(subscribing or {}).values()]
        self._drained = None
        for future in futures:
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # read here: nobody may be waiting, keep the loop quiet
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        self._closed = None

    # ------------------------------------------------------------ internals

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)
            self._last_sent_ns = time.monotonic_ns()

    def _end(self, reason: str, cause: BaseException | None = None) -> None:
        self._connected = False
        if self._transport is None:
            return
        if self._end_error is None and not self._disconnecting:
            self._end_error = ConnectionLost(self.client_id, reason)
            self._end_error.__cause__ = cause
            # Said now, with ``connected``: the transport's connection_lost comes a loop turn
            # later, and a caller that saw the connection end must also see why.
            self.lost = self._end_error
        self._transport.abort()

    def _handle(self, packets: list[tuple[int, bytes]]) -> None:
        inflight = self._inflight
        ack_ns = 0
        for first, body in packets:
            kind = first >> 4
            if kind == 4:  # PUBACK
                published_ns = inflight.pop((body[0] << 8) | body[1], None)
                if published_ns is None:
                    continue  # not ours (any more): nothing to count
                self.acked += 1
                if self.on_ack is not None:
                    ack_ns = ack_ns or time.monotonic_ns()
                    self.on_ack(published_ns, ack_ns)
            elif kind == 3:
                self._on_publish(first, body)
            elif kind == 13:  # PINGRESP
                self._ping_sent_ns = 0
            elif kind == 9:
                self._on_suback(body)
            elif kind == 2 and self._connack is not None and not self._connack.done():
                self.session_present = bool(body[0] & 1)
                self._connack.set_result(body[1])
            else:
                raise ProtocolError(f"unexpected packet 0x{first:02x}", self.client_id)
        if not inflight and self._drained is not None:
            self._drained.set_result(None)
            self._drained = None

    def _on_publish(self, first: int, body: bytes) -> None:
        qos = (first >> 1) & 3
        topic_end = 2 + ((body[0] << 8) | body[1])
        topic = body[2:topic_end].decode()
        payload_start = topic_end + 2 if qos else topic_end
        if qos > 1:
            raise ProtocolError(f"incoming QoS {qos} on {topic!r}", self.client_id)
        self.received += 1
        handler = self._handler_for(topic)
        if handler is not None:
            handler(topic, body[payload_start:])
        if qos:
            self._write(_PUBACK + body[topic_end:payload_start])

    def _handler_for(self, topic: str) -> Callable[[str, bytes], None] | None:
        handlers = self._handlers
        if not handlers:
            return None
        handler = handlers.get(topic)
        if handler is None:
            for topic_filter, candidate in handlers.items():
                if candidate is not None and topic_matches(topic_filter, topic):
                    return candidate
        return handler

    def _on_suback(self, body: bytes) -> None:
        packet_id = (body[0] << 8) | body[1]
        granted = (self._subscribing or {}).pop(packet_id, None)
        if granted is None:
            raise ProtocolError(f"SUBACK for unknown packet id {packet_id}", self.client_id)
        if not granted.done():
            granted.set_result(body[2])

    def _schedule_keepalive(self, timer: _KeepaliveTimer) -> None:
        keepalive_ns = self.keepalive_s * _NS
        # PINGREQ within the last second before keepalive_s of silence (the timer's step).
        due_ns = self._last_sent_ns + keepalive_ns - _NS
        if self._ping_sent_ns:
            due_ns = min(due_ns, self._ping_sent_ns + keepalive_ns)
        timer.schedule(self, -(-due_ns // _NS))

    def _check_keepalive(self, now_ns: int, timer: _KeepaliveTimer) -> None:
        if not self._connected:
            return
        keepalive_ns = self.keepalive_s * _NS
        if self._ping_sent_ns and now_ns - self._ping_sent_ns >= keepalive_ns:
            self._end(f"no PINGRESP within keepalive_s={self.keepalive_s}")
            return
        if now_ns - self._last_sent_ns >= keepalive_ns - _NS:
            self._write(_PINGREQ)
            self._ping_sent_ns = self._ping_sent_ns or now_ns
        self._schedule_keepalive(timer)
