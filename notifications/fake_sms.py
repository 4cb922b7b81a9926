"""A local SMS gateway speaking the protocol of ``notifications.sms`` over real HTTP, for
tests and the demo: it records what it is sent, and can be told to fail or be slow.

    async with FakeSmsGateway(api_key="k") as gateway:
        sender = SmsGateway(gateway.url, "k")
        ...
        gateway.messages  # what arrived, once per client_ref

Run on its own: ``python -m notifications.fake_sms --port 9099 --api-key demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

MAX_HEADER_LINES = 100
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedSms:
    id: str
    to: str
    text: str
    client_ref: str


class FakeSmsGateway:
    def __init__(self, *, api_key: str = "fake-sms-key", host: str = "127.0.0.1", port: int = 0):
        self.api_key = api_key
        self.host = host
        self.port = port
        self.messages: list[ReceivedSms] = []
        self.requests = 0  # every POST to /sms, repeats and refusals included
        self.delay_s = 0.0  # each answer waits this long
        self._failures: list[int] = []  # statuses to answer the next requests with
        self._ids = itertools.count(1)
        self._by_ref: dict[str, ReceivedSms] = {}
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/sms"

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` requests with ``status`` instead of taking them."""
        self._failures.extend([status] * count)

    async def __aenter__(self) -> FakeSmsGateway:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        handlers = list(self._handlers)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            # Closed by __aexit__: end quietly (asyncio reports a cancelled handler).
            pass
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection is done."""
        request_line = await reader.readline()
        if not request_line:
            return False
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY_BYTES:
            await self._answer(writer, 413, {"error": "too large"}, close=True)
            return False
        body = await reader.readexactly(length)
        keep_open = headers.get("connection", "").lower() != "close"
        status, answer = self._handle(method, path, headers, body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        await self._answer(writer, status, answer, close=not keep_open)
        return keep_open

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if path != "/sms":
            return 404, {"error": "not found"}
        if method != "POST":
            return 405, {"error": "POST only"}
        self.requests += 1
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "bad api key"}
        if self._failures:
            return self._failures.pop(0), {"error": "told to fail"}
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {"error": "not JSON"}
        fields = ("to", "text", "client_ref")
        if not isinstance(request, dict) or not all(
            isinstance(request.get(f), str) and request[f] for f in fields
        ):
            return 400, {"error": "to, text and client_ref are required strings"}
        repeat = self._by_ref.get(request["client_ref"])
        if repeat is not None:
            return 200, {"id": repeat.id, "repeat": True}
        message = ReceivedSms(f"fake-{next(self._ids)}", *(request[f] for f in fields))
        self._by_ref[message.client_ref] = message
        self.messages.append(message)
        return 200, {"id": message.id}

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter, status: int, answer: dict[str, Any], *, close: bool
    ) -> None:
        payload = json.dumps(answer).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()


async def _main(host: str, port: int, api_key: str) -> None:
    async with FakeSmsGateway(api_key=api_key, host=host, port=port) as gateway:
        print(f"fake SMS gateway on {gateway.url} (key {api_key!r})", flush=True)
        seen = 0
        while True:
            await asyncio.sleep(0.5)
            for message in gateway.messages[seen:]:
                print(f"SMS {message.id} to {message.to}: {message.text}", flush=True)
            seen = len(gateway.messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9099)
    parser.add_argument("--api-key", default="fake-sms-key")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port, args.api_key))


if __name__ == "__main__":
    main()
