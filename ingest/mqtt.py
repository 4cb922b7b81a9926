"""The MQTT side of ingest: endpoint settings, a persistent session, manual acks, pausing.

This is the one module that touches aiomqtt's and paho's internals, for three
things aiomqtt does not expose: manual acknowledgements (paho has them),
pausing reads so the broker, not our memory, holds the backlog, and taking
queued messages without a task per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    # 5 for Mosquitto/EMQX (Receive Maximum bounds what is in flight); amqtt speaks 3.1.1.
    protocol: int = 5

    @classmethod
    def from_url(cls, url: str, *, protocol: int = 5) -> MqttEndpoint:
        parts = urlsplit(url)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8883 if parts.scheme == "mqtts" else 1883),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts",
            protocol=protocol,
        )


def session_client(
    endpoint: MqttEndpoint, client_id: str, receive_maximum: int, session_expiry_s: int
) -> aiomqtt.Client:
    """A client with a persistent session and manual acks, not yet connected.

    Manual acks are switched on before CONNECT: messages the broker kept for
    us arrive straight after CONNACK and must not be acknowledged unread.
    """
    client = subscriber_client(endpoint, client_id, receive_maximum, session_expiry_s)
    client._client.manual_ack_set(True)
    return client


def subscriber_client(
    endpoint: MqttEndpoint,
    client_id: str,
    receive_maximum: int,
    session_expiry_s: int | None = None,
) -> aiomqtt.Client:
    """A subscriber bounded by Receive Maximum (MQTT 5), not yet connected; its session is
    kept ``session_expiry_s`` after a disconnect, or is a clean one when that is None."""
    persistent = session_expiry_s is not None
    tls_params = aiomqtt.TLSParameters() if endpoint.tls else None
    if endpoint.protocol == 5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = receive_maximum
        if persistent:
            properties.SessionExpiryInterval = session_expiry_s
        return aiomqtt.Client(
            endpoint.host,
            endpoint.port,
            username=endpoint.username,
            password=endpoint.password,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=not persistent,
            properties=properties,
            tls_params=tls_params,
        )
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V311,
        clean_session=not persistent,
        tls_params=tls_params,
    )


async def messages(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Message]:
    """The client's messages; those already queued are taken at once.

    aiomqtt's own iterator creates a task and runs ``asyncio.wait`` for every message,
    which cost about a fifth of the ingest's CPU with tens of thousands of devices
    (bench/load.py); here it is used only to wait while the queue is empty, which is also
    where a lost connection shows.
    """
    queue = client._queue
    waiting = client.messages
    while True:
        yield queue.get_nowait() if not queue.empty() else await anext(waiting)


def ack_function(client: aiomqtt.Client) -> Any:
    return client._client.ack


class ReadPause:
    """Stop reading the socket, so TCP flow control pushes back on the broker."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._fd: int | None = None

    @property
    def paused(self) -> bool:
        return self._fd is not None

    def pause(self) -> None:
        sock = self._client._client.socket()
        if sock is None or self._fd is not None:
            return
        self._fd = sock.fileno()
        asyncio.get_running_loop().remove_reader(self._fd)

    def resume(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        sock = self._client._client.socket()
        if sock is None or sock.fileno() != fd:
            return  # the connection was replaced meanwhile; its reader is fresh
        asyncio.get_running_loop().add_reader(fd, self._read)

    def _read(self) -> None:
        # Same as aiomqtt's own reader (client.py, _on_socket_open).
        paho = self._client._client
        try:
            paho.loop_read()
        except Exception as exc:
            disconnected = self._client._disconnected
            if not disconnected.done():
                disconnected.set_exception(exc)
