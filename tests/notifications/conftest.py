"""A tenant to address notifications from, a real SMTP server (aiosmtpd) and the fake SMS
gateway over real HTTP."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import fleet
from broker import free_port
from notifications import FakeSmsGateway
from storage import Pool

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # 08:00 in Hà Nội


@pytest.fixture
async def tenant_id(pool: Pool) -> int:
    async with pool.connection() as conn:
        tenant = await fleet.ensure_tenant(conn, f"t-{uuid.uuid4().hex[:8]}", "URENCO Hà Đông")
    return tenant.id


@dataclass
class SmtpHandler:
    """Keeps what arrives; ``reply`` answers DATA (a 4xx or 5xx line refuses the message)
    and ``refuse_recipients`` refuses RCPT for those addresses with 550."""

    received: list[Any] = field(default_factory=list)
    reply: str = "250 2.0.0 Ok: queued as TESTQ1"
    refuse_recipients: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse_recipients:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            self.received.append(envelope)
        return self.reply


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: SmtpHandler


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
async def sms_gateway() -> AsyncIterator[FakeSmsGateway]:
    async with FakeSmsGateway(api_key="test-sms-key") as gateway:
        yield gateway
