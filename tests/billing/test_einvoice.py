"""Sending issued invoices to the fake provider over real HTTP and a real PostgreSQL: the
way to coded, retries with back-off, lost, slow and repeated answers, two workers at once
and the worker's loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

from billing.einvoice import (
    FakeEInvoiceProvider,
    HttpEInvoiceProvider,
    SendReport,
    invoice_xml,
    queue_for_sending,
    run_einvoice_sender,
    send_due,
)
from billing.invoices import load_documents
from sanitrack.clock import SystemClock
from storage import Pool
from tests.billing.einvoice_support import (
    CLAIM_S,
    NOW,
    POLL_S,
    at,
    attempts,
    expected_code,
    posts,
    queued,
    sending,
    settings_for,
    until,
)
from tests.billing.invoice_support import SELLER, new_tenant, seed_invoices


async def test_issued_to_sent_to_pending_to_coded(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    tenant_id, (invoice_id,) = await queued(pool)
    fake.code_after_polls(1)
    settings = settings_for(fake)
    assert await send_due(pool, provider, NOW, settings) == SendReport(claimed=1, accepted=1)
    sent = await sending(pool, invoice_id)
    assert (sent.status, sent.sent_at, sent.next_send_at) == ("sent", NOW, at(POLL_S))
    assert sent.provider_ref == fake.submissions[0].provider_ref
    assert await send_due(pool, provider, at(POLL_S - 1), settings) == SendReport()
    assert await send_due(pool, provider, at(POLL_S), settings) == SendReport(claimed=1, pending=1)
    assert (await sending(pool, invoice_id)).next_send_at == at(2 * POLL_S)
    report = await send_due(pool, provider, at(2 * POLL_S), settings)
    assert report == SendReport(claimed=1, coded=1)
    coded = await sending(pool, invoice_id)
    assert (coded.status, coded.authority_code, coded.coded_at, coded.next_send_at) == (
        "coded",
        expected_code(),
        at(2 * POLL_S),
        None,
    )
    assert len(coded.authority_code or "") == 34
    assert await attempts(pool, invoice_id) == [
        ("submit", "accepted"),
        ("status", "pending"),
        ("status", "coded"),
    ]
    # What the provider got is the invoice's XML, byte for byte, under its idempotency key.
    async with pool.connection() as conn:
        (document,) = await load_documents(conn, tenant_id, [invoice_id])
    (submission,) = fake.submissions
    assert submission.xml == invoice_xml(document)
    assert submission.idempotency_key == f"{SELLER.tax_code}-1C26TAA-00000001"
    assert await send_due(pool, provider, at(86_400), settings) == SendReport()


async def test_failures_are_retried_with_back_off_then_coded_once(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    _, (invoice_id,) = await queued(pool)
    fake.fail_next(2, 503)
    settings, rng = settings_for(fake), random.Random(5)
    assert await send_due(pool, provider, NOW, settings, rng=rng) == SendReport(
        claimed=1, retrying=1
    )
    first = await sending(pool, invoice_id)
    assert (first.status, first.send_attempts) == ("issued", 1)
    assert first.last_send_error is not None
    assert "HTTP 503" in first.last_send_error
    assert first.next_send_at is not None
    assert at(30) <= first.next_send_at <= at(60)  # retry_initial_s, jittered down
    assert await send_due(
        pool, provider, first.next_send_at - dt.timedelta(seconds=1), settings
    ) == (SendReport())
    await send_due(pool, provider, first.next_send_at, settings, rng=rng)
    second = await sending(pool, invoice_id)
    assert second.send_attempts == 2
    assert second.next_send_at is not None
    delay = second.next_send_at - first.next_send_at
    assert dt.timedelta(seconds=60) <= delay <= dt.timedelta(seconds=120)  # doubled
    report = await send_due(pool, provider, second.next_send_at, settings, rng=rng)
    assert report == SendReport(claimed=1, accepted=1)
    sent = await sending(pool, invoice_id)
    assert (sent.status, sent.send_attempts, sent.last_send_error) == ("sent", 0, None)
    assert sent.next_send_at is not None
    await send_due(pool, provider, sent.next_send_at, settings)
    assert (await sending(pool, invoice_id)).status == "coded"
    assert len(fake.submissions) == 1
    assert len(posts(fake)) == 3
    assert [outcome for _, outcome in await attempts(pool, invoice_id)] == [
        "failed",
        "failed",
        "accepted",
        "coded",
    ]


async def test_a_lost_answer_is_retried_under_the_same_key_and_stays_one_submission(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    _, (invoice_id,) = await queued(pool)
    fake.drop_after_accept_next(1)
    settings = settings_for(fake)
    assert await send_due(pool, provider, NOW, settings) == SendReport(claimed=1, retrying=1)
    assert len(fake.submissions) == 1  # it was taken, the answer was lost
    lost = await sending(pool, invoice_id)
    assert (lost.status, lost.provider_ref) == ("issued", None)
    assert lost.next_send_at is not None
    assert await send_due(pool, provider, lost.next_send_at, settings) == SendReport(
        claimed=1, accepted=1
    )
    sent = await sending(pool, invoice_id)
    (submission,) = fake.submissions
    assert sent.provider_ref == submission.provider_ref
    assert posts(fake) == [submission.idempotency_key] * 2
    assert sent.next_send_at is not None
    await send_due(pool, provider, sent.next_send_at, settings)
    assert (await sending(pool, invoice_id)).authority_code == expected_code()


async def test_a_coding_answered_twice_leaves_one_coded_invoice(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    _, (invoice_id,) = await queued(pool)
    settings = settings_for(fake)
    await send_due(pool, provider, NOW, settings)
    fake.answer_twice = True
    # A worker asks; its answer is late, so late that its claim runs out and another
    # worker asks again: both are told "coded".
    late = asyncio.create_task(send_due(pool, provider, at(POLL_S), settings))
    (submission,) = fake.submissions
    await until(lambda: submission.polls == 1)
    other = await send_due(pool, provider, at(POLL_S + CLAIM_S), settings)
    first = await late
    assert other.claimed == first.claimed == 1
    assert (first.coded + other.coded, first.duplicate + other.duplicate) == (1, 1)
    coded = await sending(pool, invoice_id)
    assert (coded.status, coded.authority_code, coded.last_send_error) == (
        "coded",
        expected_code(),
        None,
    )
    outcomes = [outcome for _, outcome in await attempts(pool, invoice_id)]
    assert outcomes[0] == "accepted"
    assert sorted(outcomes[1:]) == ["coded", "duplicate"]
    assert [r.method for r in fake.requests] == ["POST", "GET", "GET"]


async def test_a_slow_provider_is_a_temporary_failure(
    pool: Pool, fake: FakeEInvoiceProvider
) -> None:
    _, (invoice_id,) = await queued(pool)
    settings = settings_for(fake, timeout_s=0.3, claim_timeout_s=CLAIM_S)
    fake.delay_s = 1.0
    async with HttpEInvoiceProvider.from_settings(settings) as provider:
        started = asyncio.get_running_loop().time()
        assert await send_due(pool, provider, NOW, settings) == SendReport(claimed=1, retrying=1)
        assert asyncio.get_running_loop().time() - started < 0.9
        slow = await sending(pool, invoice_id)
        assert slow.last_send_error == "provider: no answer within 0.3 s"
        assert slow.next_send_at is not None
        fake.delay_s = 0
        report = await send_due(pool, provider, slow.next_send_at, settings)
    assert report == SendReport(claimed=1, accepted=1)
    (submission,) = fake.submissions  # the slow try was taken: the retry found it
    assert (await sending(pool, invoice_id)).provider_ref == submission.provider_ref


async def test_two_workers_at_once_submit_each_invoice_once(
    pool: Pool, fake: FakeEInvoiceProvider, provider: HttpEInvoiceProvider
) -> None:
    _, ids = await queued(pool, 12)
    fake.delay_s = 0.05
    settings = settings_for(fake, parallel_sends=2)

    async def worker() -> list[SendReport]:
        """Rounds of two until one finds nothing due."""
        reports = [await send_due(pool, provider, NOW, settings, limit=2)]
        while reports[-1].claimed:
            reports.append(await send_due(pool, provider, NOW, settings, limit=2))
        return reports

    first, second = await asyncio.gather(worker(), worker())
    reports = first + second
    assert sum(r.claimed for r in reports) == sum(r.accepted for r in reports) == 12
    keys = posts(fake)
    assert len(keys) == len(set(keys)) == 12
    assert len(fake.submissions) == 12
    for invoice_id in ids:
        assert (await sending(pool, invoice_id)).status == "sent"
        assert await attempts(pool, invoice_id) == [("submit", "accepted")]


async def test_the_worker_loop_codes_what_is_queued_and_stops(
    pool: Pool, fake: FakeEInvoiceProvider
) -> None:
    clock = SystemClock()
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        ids = await seed_invoices(conn, tenant_id, 3)
        await queue_for_sending(conn, tenant_id, ids, clock.now())
    settings = settings_for(fake, send_interval_s=0.05, poll_interval_s=0.05, batch_max=2)
    stop = asyncio.Event()
    async with HttpEInvoiceProvider.from_settings(settings) as provider:
        worker = asyncio.create_task(run_einvoice_sender(pool, provider, settings, clock, stop))
        deadline = asyncio.get_running_loop().time() + 10
        while [(await sending(pool, i)).status for i in ids] != ["coded"] * 3:
            assert asyncio.get_running_loop().time() < deadline, "not coded in time"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(worker, 5)
    assert len(fake.submissions) == 3
