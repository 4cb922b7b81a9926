"""What an invoice is, as the rest of billing reads it: the seller, series, invoices with
their lines and references, and the document (everything printed or sent) of one invoice.

Money is whole VND (int). A line's VAT is its amount times its rate, rounded half up to
the đồng, once per line; an invoice's totals are the sums of its lines.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class InvoiceStatus(enum.StrEnum):
    """draft → issued (numbered) → sent (to the tax authority) → coded → delivered; an
    invoice is also cancelled (before delivery), adjusted or replaced."""

    DRAFT = "draft"
    ISSUED = "issued"
    SENT = "sent"
    CODED = "coded"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    ADJUSTED = "adjusted"
    REPLACED = "replaced"


class InvoiceKind(enum.StrEnum):
    ORIGINAL = "original"
    ADJUSTMENT = "adjustment"  # điều chỉnh
    REPLACEMENT = "replacement"  # thay thế


class InvoiceOrigin(enum.StrEnum):
    PERIOD = "period"  # a billing run
    ADHOC = "adhoc"  # work outside the plan
    MANUAL = "manual"
    CORRECTION = "correction"  # an adjustment or a replacement


class Template(enum.StrEnum):
    """Ký hiệu mẫu số."""

    VAT_INVOICE = "1"
    SALES_INVOICE = "2"
    OTHER = "5"  # other e-documents: receipts
    DELIVERY_NOTE = "6"


# Numbered, so printed and sent; not yet corrected or cancelled.
ISSUED_STATES = frozenset(
    {InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.CODED, InvoiceStatus.DELIVERED}
)
# Numbered at some time: everything but a draft.
NUMBERED_STATES = frozenset(InvoiceStatus) - {InvoiceStatus.DRAFT}

SERVICE_NAMES_VI = {
    "collection": "Dịch vụ thu gom, vận chuyển rác thải sinh hoạt",
    "recycling": "Dịch vụ thu gom rác tái chế",
    "hazardous": "Dịch vụ thu gom chất thải nguy hại",
    "extra": "Thu gom bổ sung ngoài lịch",
    "container_rental": "Thuê thùng chứa rác",
}


def vat_of(amount_vnd: int, vat_rate: str) -> int:
    """VAT on a line, rounded half away from zero to the đồng (negative lines too)."""
    if vat_rate in ("KCT", "0"):
        return 0
    scaled = abs(amount_vnd) * int(vat_rate)
    vat = (scaled + 50) // 100
    return vat if amount_vnd >= 0 else -vat


@dataclass(frozen=True, slots=True)
class Seller:
    legal_name: str
    tax_code: str
    address: str
    phone: str = ""
    email: str = ""
    bank_account: str = ""
    bank_name: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "legal_name": self.legal_name,
            "tax_code": self.tax_code,
            "address": self.address,
            "phone": self.phone,
            "email": self.email,
            "bank_account": self.bank_account,
            "bank_name": self.bank_name,
        }


@dataclass(frozen=True, slots=True)
class Series:
    id: int
    template: str
    symbol: str  # six characters: C25TAA
    year: int
    name: str
    next_number: int
    last_issued_at: dt.datetime | None
    active: bool
    rolled_from_id: int | None
    created_at: dt.datetime

    @property
    def used(self) -> bool:
        return self.next_number > 1

    @property
    def code(self) -> str:
        """Template and symbol as printed: 1C25TAA."""
        return self.template + self.symbol


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    id: int
    line_no: int
    service_point_id: int | None
    service: str
    description: str
    unit: str
    quantity: Decimal
    unit_price_vnd: Decimal | None
    amount_vnd: int  # before VAT; negative on a reducing adjustment
    vat_rate: str
    vat_vnd: int
    period_start: dt.date | None
    period_end: dt.date | None  # exclusive
    charge_ids: list[int]
    stop_visit_id: int | None
    proof: dict[str, Any] | None  # {"arrival_at", "departure_at", "lat", "lon", "vehicle"...}
    adjusts_line_id: int | None

    @property
    def total_vnd(self) -> int:
        return self.amount_vnd + self.vat_vnd


@dataclass(frozen=True, slots=True)
class InvoiceReference:
    """The invoice an adjustment or replacement refers to, as printed on it."""

    referenced_id: int
    relation: str  # adjusts | replaces
    template: str
    symbol: str
    number: int
    issue_date: dt.date


@dataclass(frozen=True, slots=True)
class Invoice:
    id: int
    customer_id: int
    kind: InvoiceKind
    origin: InvoiceOrigin
    status: InvoiceStatus
    billing_period: str | None
    period_start: dt.date | None
    period_end: dt.date | None
    billing_run_id: int | None
    series_id: int
    template: str | None
    symbol: str | None
    number: int | None
    issue_date: dt.date | None
    issued_at: dt.datetime | None
    seller_tax_code: str | None
    buyer_code: str
    buyer_name: str
    buyer_tax_code: str | None
    buyer_address: str
    buyer_email: str | None
    buyer_kind: str
    payment_method: str
    note: str
    subtotal_vnd: int
    vat_vnd: int
    total_vnd: int
    correction_reason: str | None
    provider_ref: str | None
    authority_code: str | None
    send_attempts: int
    sent_at: dt.datetime | None
    coded_at: dt.datetime | None
    delivered_at: dt.datetime | None
    delivery_channel: str | None
    cancelled_at: dt.datetime | None
    print_count: int
    last_printed_at: dt.datetime | None
    revision: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def number_text(self) -> str | None:
        """The number as printed: eight digits (00000123)."""
        return None if self.number is None else f"{self.number:08d}"

    @property
    def series_code(self) -> str | None:
        return None if self.template is None or self.symbol is None else self.template + self.symbol


# The columns of ``invoices`` in the order of Invoice's fields, for SELECTs.
INVOICE_COLUMNS = (
    "id, customer_id, kind, origin, status, billing_period, period_start, period_end,"
    " billing_run_id, series_id, template, symbol, number, issue_date, issued_at,"
    " seller_tax_code, buyer_code, buyer_name, buyer_tax_code, buyer_address, buyer_email,"
    " buyer_kind, payment_method, note, subtotal_vnd, vat_vnd, total_vnd, correction_reason,"
    " provider_ref, authority_code, send_attempts, sent_at, coded_at, delivered_at,"
    " delivery_channel, cancelled_at, print_count, last_printed_at, revision, created_at,"
    " updated_at"
)
LINE_COLUMNS = (
    "id, line_no, service_point_id, service, description, unit, quantity, unit_price_vnd,"
    " amount_vnd, vat_rate, vat_vnd, period_start, period_end, charge_ids, stop_visit_id,"
    " proof, adjusts_line_id"
)


def invoice_from_row(row: tuple[Any, ...]) -> Invoice:
    values = list(row)
    values[2] = InvoiceKind(values[2])
    values[3] = InvoiceOrigin(values[3])
    values[4] = InvoiceStatus(values[4])
    return Invoice(*values)


def line_from_row(row: tuple[Any, ...]) -> InvoiceLine:
    return InvoiceLine(*row)


@dataclass(frozen=True, slots=True)
class VatGroup:
    """The lines of one VAT rate, summed: what the invoice's tax summary prints."""

    vat_rate: str
    amount_vnd: int
    vat_vnd: int

    @property
    def total_vnd(self) -> int:
        return self.amount_vnd + self.vat_vnd


def vat_groups(lines: Iterable[InvoiceLine]) -> list[VatGroup]:
    """Per rate, in the order KCT, 0, 5, 8, 10."""
    sums: dict[str, list[int]] = {}
    for line in lines:
        amount, vat = sums.setdefault(line.vat_rate, [0, 0])
        sums[line.vat_rate] = [amount + line.amount_vnd, vat + line.vat_vnd]
    order = ["KCT", "0", "5", "8", "10"]
    return [VatGroup(rate, *sums[rate]) for rate in order if rate in sums]


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything printed on or sent for one invoice. ``seller`` is as issued (the
    current seller for a draft)."""

    invoice: Invoice
    lines: list[InvoiceLine]
    references: list[InvoiceReference]
    seller: Seller

    @property
    def vat_groups(self) -> list[VatGroup]:
        return vat_groups(self.lines)
