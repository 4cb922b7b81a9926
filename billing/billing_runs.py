"""Billing periods and billing runs: one draft invoice per customer for a period, from the
period's charges that no issued invoice holds.

A run computes the period's charges (billing.charge_runs), replaces the period's drafts
and drafts again, all in the caller's transaction, in a few set-based statements: a
million service points take a minute, not an hour. Running it again for the same period
gives the same drafts and never a second invoice. A closed period is locked: no run, no
draft, no charge written for it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

import audit
from billing.charge_runs import compute_charges, period_is_closed
from billing.errors import Conflict, InvalidValue, NotFound
from billing.invoice_models import SERVICE_NAMES_VI
from billing.invoices import require_seller
from billing.periods import Period, period_starting
from billing.series import get_series
from customers.models import BillingPeriod

UNIT_NAMES_VI = {
    "person": "người",
    "household": "hộ",
    "kg": "kg",
    "m3": "m³",
    "tonne": "tấn",
    "lift": "lượt",
    "contract": "hợp đồng",
}
# progress(stage, done, total): stage "charges" counts service points, "drafts" invoices
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class BillingRun:
    id: int
    billing_period: str
    period_start: dt.date
    period_end: dt.date
    series_id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    points: int
    invoices_drafted: int
    drafts_replaced: int  # drafts of an earlier run for the period, drafted again
    postpaid_waiting: int  # postpaid customers not drafted: their period is not over yet
    charges_invoiced: int  # already on an issued invoice: left alone
    total_vnd: int  # of the drafts, VAT included
    problems_count: int
    problems: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class BillingPeriodState:
    billing_period: str
    period_start: dt.date
    period_end: dt.date
    status: str
    closed_at: dt.datetime | None
    drafts: int
    issued: int


def period_label(period: Period) -> str:
    """How a line names its period: "tháng 06/2026", "quý 2/2026", "năm 2026"."""
    if period.billing_period == BillingPeriod.MONTHLY:
        return f"tháng {period.start.month:02d}/{period.start.year}"
    if period.billing_period == BillingPeriod.QUARTERLY:
        return f"quý {(period.start.month - 1) // 3 + 1}/{period.start.year}"
    return f"năm {period.start.year}"


_DROP_DRAFTS = """
WITH drafts AS (
    SELECT id FROM invoices
     WHERE tenant_id = %(tenant)s AND origin = 'period' AND status = 'draft'
       AND billing_period = %(kind)s AND period_start = %(start)s),
lines AS (DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM drafts))
DELETE FROM invoices WHERE id IN (SELECT id FROM drafts)
"""
# A line per service point, service and VAT rate, its components summed; numbered per
# customer in the collector's walking order.
_RUN_LINES = """
CREATE TEMP TABLE run_lines ON COMMIT DROP AS
SELECT c.customer_id, c.service_point_id, c.service, c.vat_rate,
       sum(c.amount_vnd)::bigint AS amount_vnd,
       CASE WHEN c.vat_rate IN ('KCT', '0') THEN 0
            ELSE (sum(c.amount_vnd)::bigint * c.vat_rate::integer + 50) / 100 END AS vat_vnd,
       max(c.quantity) AS quantity, min(c.unit) AS unit,
       array_agg(c.id ORDER BY c.component) AS charge_ids,
       sp.code AS point_code, sp.address,
       row_number() OVER (PARTITION BY c.customer_id
                          ORDER BY sp.book_order NULLS LAST, sp.code, c.service, c.vat_rate)
           AS line_no
  FROM charges c JOIN service_points sp ON sp.id = c.service_point_id
  JOIN customers cu ON cu.id = c.customer_id
 WHERE c.tenant_id = %(tenant)s AND c.period_start = %(start)s AND c.period_end = %(end)s
   AND c.invoice_id IS NULL AND (NOT %(postpone)s OR cu.billing_mode = 'prepaid')
 GROUP BY c.customer_id, c.service_point_id, c.service, c.vat_rate, sp.code, sp.address,
          sp.book_order
HAVING sum(c.amount_vnd) > 0
"""
_POSTPAID_WAITING = """
SELECT count(DISTINCT c.customer_id) FROM charges c JOIN customers cu ON cu.id = c.customer_id
 WHERE c.tenant_id = %(tenant)s AND c.period_start = %(start)s AND c.period_end = %(end)s
   AND c.invoice_id IS NULL AND c.amount_vnd > 0 AND cu.billing_mode = 'postpaid'
"""
_DRAFT = """
WITH totals AS (
    SELECT customer_id, sum(amount_vnd) AS subtotal, sum(vat_vnd) AS vat,
           min(address) FILTER (WHERE line_no = 1) AS first_address
      FROM run_lines GROUP BY customer_id),
drafted AS (
    INSERT INTO invoices (tenant_id, customer_id, kind, origin, status, billing_period,
                          period_start, period_end, billing_run_id, series_id, buyer_code,
                          buyer_name, buyer_tax_code, buyer_address, buyer_email, buyer_kind,
                          subtotal_vnd, vat_vnd, total_vnd, created_by, created_at, updated_at)
    SELECT %(tenant)s, t.customer_id, 'original', 'period', 'draft', %(kind)s, %(start)s,
           %(end)s, %(run)s, %(series)s, cu.code, cu.name, cu.tax_code,
           coalesce(nullif(cu.billing_address, ''), t.first_address, ''), cu.email, cu.kind,
           t.subtotal, t.vat, t.subtotal + t.vat, %(user)s, %(now)s, %(now)s
      FROM totals t JOIN customers cu ON cu.id = t.customer_id
    RETURNING id, customer_id, total_vnd)
, lines AS (
    INSERT INTO invoice_lines (invoice_id, line_no, service_point_id, service, description,
                               unit, quantity, unit_price_vnd, amount_vnd, vat_rate, vat_vnd,
                               period_start, period_end, charge_ids)
    SELECT d.id, l.line_no, l.service_point_id, l.service,
           coalesce(%(services)s::jsonb ->> l.service, l.service) || ' ' || %(label)s
               || ' – ' || l.point_code,
           coalesce(%(units)s::jsonb ->> l.unit, l.unit), l.quantity,
           CASE WHEN l.quantity > 0 THEN round(l.amount_vnd / l.quantity, 2) END,
           l.amount_vnd, l.vat_rate, l.vat_vnd, %(start)s, %(end)s, l.charge_ids
      FROM run_lines l JOIN drafted d USING (customer_id))
SELECT count(*), coalesce(sum(total_vnd), 0) FROM drafted
"""


async def run_billing(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    billing_period: BillingPeriod | str,
    period_start: dt.date,
    series_id: int,
    *,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> BillingRun:
    """Bill every customer billed ``billing_period`` for the period starting
    ``period_start``: compute the charges, then one draft per customer owed something
    that no issued invoice covers yet, to be issued on ``series_id``.

    A service is invoiced once done: while the period is not over on ``today`` (the
    company's date; ``now``'s date when not given), only prepaid customers are drafted,
    and postpaid ones are counted as waiting."""
    period = period_starting(period_start, billing_period)
    kind = str(period.billing_period)
    if await period_is_closed(conn, tenant_id, period.start, period.end):
        raise Conflict(f"period_start: the {kind} period {period.start.isoformat()} is closed")
    series = await get_series(conn, tenant_id, series_id)
    if not series.active:
        raise InvalidValue(f"series_id: series {series.code} is retired")
    await require_seller(conn, tenant_id)
    cursor = await conn.execute(
        "INSERT INTO billing_runs (tenant_id, billing_period, period_start, period_end,"
        " series_id, started_by, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, kind, period.start, period.end, series_id, actor.user_id, now),
    )
    row = await cursor.fetchone()
    assert row is not None
    run_id = int(row[0])

    charges = await compute_charges(
        conn,
        tenant_id,
        period.start,
        kind,
        now=now,
        progress=None if progress is None else lambda done, total: progress("charges", done, total),
    )
    params = {
        "tenant": tenant_id,
        "kind": kind,
        "start": period.start,
        "end": period.end,
        "run": run_id,
        "series": series_id,
        "user": actor.user_id,
        "now": now,
        "label": period_label(period),
        "services": Jsonb(SERVICE_NAMES_VI),
        "units": Jsonb(UNIT_NAMES_VI),
        "postpone": (today or now.date()) < period.end,
    }
    replaced = (await conn.execute(_DROP_DRAFTS, params)).rowcount
    await conn.execute("DROP TABLE IF EXISTS pg_temp.run_lines")
    await conn.execute(_RUN_LINES, params)
    cursor = await conn.execute("SELECT count(DISTINCT customer_id) FROM run_lines")
    counted = await cursor.fetchone()
    to_draft = int(counted[0]) if counted else 0
    if progress is not None:
        progress("drafts", 0, to_draft)
    cursor = await conn.execute(_DRAFT, params)
    drafted_row = await cursor.fetchone()
    assert drafted_row is not None
    drafted, total_vnd = int(drafted_row[0]), int(drafted_row[1])
    waiting = 0
    if params["postpone"]:
        cursor = await conn.execute(_POSTPAID_WAITING, params)
        waiting_row = await cursor.fetchone()
        waiting = int(waiting_row[0]) if waiting_row else 0
    await conn.execute("DROP TABLE pg_temp.run_lines")
    if progress is not None:
        progress("drafts", drafted, to_draft)
    problems = [
        {"service_point_id": p.point_id, "service": p.service, "reason": p.reason}
        for p in charges.problems
    ]
    cursor = await conn.execute(
        "UPDATE billing_runs SET finished_at = %s, points = %s, invoices_drafted = %s,"
        " drafts_replaced = %s, postpaid_waiting = %s, charges_invoiced = %s, total_vnd = %s,"
        " problems_count = %s, problems = %s WHERE id = %s",
        (
            now,
            charges.points,
            drafted,
            replaced,
            waiting,
            charges.rows_invoiced,
            total_vnd,
            charges.problems_count,
            Jsonb(problems),
            run_id,
        ),
    )
    run = BillingRun(
        id=run_id,
        billing_period=kind,
        period_start=period.start,
        period_end=period.end,
        series_id=series_id,
        started_at=now,
        finished_at=now,
        points=charges.points,
        invoices_drafted=drafted,
        drafts_replaced=replaced,
        postpaid_waiting=waiting,
        charges_invoiced=charges.rows_invoiced,
        total_vnd=total_vnd,
        problems_count=charges.problems_count,
        problems=problems,
    )
    await audit.record(
        conn,
        tenant_id,
        actor,
        now,
        audit.Change(
            "billing_run",
            run_id,
            "run",
            None,
            {
                "billing_period": kind,
                "period_start": period.start.isoformat(),
                "series_id": series_id,
                "invoices_drafted": drafted,
                "drafts_replaced": replaced,
                "postpaid_waiting": waiting,
                "total_vnd": total_vnd,
            },
        ),
    )
    return run


_RUN_COLUMNS = (
    "id, billing_period, period_start, period_end, series_id, started_at, finished_at, points,"
    " invoices_drafted, drafts_replaced, postpaid_waiting, charges_invoiced, total_vnd,"
    " problems_count, problems"
)


async def list_billing_runs(
    conn: AsyncConnection[Any], tenant_id: int, *, limit: int = 50
) -> list[BillingRun]:
    cursor = await conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM billing_runs WHERE tenant_id = %s ORDER BY id DESC LIMIT %s",
        (tenant_id, limit),
    )
    return [BillingRun(*row) for row in await cursor.fetchall()]


async def get_billing_run(conn: AsyncConnection[Any], tenant_id: int, run_id: int) -> BillingRun:
    cursor = await conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM billing_runs WHERE tenant_id = %s AND id = %s",
        (tenant_id, run_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"billing run {run_id} does not exist")
    return BillingRun(*row)


async def period_state(
    conn: AsyncConnection[Any], tenant_id: int, billing_period: BillingPeriod | str, start: dt.date
) -> BillingPeriodState:
    period = period_starting(start, billing_period)
    cursor = await conn.execute(
        "SELECT coalesce((SELECT status FROM billing_periods WHERE tenant_id = %(t)s"
        "   AND billing_period = %(k)s AND period_start = %(s)s), 'open'),"
        " (SELECT closed_at FROM billing_periods WHERE tenant_id = %(t)s"
        "   AND billing_period = %(k)s AND period_start = %(s)s),"
        " count(*) FILTER (WHERE status = 'draft'), count(*) FILTER (WHERE number IS NOT NULL)"
        " FROM invoices WHERE tenant_id = %(t)s AND origin = 'period' AND billing_period = %(k)s"
        " AND period_start = %(s)s",
        {"t": tenant_id, "k": str(period.billing_period), "s": period.start},
    )
    row = await cursor.fetchone()
    assert row is not None
    return BillingPeriodState(
        str(period.billing_period), period.start, period.end, row[0], row[1], row[2], row[3]
    )


async def close_period(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    billing_period: BillingPeriod | str,
    start: dt.date,
) -> BillingPeriodState:
    """Lock a period: Conflict while drafts of it are left (issue or delete them first)."""
    state = await period_state(conn, tenant_id, billing_period, start)
    if state.status == "closed":
        return state
    if state.drafts:
        raise Conflict(
            f"period_start: {state.drafts} draft invoices of the period are not issued;"
            " issue or delete them before closing it"
        )
    await conn.execute(
        "INSERT INTO billing_periods (tenant_id, billing_period, period_start, period_end,"
        " status, closed_at, closed_by) VALUES (%s, %s, %s, %s, 'closed', %s, %s)"
        " ON CONFLICT (tenant_id, billing_period, period_start) DO UPDATE"
        " SET status = 'closed', closed_at = EXCLUDED.closed_at, closed_by = EXCLUDED.closed_by",
        (tenant_id, state.billing_period, state.period_start, state.period_end, now, actor.user_id),
    )
    await audit.record(
        conn,
        tenant_id,
        actor,
        now,
        audit.Change(
            "billing_period",
            int(state.period_start.strftime("%Y%m%d")),
            "close",
            {"status": "open"},
            {"status": "closed", "billing_period": state.billing_period},
        ),
    )
    return await period_state(conn, tenant_id, billing_period, start)
