"""Fixing invoices the way the law allows (domain-billing "E-invoices" §6): an issued
invoice is never edited or deleted.

- Before it reaches the buyer: cancel it (notice form 04/SS-HĐĐT); its charges are free
  to be invoiced again.
- After delivery, only the buyer's name or address wrong: a notice, no new invoice.
- Anything else: an adjustment (positive or negative lines; one may cover a buyer's several
  invoices of one month, list form 01/BK-ĐCTT) or a replacement, each drafted here,
  referencing the originals, and issued like any draft (billing.issuing).
- Terms changed back into an invoiced period: the charge run proposes the difference;
  accepting proposals drafts the adjustments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, errors
from pydantic import BaseModel, ConfigDict, Field

import audit
import notifications
from billing.billing_runs import period_label
from billing.drafts import NewLine, check_lines, insert_draft
from billing.errors import Conflict, InvalidValue, NotFound
from billing.invoice_models import (
    SERVICE_NAMES_VI,
    Invoice,
    InvoiceKind,
    InvoiceOrigin,
    InvoiceStatus,
)
from billing.invoices import audit_invoice, get_invoice, lines_of
from billing.periods import period_of

MAX_AGREEMENT_BYTES = 20 * 1024 * 1024
CORRECTABLE = frozenset(
    {
        InvoiceStatus.ISSUED,
        InvoiceStatus.SENT,
        InvoiceStatus.CODED,
        InvoiceStatus.DELIVERED,
        InvoiceStatus.ADJUSTED,
    }
)
CANCELLABLE = frozenset({InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.CODED})


class BuyerChanges(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=300)
    tax_code: str | None = Field(default=None, pattern=r"^([0-9]{10}(-[0-9]{3})?|[0-9]{12})$")
    address: str | None = Field(default=None, max_length=500)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class NewReplacement(BaseModel):
    """A replacement: the original's lines unless ``lines`` are given; the buyer as the
    original had it, with ``buyer``'s changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    buyer: BuyerChanges | None = None
    lines: list[NewLine] | None = None
    series_id: int | None = Field(default=None, ge=1)


class NewAdjustment(BaseModel):
    """An adjustment of one invoice, or of several of one buyer issued in one month."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice_ids: list[int] = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)
    lines: list[NewLine] = Field(min_length=1)
    series_id: int | None = Field(default=None, ge=1)


@dataclass(frozen=True, slots=True)
class Agreement:
    id: int
    invoice_id: int
    signed_on: dt.date
    signed_by: str
    filename: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Proposal:
    id: int
    customer_id: int
    invoice_id: int
    service_point_id: int
    period_start: dt.date
    period_end: dt.date
    service: str
    component: str
    invoiced_amount_vnd: int
    recomputed_amount_vnd: int
    vat_rate: str
    status: str
    adjustment_invoice_id: int | None
    created_at: dt.datetime

    @property
    def difference_vnd(self) -> int:
        return self.recomputed_amount_vnd - self.invoiced_amount_vnd


async def _notice(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_id: int,
    action: str,
    reason: str,
) -> int:
    cursor = await conn.execute(
        "INSERT INTO invoice_error_notices (tenant_id, invoice_id, action, reason, created_by,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, invoice_id, action, reason, actor.user_id, now),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not 1 <= len(reason) <= 2000:
        raise InvalidValue("reason: between 1 and 2000 characters")
    return reason


async def cancel_invoice(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_id: int,
    reason: str,
) -> Invoice:
    """Cancel an issued invoice that has not reached the buyer, with its notice; its
    charges may be invoiced again (a new invoice, a new number)."""
    reason = _check_reason(reason)
    invoice = await get_invoice(conn, tenant_id, invoice_id, for_update=True)
    if invoice.status == InvoiceStatus.DRAFT:
        raise Conflict(f"invoice_id: invoice {invoice_id} is a draft: delete it instead")
    if invoice.status not in CANCELLABLE:
        raise Conflict(
            f"invoice_id: invoice {invoice_id} is {invoice.status}; after delivery it is"
            " corrected by an adjustment or a replacement, never cancelled"
        )
    if invoice.kind != InvoiceKind.ORIGINAL:
        raise Conflict(
            f"invoice_id: invoice {invoice_id} is an {invoice.kind}; correct it with another"
            " adjustment or replacement"
        )
    await conn.execute(
        "UPDATE invoices SET status = 'cancelled', cancelled_at = %s, cancelled_by = %s,"
        " next_send_at = NULL, updated_at = %s, revision = revision + 1 WHERE id = %s",
        (now, actor.user_id, now, invoice_id),
    )
    await conn.execute(
        "UPDATE charges SET invoice_id = NULL WHERE tenant_id = %s AND invoice_id = %s",
        (tenant_id, invoice_id),
    )
    await _notice(conn, tenant_id, actor, now, invoice_id, "cancel", reason)
    await audit_invoice(
        conn,
        tenant_id,
        actor,
        now,
        (invoice_id, invoice.customer_id),
        "cancel",
        {"status": str(invoice.status)},
        {"status": "cancelled", "reason": reason},
    )
    return await get_invoice(conn, tenant_id, invoice_id)


async def explain_invoice(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_id: int,
    reason: str,
) -> int:
    """Only the buyer's name or address was wrong on a delivered invoice: a notice to the
    tax authority and the buyer, no new invoice. The notice's id."""
    reason = _check_reason(reason)
    invoice = await get_invoice(conn, tenant_id, invoice_id, for_update=True)
    if invoice.status not in CORRECTABLE:
        raise Conflict(f"invoice_id: invoice {invoice_id} is {invoice.status}")
    notice_id = await _notice(conn, tenant_id, actor, now, invoice_id, "explain", reason)
    await audit_invoice(
        conn,
        tenant_id,
        actor,
        now,
        (invoice_id, invoice.customer_id),
        "explain",
        None,
        {"notice_id": notice_id, "reason": reason},
    )
    return notice_id


async def _reference(
    conn: AsyncConnection[Any], invoice_id: int, original: Invoice, relation: str
) -> None:
    assert original.number is not None
    assert original.issue_date is not None
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO invoice_references (invoice_id, referenced_id, relation,"
                " referenced_template, referenced_symbol, referenced_number,"
                " referenced_issue_date) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    invoice_id,
                    original.id,
                    relation,
                    original.template,
                    original.symbol,
                    original.number,
                    original.issue_date,
                ),
            )
    except errors.UniqueViolation as exc:
        raise Conflict(
            f"invoice_id: invoice {original.id} already has a replacement (issued or drafted)"
        ) from exc


def _correctable(invoice: Invoice) -> None:
    if invoice.status not in CORRECTABLE:
        raise Conflict(
            f"invoice_ids: invoice {invoice.id} is {invoice.status}; only an issued invoice"
            " is adjusted or replaced"
        )


async def draft_replacement(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_id: int,
    new: NewReplacement,
) -> int:
    """Draft the replacement of an issued invoice; the original is marked replaced when
    the replacement is issued. The draft's id."""
    original = await get_invoice(conn, tenant_id, invoice_id, for_update=True)
    _correctable(original)
    if new.lines is None:
        lines = [
            NewLine(
                service=line.service,
                description=line.description,
                unit=line.unit,
                quantity=line.quantity,
                unit_price_vnd=line.unit_price_vnd,
                amount_vnd=line.amount_vnd,
                vat_rate=line.vat_rate,
                service_point_id=line.service_point_id,
                period_start=line.period_start,
                period_end=line.period_end,
            )
            for line in (await lines_of(conn, [invoice_id]))[invoice_id]
        ]
    else:
        lines = new.lines
        check_lines(lines, allow_negative=False)
    buyer = {
        "name": original.buyer_name,
        "tax_code": original.buyer_tax_code,
        "address": original.buyer_address,
        "email": original.buyer_email,
    }
    if new.buyer is not None:
        buyer |= new.buyer.model_dump(exclude_none=True)
    draft_id = await insert_draft(
        conn,
        tenant_id,
        actor,
        now,
        customer_id=original.customer_id,
        series_id=new.series_id or original.series_id,
        kind=InvoiceKind.REPLACEMENT,
        origin=InvoiceOrigin.CORRECTION,
        lines=lines,
        correction_reason=new.reason,
        buyer=buyer,
        period=(
            (original.billing_period, original.period_start, original.period_end)
            if original.billing_period and original.period_start and original.period_end
            else None
        ),
    )
    await _reference(conn, draft_id, original, "replaces")
    return draft_id


async def draft_adjustment(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    new: NewAdjustment,
) -> int:
    """Draft an adjustment of one issued invoice, or of several of one buyer issued in the
    same month (their list is printed with it). The draft's id."""
    originals = [
        await get_invoice(conn, tenant_id, i, for_update=True) for i in sorted(set(new.invoice_ids))
    ]
    for original in originals:
        _correctable(original)
    if len({o.customer_id for o in originals}) > 1:
        raise InvalidValue("invoice_ids: one adjustment covers the invoices of one buyer")
    months = {(o.issue_date.year, o.issue_date.month) for o in originals if o.issue_date}
    if len(months) > 1:
        raise InvalidValue(
            "invoice_ids: one adjustment covers invoices issued in one month (form 01/BK-ĐCTT)"
        )
    check_lines(new.lines, allow_negative=True)
    adjusted = {o.id for o in originals}
    adjustable_lines = await lines_of(conn, sorted(adjusted))
    line_ids = {line.id for lines in adjustable_lines.values() for line in lines}
    for index, line in enumerate(new.lines):
        if line.adjusts_line_id is not None and line.adjusts_line_id not in line_ids:
            raise InvalidValue(
                f"lines[{index}].adjusts_line_id: line {line.adjusts_line_id} is not on the"
                " invoices adjusted"
            )
    draft_id = await insert_draft(
        conn,
        tenant_id,
        actor,
        now,
        customer_id=originals[0].customer_id,
        series_id=new.series_id or originals[0].series_id,
        kind=InvoiceKind.ADJUSTMENT,
        origin=InvoiceOrigin.CORRECTION,
        lines=new.lines,
        correction_reason=new.reason,
    )
    for original in originals:
        await _reference(conn, draft_id, original, "adjusts")
    return draft_id


async def attach_agreement(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_id: int,
    *,
    signed_on: dt.date,
    signed_by: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> Agreement:
    """Keep the buyer's written agreement to a correction, with its SHA-256."""
    invoice = await get_invoice(conn, tenant_id, invoice_id)
    if invoice.kind == InvoiceKind.ORIGINAL:
        raise InvalidValue(f"invoice_id: invoice {invoice_id} is not an adjustment or replacement")
    if not 1 <= len(content) <= MAX_AGREEMENT_BYTES:
        raise InvalidValue(f"file: between 1 byte and {MAX_AGREEMENT_BYTES} bytes")
    if not 1 <= len(signed_by.strip()) <= 200:
        raise InvalidValue("signed_by: between 1 and 200 characters")
    if not 1 <= len(filename) <= 255:
        raise InvalidValue("filename: between 1 and 255 characters")
    digest = hashlib.sha256(content).hexdigest()
    cursor = await conn.execute(
        "INSERT INTO invoice_agreements (tenant_id, invoice_id, signed_on, signed_by, filename,"
        " content_type, size_bytes, sha256, content, uploaded_by, uploaded_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (invoice_id, sha256) DO UPDATE SET signed_on = EXCLUDED.signed_on"
        " RETURNING id",
        (
            tenant_id,
            invoice_id,
            signed_on,
            signed_by.strip(),
            filename,
            content_type[:100] or "application/octet-stream",
            len(content),
            digest,
            content,
            actor.user_id,
            now,
        ),
    )
    row = await cursor.fetchone()
    assert row is not None
    await audit_invoice(
        conn,
        tenant_id,
        actor,
        now,
        (invoice_id, invoice.customer_id),
        "attach_agreement",
        None,
        {"sha256": digest, "signed_by": signed_by.strip(), "signed_on": signed_on.isoformat()},
    )
    return Agreement(
        row[0], invoice_id, signed_on, signed_by.strip(), filename, len(content), digest
    )


_PROPOSAL_COLUMNS = (
    "p.id, p.customer_id, p.invoice_id, p.service_point_id, p.period_start, p.period_end,"
    " p.service, p.component, p.invoiced_amount_vnd, p.recomputed_amount_vnd, p.vat_rate,"
    " p.status, p.adjustment_invoice_id, p.created_at"
)


async def list_proposals(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    status: str = "proposed",
    customer_id: int | None = None,
    limit: int = 500,
) -> list[Proposal]:
    cursor = await conn.execute(
        f"SELECT {_PROPOSAL_COLUMNS} FROM adjustment_proposals p WHERE p.tenant_id = %s"
        " AND p.status = %s AND (%s::bigint IS NULL OR p.customer_id = %s)"
        " ORDER BY p.customer_id, p.period_start, p.id LIMIT %s",
        (tenant_id, status, customer_id, customer_id, limit),
    )
    return [Proposal(*row) for row in await cursor.fetchall()]


async def accept_proposals(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    proposal_ids: Sequence[int],
    reason: str,
) -> list[int]:
    """Draft the adjustments of the proposals: one per buyer and month of issue of the
    invoices adjusted. The drafts' ids; the proposals are accepted when they are issued."""
    reason = _check_reason(reason)
    cursor = await conn.execute(
        f"SELECT {_PROPOSAL_COLUMNS}, i.issue_date, i.series_id, sp.code"
        " FROM adjustment_proposals p"
        " JOIN invoices i ON i.id = p.invoice_id"
        " JOIN service_points sp ON sp.id = p.service_point_id"
        " WHERE p.tenant_id = %s AND p.id = ANY(%s) ORDER BY p.id FOR UPDATE OF p",
        (tenant_id, list(proposal_ids)),
    )
    rows = await cursor.fetchall()
    found = {row[0] for row in rows}
    for proposal_id in proposal_ids:
        if proposal_id not in found:
            raise NotFound(f"adjustment proposal {proposal_id} does not exist")
    groups: dict[tuple[int, int, int], list[tuple[Any, ...]]] = {}
    for row in rows:
        proposal = Proposal(*row[:14])
        if proposal.status != "proposed" or proposal.adjustment_invoice_id is not None:
            state = "drafted" if proposal.adjustment_invoice_id else proposal.status
            raise Conflict(f"proposal_ids: proposal {proposal.id} is already {state}")
        issue_date: dt.date = row[14]
        groups.setdefault((proposal.customer_id, issue_date.year, issue_date.month), []).append(row)
    drafts = []
    for group in groups.values():
        proposals = [Proposal(*row[:14]) for row in group]
        lines = [
            NewLine(
                service=p.service,
                description=(
                    f"Điều chỉnh {SERVICE_NAMES_VI.get(p.service, p.service).lower()}"
                    f" {period_label(period_of(p.period_start, p.period_end))} – {row[16]}"
                    f" ({p.component}): {p.invoiced_amount_vnd:,} → {p.recomputed_amount_vnd:,}"
                ).replace(",", "."),
                amount_vnd=p.difference_vnd,
                vat_rate=p.vat_rate,
                service_point_id=p.service_point_id,
                period_start=p.period_start,
                period_end=p.period_end,
            )
            for p, row in zip(proposals, group, strict=True)
        ]
        draft_id = await draft_adjustment(
            conn,
            tenant_id,
            actor,
            now,
            NewAdjustment(
                invoice_ids=sorted({p.invoice_id for p in proposals}),
                reason=reason,
                lines=lines,
                series_id=group[0][15],
            ),
        )
        await conn.execute(
            "UPDATE adjustment_proposals SET adjustment_invoice_id = %s, decided_by = %s,"
            " decided_at = %s WHERE id = ANY(%s)",
            (draft_id, actor.user_id, now, [p.id for p in proposals]),
        )
        drafts.append(draft_id)
    return drafts


async def dismiss_proposals(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    proposal_ids: Sequence[int],
) -> int:
    cursor = await conn.execute(
        "UPDATE adjustment_proposals SET status = 'dismissed', decided_by = %s, decided_at = %s"
        " WHERE tenant_id = %s AND id = ANY(%s) AND status = 'proposed'"
        " AND adjustment_invoice_id IS NULL RETURNING id, customer_id",
        (actor.user_id, now, tenant_id, list(proposal_ids)),
    )
    dismissed = await cursor.fetchall()
    await audit.record_many(
        conn,
        tenant_id,
        actor,
        now,
        [
            audit.Change("adjustment_proposal", row[0], "dismiss", None, None, customer_id=row[1])
            for row in dismissed
        ],
    )
    return len(dismissed)


class DeliveryChannel:
    EMAIL = "email"
    PRINT = "print"
    PORTAL = "portal"
    HANDOVER = "handover"
    ALL = ("email", "print", "portal", "handover")


async def mark_delivered(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    invoice_id: int,
    channel: str,
) -> Invoice:
    """The invoice reached the buyer. One with the tax authority's code (symbol C) only
    once coded; e-mail sends it through the outbox."""
    if channel not in DeliveryChannel.ALL:
        raise InvalidValue(f"channel: {channel!r}, allowed {', '.join(DeliveryChannel.ALL)}")
    invoice = await get_invoice(conn, tenant_id, invoice_id, for_update=True)
    with_code = (invoice.symbol or "C").startswith("C")
    ready = {InvoiceStatus.CODED} if with_code else {InvoiceStatus.ISSUED, InvoiceStatus.SENT}
    if invoice.status == InvoiceStatus.DELIVERED:
        return invoice
    if invoice.status not in ready:
        raise Conflict(
            f"invoice_id: invoice {invoice_id} is {invoice.status}"
            + ("; it reaches the buyer once the tax authority coded it" if with_code else "")
        )
    if channel == DeliveryChannel.EMAIL:
        if not invoice.buyer_email:
            raise InvalidValue("channel: the buyer has no e-mail address")
        await notifications.enqueue(
            conn,
            tenant_id,
            customer_id=invoice.customer_id,
            channel="email",
            recipient=invoice.buyer_email,
            subject=f"Hóa đơn điện tử {invoice.series_code} số {invoice.number_text}",
            body=(
                f"Kính gửi {invoice.buyer_name},\n\nCông ty gửi hóa đơn điện tử ký hiệu"
                f" {invoice.series_code}, số {invoice.number_text}, ngày"
                f" {invoice.issue_date:%d/%m/%Y}, tổng tiền thanh toán"
                f" {invoice.total_vnd:,} đồng.".replace(",", ".")
                + f"\nMã của cơ quan thuế: {invoice.authority_code or '—'}\n"
            ),
            dedupe_key=f"invoice-{invoice_id}",
            now=now,
        )
    await conn.execute(
        "UPDATE invoices SET status = 'delivered', delivered_at = %s, delivery_channel = %s,"
        " updated_at = %s, revision = revision + 1 WHERE id = %s",
        (now, channel, now, invoice_id),
    )
    await audit_invoice(
        conn,
        tenant_id,
        actor,
        now,
        (invoice_id, invoice.customer_id),
        "deliver",
        {"status": str(invoice.status)},
        {"status": "delivered", "channel": channel},
    )
    return await get_invoice(conn, tenant_id, invoice_id)
