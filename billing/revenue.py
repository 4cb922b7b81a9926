"""The revenue report: what a company invoiced over a date range, by service, area,
customer class, collector and month, with the amounts of each VAT rate; what is still
draft, apart; paid and outstanding once payments exist.

What counts as revenue: the lines of numbered invoices that stand (issued, sent, coded,
delivered, adjusted); an adjustment's lines add with their sign; a replaced invoice is out
and its replacement in; cancelled invoices are out; drafts are not revenue yet and are
summed apart (by their billing period, as they have no issue date). The lines are read from
``revenue_lines`` (migration 0015), which triggers keep with the service point's area,
collector and class as they were when the invoice was issued: one narrow table, so a month
of a million lines sums in about half a second.

Two bases: ``issue_date`` (accounting revenue: invoices issued from ``date_from`` to
``date_to``, both included) and ``service_period`` (lines whose service period starts from
``date_from`` to ``date_to``, both included; a line without its own period takes its
invoice's, else the issue date).

Paid: read from ``payment_allocations`` when that table exists, in the shape this module
expects of it (see ``PAYMENT_ALLOCATIONS``); until then ``paid_vnd`` and
``outstanding_vnd`` are None.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from billing.errors import InvalidValue, NotFound
from billing.invoice_models import SERVICE_NAMES_VI

MAX_RANGE_DAYS = 366
VAT_RATES = ("KCT", "0", "5", "8", "10")  # the order a report prints them in
# The expected shape of the payments' table, once it exists: one row per amount of a
# payment applied to an invoice (a reversal is a negative row). An invoice's paid amount is
# the sum of its rows; in a group it is split over the invoice's lines in proportion to
# their totals, rounded to the đồng per line.
PAYMENT_ALLOCATIONS = "payment_allocations"  # (invoice_id bigint, amount_vnd bigint)
# Sorting and counting a month's lines wants more than the default 4 MB; JIT compiling
# costs more than it saves on a query that runs once.
_SETTINGS = "SELECT set_config('work_mem', '128MB', true), set_config('jit', 'off', true)"
# A draft has no issue date: its billing period's start, else the company's date it was made.
_DRAFT_DATE = "coalesce(period_start, (created_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)"


class RevenueBasis(enum.StrEnum):
    ISSUE_DATE = "issue_date"  # accounting revenue: invoices issued in the range
    SERVICE_PERIOD = "service_period"  # lines whose service period starts in the range


class RevenueGroup(enum.StrEnum):
    SERVICE = "service"
    AREA = "area"
    CUSTOMER_CLASS = "customer_class"
    COLLECTOR = "collector"
    MONTH = "month"  # of the issue date, or of the service period's start


GROUP_HEADERS_VI = {
    RevenueGroup.SERVICE: "Dịch vụ",
    RevenueGroup.AREA: "Địa bàn",
    RevenueGroup.CUSTOMER_CLASS: "Nhóm khách hàng",
    RevenueGroup.COLLECTOR: "Nhân viên thu gom",
    RevenueGroup.MONTH: "Tháng",
}
BASIS_NAMES_VI = {
    RevenueBasis.ISSUE_DATE: "theo ngày lập hóa đơn",
    RevenueBasis.SERVICE_PERIOD: "theo kỳ dịch vụ",
}
# Classes are the company's own codes; by default a point's class is its customer's kind.
CLASS_NAMES_VI = {
    "household": "Hộ gia đình",
    "business_household": "Hộ kinh doanh",
    "business": "Doanh nghiệp",
    "agency": "Cơ quan, đơn vị",
}
NO_COLLECTOR_VI = "Chưa phân công"
NO_AREA_VI = "Chưa có địa bàn"
NO_POINT_VI = "Không gắn điểm thu"  # a line without a service point has no class
TOTAL_VI = "Tổng cộng"


@dataclass(frozen=True, slots=True)
class VatAmounts:
    amount_vnd: int  # before VAT
    vat_vnd: int

    @property
    def total_vnd(self) -> int:
        return self.amount_vnd + self.vat_vnd


@dataclass(frozen=True, slots=True)
class RevenueRow:
    """One group's revenue, or the report's total (``keys`` all None, label "Tổng cộng").
    ``keys`` hold, per group of the report: the service, the area's code, the class, the
    collector's code, the month ("2026-06"); None where there is none (no collector)."""

    keys: tuple[str | None, ...]
    labels: tuple[str, ...]
    invoices: int  # distinct invoices with a line in the group
    lines: int
    amount_vnd: int  # before VAT
    vat_vnd: int
    by_vat_rate: dict[str, VatAmounts]  # in VAT_RATES order, rates present only
    paid_vnd: int | None  # None: no payments table yet
    outstanding_vnd: int | None

    @property
    def total_vnd(self) -> int:
        return self.amount_vnd + self.vat_vnd


@dataclass(frozen=True, slots=True)
class RevenueReport:
    company: str
    date_from: dt.date
    date_to: dt.date  # included
    basis: RevenueBasis
    group_by: tuple[RevenueGroup, ...]
    rows: list[RevenueRow]
    total: RevenueRow
    drafts_vnd: int  # drafts of the range, VAT included: not issued, so not revenue yet
    draft_invoices: int

    @property
    def vat_rates(self) -> list[str]:
        return list(self.total.by_vat_rate)

    @property
    def payments_known(self) -> bool:
        return self.total.paid_vnd is not None


async def revenue_report(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    date_from: dt.date,
    date_to: dt.date,
    basis: RevenueBasis | str,
    group_by: Sequence[RevenueGroup | str],
) -> RevenueReport:
    """The revenue of ``tenant_id`` from ``date_from`` to ``date_to`` (both included, at
    most 366 days) on ``basis``, a row per combination of ``group_by`` present (none: the
    total only). Runs in the caller's transaction, or its own; sets work_mem and jit for it."""
    basis, groups = _validated(date_from, date_to, basis, group_by)
    params = {"tenant": tenant_id, "from": date_from, "to": date_to}
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT coalesce(s.legal_name, t.name) FROM tenants t"
            " LEFT JOIN sellers s ON s.tenant_id = t.id WHERE t.id = %s",
            (tenant_id,),
        )
        company = await cursor.fetchone()
        if company is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        await conn.execute(_SETTINGS)
        cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (PAYMENT_ALLOCATIONS,))
        payments = await cursor.fetchone()
        with_paid = bool(payments and payments[0])
        cursor = await conn.execute(_report_sql(basis, groups, with_paid), params)
        parts = await cursor.fetchall()
        cursor = await conn.execute(
            "SELECT count(*), coalesce(sum(total_vnd), 0)::bigint FROM invoices"
            f" WHERE tenant_id = %(tenant)s AND status = 'draft'"
            f" AND {_DRAFT_DATE} BETWEEN %(from)s AND %(to)s",
            params,
        )
        drafts = await cursor.fetchone()
        labels = await _labels(conn, tenant_id, groups, parts)
    rows, total = _fold(groups, parts, labels, with_paid)
    return RevenueReport(
        company=str(company[0]),
        date_from=date_from,
        date_to=date_to,
        basis=basis,
        group_by=groups,
        rows=rows,
        total=total,
        drafts_vnd=int(drafts[1]) if drafts else 0,
        draft_invoices=int(drafts[0]) if drafts else 0,
    )


def _validated(
    date_from: dt.date,
    date_to: dt.date,
    basis: RevenueBasis | str,
    group_by: Sequence[RevenueGroup | str],
) -> tuple[RevenueBasis, tuple[RevenueGroup, ...]]:
    if date_to < date_from:
        raise InvalidValue(
            f"date_to: {date_to.isoformat()} is before date_from {date_from.isoformat()}"
        )
    days = (date_to - date_from).days + 1
    if days > MAX_RANGE_DAYS:
        raise InvalidValue(
            f"date_to: the range is {days} days, at most {MAX_RANGE_DAYS} (from"
            f" {date_from.isoformat()} to {date_to.isoformat()})"
        )
    try:
        basis = RevenueBasis(basis)
    except ValueError:
        allowed = ", ".join(RevenueBasis)
        raise InvalidValue(f"basis: {basis!r} is not one of {allowed}") from None
    if isinstance(group_by, str):  # a lone "area" would read as five one-letter groups
        raise InvalidValue(f"group_by: {group_by!r} is not a list of groups")
    groups: list[RevenueGroup] = []
    for group in group_by:
        try:
            groups.append(RevenueGroup(group))
        except ValueError:
            allowed = ", ".join(RevenueGroup)
            raise InvalidValue(f"group_by: {group!r} is not one of {allowed}") from None
    return basis, tuple(dict.fromkeys(groups))


def _key_columns(basis: RevenueBasis, groups: tuple[RevenueGroup, ...]) -> list[str]:
    day = "r.issue_date" if basis == RevenueBasis.ISSUE_DATE else "r.service_start"
    columns = {
        RevenueGroup.SERVICE: "r.service",
        RevenueGroup.AREA: "r.area_id",
        RevenueGroup.CUSTOMER_CLASS: "r.customer_class",
        RevenueGroup.COLLECTOR: "r.collector_staff_id",
        # a date's month as the date of its first day (to_char would cost twice as much)
        RevenueGroup.MONTH: f"date_trunc('month', {day}::timestamp)::date",
    }
    return [columns[group] for group in groups]


def _report_sql(basis: RevenueBasis, groups: tuple[RevenueGroup, ...], with_paid: bool) -> str:
    """One statement, so one snapshot, in two parts. 'rate': per group and VAT rate, the
    lines, their sums and the invoices that have no other line (which add up). 'invoices':
    per group and overall, the distinct invoices among the other lines (which do not: an
    invoice may have lines in two groups or at two rates)."""
    day = "r.issue_date" if basis == RevenueBasis.ISSUE_DATE else "r.service_start"
    where = f"r.tenant_id = %(tenant)s AND {day} BETWEEN %(from)s AND %(to)s"
    keys = _key_columns(basis, groups)
    selected = "".join(f"{key}, " for key in keys)
    by_rate = ", ".join(str(n) for n in range(2, len(keys) + 3))
    paid, paid_join, paid_with = "NULL::bigint", "", ""
    if with_paid:
        # The invoices' paid amounts, each split over its lines by their share of its total.
        paid_with = (
            "WITH paid AS (SELECT a.invoice_id, sum(a.amount_vnd) AS paid_vnd, i.total_vnd"
            f" FROM {PAYMENT_ALLOCATIONS} a JOIN invoices i ON i.id = a.invoice_id"
            " WHERE i.tenant_id = %(tenant)s GROUP BY a.invoice_id, i.total_vnd) "
        )
        paid_join = " LEFT JOIN paid p ON p.invoice_id = r.invoice_id"
        paid = (
            "coalesce(sum(round(p.paid_vnd::numeric * (r.amount_vnd + r.vat_vnd)"
            " / nullif(p.total_vnd, 0))), 0)::bigint"
        )
    listed = ", ".join(keys)
    if keys:  # the groups' and the total's: grouping() tells which is which
        is_total = f"grouping({listed}) <> 0"
        grouping_sets = f" GROUP BY GROUPING SETS (({listed}), ())"
    else:
        is_total, grouping_sets = "true", ""
    return (
        f"{paid_with}SELECT 'rate', {selected}r.vat_rate, count(*),"
        " count(*) FILTER (WHERE r.sole_line), sum(r.amount_vnd)::bigint,"
        f" sum(r.vat_vnd)::bigint, {paid}, false"
        f" FROM revenue_lines r{paid_join} WHERE {where} GROUP BY {by_rate}"
        f" UNION ALL SELECT 'invoices', {selected}NULL, NULL, count(DISTINCT r.invoice_id),"
        f" NULL, NULL, NULL, {is_total}"
        f" FROM revenue_lines r WHERE {where} AND NOT r.sole_line{grouping_sets}"
    )


async def _labels(
    conn: AsyncConnection[Any],
    tenant_id: int,
    groups: tuple[RevenueGroup, ...],
    parts: list[tuple[Any, ...]],
) -> dict[tuple[RevenueGroup, Any], tuple[str | None, str]]:
    """(group, value as summed) -> (key, label): codes and names of areas and collectors."""
    labels: dict[tuple[RevenueGroup, Any], tuple[str | None, str]] = {}
    for index, group in enumerate(groups, start=1):
        values = {part[index] for part in parts}
        if group in (RevenueGroup.AREA, RevenueGroup.COLLECTOR):
            table, name_column = ("areas", "name")
            if group == RevenueGroup.COLLECTOR:
                table, name_column = ("staff", "full_name")
            cursor = await conn.execute(
                f"SELECT id, code, {name_column} FROM {table}"
                " WHERE tenant_id = %s AND id = ANY(%s)",
                (tenant_id, [v for v in values if v is not None]),
            )
            found = {row[0]: (row[1], f"{row[1]} – {row[2]}") for row in await cursor.fetchall()}
            # an id no longer there (deleted meanwhile) still gets a row of its own
            labels.update({(group, v): found.get(v, (str(v), f"#{v}")) for v in values})
            none = NO_AREA_VI if group == RevenueGroup.AREA else NO_COLLECTOR_VI
            labels[(group, None)] = (None, none)
        elif group == RevenueGroup.SERVICE:
            labels.update({(group, v): (v, SERVICE_NAMES_VI.get(v, v)) for v in values})
        elif group == RevenueGroup.CUSTOMER_CLASS:
            labels.update({(group, v): (v, CLASS_NAMES_VI.get(v, v)) for v in values if v})
            labels[(group, None)] = (None, NO_POINT_VI)
        else:
            labels.update({(group, v): (f"{v:%Y-%m}", f"{v:%m/%Y}") for v in values if v})
    return labels


def _sort_key(groups: tuple[RevenueGroup, ...], row: RevenueRow) -> tuple[Any, ...]:
    """Services in the order invoices list them; areas, classes, collectors by code, the
    ones without last; months in order."""
    services = list(SERVICE_NAMES_VI)
    parts: list[Any] = []
    for group, key in zip(groups, row.keys, strict=True):
        rank = services.index(key) if group == RevenueGroup.SERVICE and key in services else 0
        parts.append((key is None, rank, key or ""))
    return tuple(parts)


def _fold(
    groups: tuple[RevenueGroup, ...],
    parts: list[tuple[Any, ...]],
    labels: dict[tuple[RevenueGroup, Any], tuple[str | None, str]],
    with_paid: bool,
) -> tuple[list[RevenueRow], RevenueRow]:
    """The statement's parts as rows: a group's rates folded into one row with its
    invoices; the total adds the rows up, but for its own count of invoices."""
    width = len(groups)
    sums: dict[tuple[Any, ...], dict[str, _Sums]] = {}  # group -> VAT rate -> sums
    invoices: dict[tuple[Any, ...], int] = {}
    total_sums: dict[str, _Sums] = {}
    total_invoices = 0
    for part, *values in parts:
        group = tuple(values[:width])
        vat_rate, lines, invoice_count, amount, vat, paid, is_total = values[width:]
        if part == "rate":
            sums.setdefault(group, {})[vat_rate] = _Sums(lines, amount, vat, paid or 0)
            total_sums[vat_rate] = total_sums.get(vat_rate, _Sums()) + sums[group][vat_rate]
        if not is_total:
            invoices[group] = invoices.get(group, 0) + invoice_count
        if part == "rate" or is_total:  # sole invoices add up; the others are counted once
            total_invoices += invoice_count
    rows = []
    for group, rates in sums.items() if groups else ():
        named = [labels[(g, value)] for g, value in zip(groups, group, strict=True)]
        keys = tuple(key for key, _ in named)
        texts = tuple(text for _, text in named)
        rows.append(_row(keys, texts, invoices[group], rates, with_paid))
    rows.sort(key=lambda row: _sort_key(groups, row))
    no_keys: tuple[str | None, ...] = (None,) * width
    total = _row(no_keys, (TOTAL_VI,) * max(width, 1), total_invoices, total_sums, with_paid)
    return rows, total


@dataclass(frozen=True, slots=True)
class _Sums:
    lines: int = 0
    amount_vnd: int = 0
    vat_vnd: int = 0
    paid_vnd: int = 0

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(
            self.lines + other.lines,
            self.amount_vnd + other.amount_vnd,
            self.vat_vnd + other.vat_vnd,
            self.paid_vnd + other.paid_vnd,
        )


def _row(
    keys: tuple[str | None, ...],
    labels: tuple[str, ...],
    invoices: int,
    rates: dict[str, _Sums],
    with_paid: bool,
) -> RevenueRow:
    order = [rate for rate in VAT_RATES if rate in rates] + sorted(set(rates) - set(VAT_RATES))
    summed = sum((rates[rate] for rate in order), _Sums())
    paid = summed.paid_vnd if with_paid else None
    return RevenueRow(
        keys=keys,
        labels=labels,
        invoices=invoices,
        lines=summed.lines,
        amount_vnd=summed.amount_vnd,
        vat_vnd=summed.vat_vnd,
        by_vat_rate={
            rate: VatAmounts(rates[rate].amount_vnd, rates[rate].vat_vnd) for rate in order
        },
        paid_vnd=paid,
        outstanding_vnd=None if paid is None else summed.amount_vnd + summed.vat_vnd - paid,
    )
