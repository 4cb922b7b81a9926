"""Sending issued invoices to the e-invoice provider until the tax authority has coded them:
issued → sent (the provider took it) → coded (the authority's code is stored).

A round (``send_due``) is one ordered pipeline:

1. claim: due invoices are taken with ``FOR UPDATE SKIP LOCKED`` and their ``next_send_at``
   moved ``claim_timeout_s`` on, in one short transaction, so that two workers never
   send one invoice at the same time (a dead worker's claim runs out and another tries);
2. exchange: outside any transaction, an invoice without a ``provider_ref`` is submitted
   (with its idempotency key: a retry is never a second invoice), one with a reference is
   asked its status;
3. settle: in one short transaction per invoice, the answer is applied to the invoice as
   it is *now* (``billing.einvoice.settlement.settle``: a late or repeated answer is
   recognised) and the exchange is written to ``einvoice_attempts``.

Time is the ``now`` passed in, so tests replay timelines; ``run_einvoice_sender`` is the
worker's loop around rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection

from billing.einvoice.document import invoice_xml
from billing.einvoice.provider import (
    EInvoiceProvider,
    ProviderAnswer,
    ProviderError,
    ProviderUnavailable,
    Submission,
    idempotency_key,
)
from billing.einvoice.settings import EInvoiceSettings
from billing.einvoice.settlement import SENDABLE, Attempt, Outcome, SendingState, settle
from billing.errors import BillingError, Conflict, InvalidValue, NotFound
from billing.invoice_models import InvoiceDocument, InvoiceStatus
from billing.invoices import load_documents
from sanitrack.clock import Clock
from storage import Pool

log = logging.getLogger(__name__)

_DATABASE_RETRY_MAX_S = 60.0
_STATE_COLUMNS = (
    "status, symbol, provider_ref, authority_code, send_attempts, next_send_at,"
    " last_send_error, sent_at, coded_at"
)


@dataclass(frozen=True, slots=True)
class SendReport:
    """What one round did: each claimed invoice is counted once."""

    claimed: int = 0
    accepted: int = 0  # sent: waiting for its code (a K symbol: done)
    pending: int = 0
    coded: int = 0
    rejected: int = 0  # back to the accountant, with the provider's reason
    retrying: int = 0
    stopped: int = 0  # out of attempts, or unsendable: left to the office
    duplicate: int = 0
    unsettled: int = 0  # answered, but the result could not be written: tried again


# ---------------------------------------------------------------- rounds


@dataclass(frozen=True, slots=True)
class _Claimed:
    invoice_id: int
    submission: Submission | None  # None: ask about provider_ref
    provider_ref: str | None

    @property
    def operation(self) -> str:
        return "status" if self.submission is None else "submit"


async def send_due(
    pool: Pool,
    provider: EInvoiceProvider,
    now: dt.datetime,
    settings: EInvoiceSettings,
    *,
    limit: int | None = None,
    rng: random.Random | None = None,
) -> SendReport:
    """Send (or ask about) up to ``limit`` (default batch_max) invoices due at ``now``."""
    async with pool.connection() as conn:
        claimed, unsendable = await _claim_due(conn, now, limit or settings.batch_max, settings)
    outcomes: Counter[str] = Counter(stopped=unsendable)
    if not claimed and not unsendable:
        return SendReport()
    parallel = asyncio.Semaphore(settings.parallel_sends)

    async def send(item: _Claimed) -> None:
        async with parallel:
            result = await _exchange(provider, item)
        try:
            async with pool.connection() as conn, conn.transaction():
                outcomes[await _settle_stored(conn, item, result, now, settings, rng)] += 1
        except psycopg.Error as exc:
            # Its claim runs out and it is asked again: the idempotency key keeps it one.
            log.warning("einvoice: invoice %s: result not written: %s", item.invoice_id, exc)
            outcomes["unsettled"] += 1

    async with asyncio.TaskGroup() as tasks:
        for item in claimed:
            tasks.create_task(send(item), name=f"einvoice-{item.invoice_id}")
    return SendReport(claimed=len(claimed) + unsendable, **outcomes)


async def _claim_due(
    conn: AsyncConnection[Any], now: dt.datetime, limit: int, settings: EInvoiceSettings
) -> tuple[list[_Claimed], int]:
    """The invoices claimed, ready to exchange, and how many could not even be submitted
    (their XML could not be made: stopped, for the office)."""
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT id, tenant_id, provider_ref FROM invoices"
            " WHERE status IN ('issued', 'sent') AND next_send_at <= %s"
            " ORDER BY next_send_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
        rows = await cursor.fetchall()
        if not rows:
            return [], 0
        await conn.execute(
            "UPDATE invoices SET next_send_at = %s WHERE id = ANY(%s)",
            (now + dt.timedelta(seconds=settings.claim_timeout_s), [row[0] for row in rows]),
        )
        to_submit: dict[int, list[int]] = {}
        for invoice_id, tenant_id, provider_ref in rows:
            if provider_ref is None:
                to_submit.setdefault(tenant_id, []).append(invoice_id)
        submissions: dict[int, Submission] = {}
        unsendable: dict[int, str] = {}
        for tenant_id, ids in to_submit.items():
            try:
                documents = await load_documents(conn, tenant_id, ids)
            except BillingError as exc:
                unsendable |= dict.fromkeys(ids, str(exc))
                continue
            for document in documents:
                try:
                    submissions[document.invoice.id] = _submission(document, settings)
                except BillingError as exc:
                    unsendable[document.invoice.id] = str(exc)
        for invoice_id, reason in unsendable.items():
            await _unsendable(conn, invoice_id, now, reason)
        claimed = [
            _Claimed(invoice_id, submissions.get(invoice_id), provider_ref)
            for invoice_id, _, provider_ref in rows
            if invoice_id not in unsendable
        ]
        return claimed, len(unsendable)


def _submission(document: InvoiceDocument, settings: EInvoiceSettings) -> Submission:
    invoice = document.invoice
    if (
        invoice.template is None
        or invoice.symbol is None
        or invoice.number is None
        or invoice.seller_tax_code is None
    ):
        raise InvalidValue(f"invoice_id: invoice {invoice.id} has no number")
    return Submission(
        idempotency_key=idempotency_key(
            invoice.seller_tax_code, invoice.template, invoice.symbol, invoice.number
        ),
        seller_tax_code=invoice.seller_tax_code,
        template=invoice.template,
        symbol=invoice.symbol,
        number=invoice.number,
        xml=invoice_xml(document, provider_tax_code=settings.provider_tax_code),
    )


async def _unsendable(
    conn: AsyncConnection[Any], invoice_id: int, now: dt.datetime, reason: str
) -> None:
    log.error("einvoice: invoice %s cannot be sent: %s", invoice_id, reason)
    await conn.execute(
        "UPDATE invoices SET next_send_at = NULL, last_send_error = %s, updated_at = %s"
        " WHERE id = %s",
        (f"cannot be sent: {reason}", now, invoice_id),
    )
    await _record(conn, invoice_id, now, Attempt("submit", Outcome.FAILED, reason))


async def _exchange(provider: EInvoiceProvider, item: _Claimed) -> ProviderAnswer | ProviderError:
    try:
        if item.submission is not None:
            return await provider.submit(item.submission)
        assert item.provider_ref is not None
        return await provider.status(item.provider_ref)
    except ProviderError as exc:
        return exc
    except Exception as exc:
        # A provider's bug must not stop the other invoices: tried again, then stopped.
        log.exception("einvoice: invoice %s: the provider raised", item.invoice_id)
        return ProviderUnavailable(f"{type(exc).__name__}: {exc}")


async def _settle_stored(
    conn: AsyncConnection[Any],
    item: _Claimed,
    result: ProviderAnswer | ProviderError,
    now: dt.datetime,
    settings: EInvoiceSettings,
    rng: random.Random | None,
) -> str:
    cursor = await conn.execute(
        f"SELECT {_STATE_COLUMNS} FROM invoices WHERE id = %s FOR UPDATE", (item.invoice_id,)
    )
    row = await cursor.fetchone()
    assert row is not None  # an issued invoice is never deleted
    state = SendingState(InvoiceStatus(row[0]), *row[1:])
    new, attempt = settle(state, item.operation, result, now, settings, rng)
    if attempt.conflict:
        log.error("einvoice: invoice %s: %s", item.invoice_id, attempt.detail)
    if new != state:
        await conn.execute(
            "UPDATE invoices SET status = %s, provider_ref = %s, authority_code = %s,"
            " send_attempts = %s, next_send_at = %s, last_send_error = %s, sent_at = %s,"
            " coded_at = %s, updated_at = %s WHERE id = %s",
            (
                new.status,
                new.provider_ref,
                new.authority_code,
                new.send_attempts,
                new.next_send_at,
                new.last_send_error,
                new.sent_at,
                new.coded_at,
                now,
                item.invoice_id,
            ),
        )
    await _record(conn, item.invoice_id, now, attempt)
    if attempt.outcome is Outcome.FAILED:
        return "retrying" if new.next_send_at is not None else "stopped"
    return attempt.outcome.value


async def _record(
    conn: AsyncConnection[Any], invoice_id: int, now: dt.datetime, attempt: Attempt
) -> None:
    await conn.execute(
        "INSERT INTO einvoice_attempts (invoice_id, attempted_at, operation, outcome, detail)"
        " VALUES (%s, %s, %s, %s, %s)",
        (invoice_id, now, attempt.operation, attempt.outcome, attempt.detail[:2000]),
    )


# ---------------------------------------------------------------- the office's side


async def queue_for_sending(
    conn: AsyncConnection[Any], tenant_id: int, invoice_ids: Sequence[int], now: dt.datetime
) -> list[int]:
    """Make issued invoices due at ``now`` (an invoice already queued keeps its time);
    returns those queued. Other statuses are left alone; NotFound for another tenant's."""
    ids = list(dict.fromkeys(invoice_ids))
    cursor = await conn.execute(
        "SELECT id FROM invoices WHERE tenant_id = %s AND id = ANY(%s)", (tenant_id, ids)
    )
    found = {row[0] for row in await cursor.fetchall()}
    missing = [invoice_id for invoice_id in ids if invoice_id not in found]
    if missing:
        raise NotFound(f"invoice {missing[0]} does not exist")
    cursor = await conn.execute(
        "UPDATE invoices SET next_send_at = %s, updated_at = %s WHERE tenant_id = %s"
        " AND id = ANY(%s) AND status = 'issued' AND number IS NOT NULL"
        " AND next_send_at IS NULL RETURNING id",
        (now, now, tenant_id, ids),
    )
    return sorted(row[0] for row in await cursor.fetchall())


async def requeue(
    conn: AsyncConnection[Any], tenant_id: int, invoice_id: int, now: dt.datetime
) -> None:
    """Send again at ``now`` an invoice that was rejected or ran out of attempts, with a
    fresh count of attempts. Conflict when it has nothing left to send."""
    cursor = await conn.execute(
        "SELECT status, symbol FROM invoices WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, invoice_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    status, symbol = InvoiceStatus(row[0]), row[1]
    if status not in SENDABLE or (status is InvoiceStatus.SENT and symbol.startswith("K")):
        raise Conflict(f"invoice_id: invoice {invoice_id} is {status}: nothing to send")
    await conn.execute(
        "UPDATE invoices SET next_send_at = %s, send_attempts = 0, last_send_error = NULL,"
        " updated_at = %s WHERE id = %s",
        (now, now, invoice_id),
    )


# ---------------------------------------------------------------- the worker


async def run_einvoice_sender(
    pool: Pool,
    provider: EInvoiceProvider,
    settings: EInvoiceSettings,
    clock: Clock,
    stop_event: asyncio.Event,
) -> None:
    """The worker's loop until ``stop_event``: a round every ``send_interval_s``, at once
    again while rounds come back full; a database outage is waited out with jittered
    back-off."""
    outage_s = 0.0
    while not stop_event.is_set():
        try:
            report = await send_due(pool, provider, clock.now(), settings)
        except psycopg.Error as exc:
            outage_s = min(_DATABASE_RETRY_MAX_S, max(1.0, outage_s * 2))
            log.warning("einvoice: database unavailable (%s); retry in %.0f s", exc, outage_s)
            await _wait(stop_event, outage_s / 2 + random.uniform(0, outage_s / 2))
            continue
        outage_s = 0.0
        if report.claimed:
            # a round's routine counts are for debugging; what needs the office is a warning
            trouble = report.rejected or report.retrying or report.stopped
            (log.warning if trouble else log.debug)(
                "einvoice: %s sent, %s coded, %s rejected, %s to retry, %s stopped",
                report.accepted + report.pending,
                report.coded,
                report.rejected,
                report.retrying,
                report.stopped,
            )
        if report.claimed < settings.batch_max:
            await _wait(stop_event, settings.send_interval_s)


async def _wait(stop_event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop_event.wait(), seconds)
