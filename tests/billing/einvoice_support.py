"""Issued invoices queued for the e-invoice sender, and reading back what it did, for the
tests of billing.einvoice."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from billing.einvoice import EInvoiceSettings, FakeEInvoiceProvider, queue_for_sending
from billing.einvoice.fake import authority_code
from storage import Pool
from tests.billing.invoice_support import SELLER, new_tenant, seed_invoices

NOW = dt.datetime(2026, 7, 2, 3, 0, tzinfo=dt.UTC)
POLL_S = 300.0
CLAIM_S = 600.0


def at(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def settings_for(fake: FakeEInvoiceProvider, **overrides: Any) -> EInvoiceSettings:
    values: dict[str, Any] = {
        "timeout_s": 5.0,
        "max_attempts": 4,
        "retry_initial_s": 60,
        "retry_max_s": 600,
        "poll_interval_s": POLL_S,
        "claim_timeout_s": CLAIM_S,
    }
    return fake.settings(**(values | overrides))


@dataclass(frozen=True)
class Sending:
    status: str
    provider_ref: str | None
    authority_code: str | None
    send_attempts: int
    next_send_at: dt.datetime | None
    last_send_error: str | None
    sent_at: dt.datetime | None
    coded_at: dt.datetime | None


async def queued(pool: Pool, count: int = 1, **options: Any) -> tuple[int, list[int]]:
    """A tenant's issued invoices, queued for sending at NOW."""
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        ids = await seed_invoices(conn, tenant_id, count, **options)
        assert await queue_for_sending(conn, tenant_id, ids, NOW) == [
            i for i in ids if options.get("status", "issued") == "issued"
        ]
    return tenant_id, ids


async def sending(pool: Pool, invoice_id: int) -> Sending:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT status, provider_ref, authority_code, send_attempts, next_send_at,"
            " last_send_error, sent_at, coded_at FROM invoices WHERE id = %s",
            (invoice_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return Sending(*row)


async def attempts(pool: Pool, invoice_id: int) -> list[tuple[str, str]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT operation, outcome FROM einvoice_attempts WHERE invoice_id = %s ORDER BY id",
            (invoice_id,),
        )
        return [(row[0], row[1]) for row in await cursor.fetchall()]


def expected_code(number: int = 1, symbol: str = "C26TAA") -> str:
    return authority_code(SELLER.tax_code, "1", symbol, number)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def posts(fake: FakeEInvoiceProvider) -> list[str | None]:
    return [r.idempotency_key for r in fake.requests if r.method == "POST"]
