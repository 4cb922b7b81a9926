"""Whole WebSocket frames written straight to a client's socket, for the live feed's
positions ticks.

A tick sends the same positions frame to every client that follows a whole tenant. Through
ASGI each send is a task wake-up and five layers (Starlette, its exception wrapper,
uvicorn, the WebSocket codec, the transport), about 30 µs a client: with a thousand maps
at ten frames a second, a third of a core and a tick that takes 30 ms to go out. A server's
frames are not masked (RFC 6455 §5.1), so the bytes on the wire are the same for every
client: built once a tick, written with one ``transport.write`` per client.

This is the one module that knows uvicorn's sans-I/O WebSocket protocol (its transport,
its ``writable`` event, the connection state); with any other server it finds nothing and
the feed sends through ASGI as before. A socket is written only while it is open and
its transport holds nothing back (the kernel took all that came before), so a client
that reads slowly gets at most one frame waiting in the server; otherwise the caller
takes the ASGI path, where a slow client coalesces and is eventually closed (4408).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import State

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_SERVER_SEND = "sanitrack.server_send"


def text_frame(payload: bytes) -> bytes:
    """A whole, unmasked, uncompressed text frame: what a server sends for ``payload``."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


class ServerSendMiddleware:
    """Keeps the server's own ``send`` of each WebSocket in its scope, before any layer wraps
    it (pure ASGI: nothing else changes)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[_SERVER_SEND] = send
        await self.app(scope, receive, send)


class DirectSocket:
    """Writes whole frames to one client's socket while it is open and not backed up."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    def write(self, frame: bytes) -> bool:
        """Write ``frame`` now; False (nothing written) when the socket cannot take it."""
        protocol = self._protocol
        transport = protocol.transport
        if (
            protocol.writable.is_set()
            and not transport.get_write_buffer_size()  # the kernel took all before it
            and not protocol.close_sent
            and not protocol.disconnected
            and protocol.conn.state is State.OPEN
            and not transport.is_closing()
        ):
            transport.write(frame)
            return True
        return False


def direct_socket(scope: Scope) -> DirectSocket | None:
    """The client's socket when the server is uvicorn's sans-I/O WebSocket protocol (no
    compression negotiated); None otherwise."""
    protocol = getattr(scope.get(_SERVER_SEND), "__self__", None)
    if protocol is None or type(protocol).__name__ != "WebSocketsSansIOProtocol":
        return None
    required = ("transport", "writable", "close_sent", "disconnected", "conn")
    if not all(hasattr(protocol, name) for name in required):
        return None
    if getattr(protocol.conn, "extensions", None):  # per-message deflate: frames differ
        return None
    return DirectSocket(protocol)
