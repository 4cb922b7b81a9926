"""What the office sees of sending: rejections wait for the accountant, running out of
attempts stops, a K symbol ends sent, a cancelled invoice is never sent, an invoice that
cannot be made into XML is stopped, and another tenant's invoice is not found."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.einvoice import (
    FakeEInvoiceProvider,
    HttpEInvoiceProvider,
    SendReport,
    queue_for_sending,
    requeue,
    send_due,
)
from billing.errors import Conflict, NotFound
from storage import Pool
from tests.billing.einvoice_support import (
    NOW,
    POLL_S,
    at,
    attempts,
    posts,
    queued,
    sending,
    settings_for,
)
from tests.billing.invoice_support import new_series, new_tenant, seed_invoices


async def test_a_rejection_waits_for_the_accountant(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    tenant_id, (invoice_id,) = await queued(pool)
    fake.reject_next("Mã số thuế người bán không hợp lệ")
    settings = settings_for(fake)
    assert await send_due(pool, provider, NOW, settings) == SendReport(claimed=1, rejected=1)
    rejected = await sending(pool, invoice_id)
    assert (rejected.status, rejected.next_send_at, rejected.provider_ref) == ("issued", None, None)
    assert rejected.last_send_error == "HTTP 422: Mã số thuế người bán không hợp lệ"
    assert await send_due(pool, provider, at(30 * 86_400), settings) == SendReport()
    async with pool.connection() as conn:
        await requeue(conn, tenant_id, invoice_id, at(3600))
    requeued = await sending(pool, invoice_id)
    assert (requeued.next_send_at, requeued.send_attempts, requeued.last_send_error) == (
        at(3600),
        0,
        None,
    )
    assert await send_due(pool, provider, at(3600), settings) == SendReport(claimed=1, accepted=1)
    assert [s.state for s in fake.submissions] == ["rejected", "accepted"]
    assert (await sending(pool, invoice_id)).provider_ref == fake.submissions[1].provider_ref


async def test_a_rejection_by_the_authority_returns_the_invoice_to_issued(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    _, (invoice_id,) = await queued(pool)
    fake.reject_next("Sai định dạng ngày lập", when="coding")
    settings = settings_for(fake)
    assert await send_due(pool, provider, NOW, settings) == SendReport(claimed=1, accepted=1)
    report = await send_due(pool, provider, at(POLL_S), settings)
    assert report == SendReport(claimed=1, rejected=1)
    rejected = await sending(pool, invoice_id)
    assert (rejected.status, rejected.provider_ref, rejected.next_send_at) == ("issued", None, None)
    assert rejected.last_send_error == "Sai định dạng ngày lập"
    assert await attempts(pool, invoice_id) == [("submit", "accepted"), ("status", "rejected")]


async def test_out_of_attempts_stops_and_says_so(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    tenant_id, (invoice_id,) = await queued(pool)
    fake.fail_next(10, 500)
    settings = settings_for(fake, max_attempts=3)
    reports = []
    when: dt.datetime | None = NOW
    while when is not None:
        reports.append(await send_due(pool, provider, when, settings))
        when = (await sending(pool, invoice_id)).next_send_at
    assert [(r.retrying, r.stopped) for r in reports] == [(1, 0), (1, 0), (0, 1)]
    stopped = await sending(pool, invoice_id)
    assert (stopped.status, stopped.send_attempts, stopped.next_send_at) == ("issued", 3, None)
    assert stopped.last_send_error is not None
    assert stopped.last_send_error.startswith("stopped after 3 failed tries in a row: ")
    assert "HTTP 500" in stopped.last_send_error
    assert await send_due(pool, provider, at(30 * 86_400), settings) == SendReport()
    assert len(posts(fake)) == 3
    fake.fail_next(0)
    async with pool.connection() as conn:
        await requeue(conn, tenant_id, invoice_id, at(86_400))
    assert await send_due(pool, provider, at(86_400), settings, limit=1) == SendReport(
        claimed=1, retrying=1
    )  # the seven failures left in the fake's plan


async def test_a_k_series_invoice_ends_sent(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        series_id = await new_series(conn, tenant_id, symbol="K26TAA")
        (invoice_id,) = await seed_invoices(conn, tenant_id, series_id=series_id)
        await queue_for_sending(conn, tenant_id, [invoice_id], NOW)
    settings = settings_for(fake)
    assert await send_due(pool, provider, NOW, settings) == SendReport(claimed=1, accepted=1)
    sent = await sending(pool, invoice_id)
    assert (sent.status, sent.next_send_at, sent.authority_code) == ("sent", None, None)
    assert await send_due(pool, provider, at(30 * 86_400), settings) == SendReport()
    assert [r.method for r in fake.requests] == ["POST"]
    async with pool.connection() as conn:
        with pytest.raises(Conflict, match="nothing to send"):
            await requeue(conn, tenant_id, invoice_id, NOW)


async def test_a_cancelled_invoice_is_never_sent(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    tenant_id, (invoice_id,) = await queued(pool, status="cancelled")
    assert (await sending(pool, invoice_id)).next_send_at is None  # not queued
    async with pool.connection() as conn:
        # cancelled after it was queued
        await conn.execute("UPDATE invoices SET next_send_at = %s WHERE id = %s", (NOW, invoice_id))
        with pytest.raises(Conflict, match="cancelled"):
            await requeue(conn, tenant_id, invoice_id, NOW)
    assert await send_due(pool, provider, at(86_400), settings_for(fake)) == SendReport()
    assert fake.requests == []
    assert await attempts(pool, invoice_id) == []


async def test_an_invoice_whose_xml_cannot_be_made_is_stopped_for_the_office(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    tenant_id, (invoice_id,) = await queued(pool)
    async with pool.connection() as conn:
        # issued without the seller's details, and the company has none on file either
        await conn.execute("UPDATE invoices SET seller = NULL WHERE id = %s", (invoice_id,))
        await conn.execute("DELETE FROM sellers WHERE tenant_id = %s", (tenant_id,))
    report = await send_due(pool, provider, NOW, settings_for(fake))
    assert report == SendReport(claimed=1, stopped=1)
    stopped = await sending(pool, invoice_id)
    assert (stopped.status, stopped.next_send_at) == ("issued", None)
    assert stopped.last_send_error is not None
    assert stopped.last_send_error.startswith("cannot be sent: seller:")
    assert await attempts(pool, invoice_id) == [("submit", "failed")]
    assert fake.requests == []


async def test_another_tenants_invoice_is_not_found(pool: Pool) -> None:
    _, (invoice_id,) = await queued(pool)
    async with pool.connection() as conn:
        stranger = await new_tenant(conn)
        with pytest.raises(NotFound, match=str(invoice_id)):
            await requeue(conn, stranger, invoice_id, NOW)
        with pytest.raises(NotFound, match=str(invoice_id)):
            await queue_for_sending(conn, stranger, [invoice_id], NOW)
