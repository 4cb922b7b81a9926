"""Charge runs: the only code that reads or writes ``charges``.

Every function takes an open connection; the caller owns the transaction (a charge run
needs one: it reads through a server-side cursor and writes through temporary tables
dropped at commit). Charge runs are serialised per tenant by an advisory lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from psycopg import AsyncConnection

from billing.charges import ChargeProblem, ChargeRow, detail_json, number_text, price_pieces
from billing.errors import Conflict
from billing.periods import Period, period_of, period_starting
from billing.tariff_versions import tariff_book
from customers.models import BillingPeriod
from customers.terms import count_period_points, period_terms

MAX_PROBLEMS_LISTED = 100


async def period_is_closed(
    conn: AsyncConnection[Any], tenant_id: int, start: dt.date, end: dt.date
) -> bool:
    """Whether the office closed the period ``[start, end)`` (billing.billing_runs)."""
    cursor = await conn.execute(
        "SELECT 1 FROM billing_periods WHERE tenant_id = %s AND period_start = %s"
        " AND period_end = %s AND status = 'closed'",
        (tenant_id, start, end),
    )
    return await cursor.fetchone() is not None


@dataclass(frozen=True, slots=True)
class Charge:
    id: int
    customer_id: int
    service_point_id: int
    period_start: dt.date
    period_end: dt.date
    service: str
    component: str
    tariff_version_id: int | None
    quantity: Decimal
    unit: str
    amount_vnd: int
    vat_rate: str
    detail: list[dict[str, Any]]
    computed_at: dt.datetime
    invoice_id: int | None


@dataclass(frozen=True, slots=True)
class ChargeRun:
    """What a charge run did. ``rows_computed = rows_written + rows_unchanged +
    rows_invoiced``; ``rows_removed`` were charges no longer owed (not invoiced)."""

    period_start: dt.date
    period_end: dt.date
    billing_period: BillingPeriod
    points: int
    rows_computed: int
    rows_written: int  # new, or replacing a different one
    rows_unchanged: int  # the same row was there already: left as it was
    rows_invoiced: int  # an invoice has taken the period's charge: left alone
    rows_removed: int  # no longer owed: not computed again, not invoiced
    problems_count: int
    problems: list[ChargeProblem]  # the first MAX_PROBLEMS_LISTED
    total_vnd: int  # of the rows computed
    adjustments_proposed: int = 0  # invoiced charges computed differently now


Progress = Callable[[int, int], None]

_RUN_TABLES = """
DROP TABLE IF EXISTS pg_temp.charge_run, pg_temp.charge_run_points;
CREATE TEMP TABLE charge_run (
    customer_id bigint NOT NULL, service_point_id bigint NOT NULL, service text NOT NULL,
    component text NOT NULL, tariff_version_id bigint, quantity numeric(14, 3) NOT NULL,
    unit text NOT NULL, amount_vnd bigint NOT NULL, vat_rate text NOT NULL, detail jsonb NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE charge_run_points (service_point_id bigint NOT NULL) ON COMMIT DROP;
"""
# Charges of the period that this run owns: not invoiced, of the points in its scope (or of
# another billing period's rows starting the same day, for points priced in this run).
_DELETE_STALE = """
WITH gone AS (
    DELETE FROM charges c
     WHERE c.tenant_id = %(tenant)s AND c.period_start = %(start)s AND c.invoice_id IS NULL
       AND ((c.period_end = %(end)s AND (%(all)s OR c.service_point_id = ANY(%(ids)s)))
            OR c.service_point_id IN (SELECT service_point_id FROM charge_run_points))
       AND NOT EXISTS (
           SELECT 1 FROM charge_run n
            WHERE n.service_point_id = c.service_point_id AND n.service = c.service
              AND n.component = c.component AND c.period_end = %(end)s
              AND (n.customer_id, n.tariff_version_id, n.quantity, n.unit, n.amount_vnd,
                   n.vat_rate, n.detail)
                  IS NOT DISTINCT FROM (c.customer_id, c.tariff_version_id, c.quantity, c.unit,
                                        c.amount_vnd, c.vat_rate, c.detail))
    RETURNING c.service_point_id, c.service, c.component)
SELECT count(*) FROM gone
 WHERE NOT EXISTS (SELECT 1 FROM charge_run n WHERE n.service_point_id = gone.service_point_id
                      AND n.service = gone.service AND n.component = gone.component)
"""
# What is left of this run's rows after the stale ones went: each either the same as the
# period's charge (unchanged) or held by an invoice. Taken out of the run, so that what
# remains is inserted as is: an INSERT that checked charges for each row it adds would scan
# the pages it is writing.
_TAKE_OUT_KEPT = """
WITH kept AS (
    DELETE FROM charge_run n USING charges c
     WHERE c.service_point_id = n.service_point_id AND c.period_start = %(start)s
       AND c.service = n.service AND c.component = n.component
    RETURNING c.invoice_id)
SELECT count(*) FILTER (WHERE invoice_id IS NOT NULL), count(*) FILTER (WHERE invoice_id IS NULL)
  FROM kept
"""
_INSERT_NEW = """
INSERT INTO charges (tenant_id, customer_id, service_point_id, period_start, period_end,
                     service, component, tariff_version_id, quantity, unit, amount_vnd,
                     vat_rate, detail, computed_at)
SELECT %(tenant)s, customer_id, service_point_id, %(start)s, %(end)s, service, component,
       tariff_version_id, quantity, unit, amount_vnd, vat_rate, detail, %(now)s
  FROM charge_run
"""
# Where a charge an issued invoice holds is computed differently now (terms changed back
# into an invoiced period), the difference is proposed as an adjustment: the invoice is never
# touched. What was billed for a charge is its amount plus the adjustments already accepted.
_IN_SCOPE = """
  FROM charges c
  LEFT JOIN charge_run n ON n.service_point_id = c.service_point_id AND n.service = c.service
                        AND n.component = c.component
  LEFT JOIN (SELECT charge_id, sum(recomputed_amount_vnd - invoiced_amount_vnd) AS delta
               FROM adjustment_proposals WHERE tenant_id = %(tenant)s AND status = 'accepted'
              GROUP BY charge_id) a ON a.charge_id = c.id
 WHERE c.tenant_id = %(tenant)s AND c.period_start = %(start)s AND c.period_end = %(end)s
   AND c.invoice_id IS NOT NULL
   AND (%(all)s OR c.service_point_id = ANY(%(ids)s)
        OR c.service_point_id IN (SELECT service_point_id FROM charge_run_points))
"""
_SUPERSEDE_PROPOSALS = (
    "UPDATE adjustment_proposals p SET status = 'superseded' FROM (SELECT c.id,"
    " coalesce(n.amount_vnd, 0) AS recomputed"
    + _IN_SCOPE
    + ") x WHERE p.charge_id = x.id AND p.status = 'proposed'"
    " AND p.recomputed_amount_vnd <> x.recomputed"
)
_PROPOSE = (
    "INSERT INTO adjustment_proposals (tenant_id, customer_id, invoice_id, charge_id,"
    " service_point_id, period_start, period_end, service, component, invoiced_amount_vnd,"
    " recomputed_amount_vnd, vat_rate, detail, created_at)"
    " SELECT c.tenant_id, c.customer_id, c.invoice_id, c.id, c.service_point_id,"
    " c.period_start, c.period_end, c.service, c.component, c.amount_vnd + coalesce(a.delta, 0),"
    " coalesce(n.amount_vnd, 0), coalesce(n.vat_rate, c.vat_rate), coalesce(n.detail, '[]'),"
    " %(now)s" + _IN_SCOPE + " AND coalesce(n.amount_vnd, 0) <> c.amount_vnd + coalesce(a.delta, 0)"
    " AND NOT EXISTS (SELECT 1 FROM adjustment_proposals p WHERE p.charge_id = c.id"
    " AND p.status = 'proposed')"
)
# Refresh the planner's figures after a large run, so that the next run's joins on charges
# are planned on its size (a table thought empty is scanned once per row).
ANALYZE_AFTER_ROWS = 10_000


def _copy_text(rows: Sequence[ChargeRow], day_text: dict[dt.date, str]) -> str:
    # Every text field is from a fixed vocabulary or a pattern of [a-z_]: nothing to escape.
    return "".join(
        [
            f"{r.customer_id}\t{r.service_point_id}\t{r.service}\t{r.component}\t"
            f"{r.tariff_version_id}\t{number_text(r.quantity)}\t{r.unit}\t{r.amount_vnd}\t"
            f"{r.vat_rate}\t{detail_json(r.detail, day_text)}\n"
            for r in rows
        ]
    )


async def _count(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> int:
    cursor = await conn.execute(query, params)
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def _run(
    conn: AsyncConnection[Any],
    tenant_id: int,
    period: Period,
    now: dt.datetime,
    point_ids: Sequence[int] | None,
    *,
    also_points: frozenset[int] = frozenset(),
    progress: Progress | None = None,
) -> ChargeRun:
    """Price the period's terms and make the period's charges those prices: for the points
    whose customer is billed by ``period``'s kind of period, and ``also_points`` whatever
    their customer's billing period is now (what a recompute finds computed)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('billing.charges', %s))", (tenant_id,)
    )
    locked = await period_is_closed(conn, tenant_id, period.start, period.end)
    if locked and point_ids is None:
        raise Conflict(
            f"period_start: the {period.billing_period} period {period.start.isoformat()} is closed"
        )
    book = await tariff_book(conn, tenant_id, period)
    kind = str(period.billing_period)
    sql_filter = None if also_points else kind
    total_points = (
        await count_period_points(
            conn,
            tenant_id,
            period.start,
            period.end,
            point_ids=point_ids,
            billing_period=sql_filter,
        )
        if progress is not None
        else 0
    )
    await conn.execute(_RUN_TABLES)
    points = computed = total_vnd = problems_count = 0
    problems: list[ChargeProblem] = []
    day_text: dict[dt.date, str] = {}
    async for batch in period_terms(
        conn, tenant_id, period.start, period.end, point_ids=point_ids, billing_period=sql_filter
    ):
        pieces = batch
        if also_points:
            pieces = [
                p for p in batch if p.billing_period == kind or p.service_point_id in also_points
            ]
        priced = price_pieces(pieces, period, book)
        async with conn.cursor() as cursor:
            if priced.rows:
                async with cursor.copy(
                    "COPY charge_run (customer_id, service_point_id, service, component,"
                    " tariff_version_id, quantity, unit, amount_vnd, vat_rate, detail) FROM STDIN"
                ) as copy:
                    await copy.write(_copy_text(priced.rows, day_text))
            if priced.point_ids:
                async with cursor.copy("COPY charge_run_points FROM STDIN") as copy:
                    await copy.write("".join([f"{p}\n" for p in priced.point_ids]))
        points += len(priced.point_ids)
        computed += len(priced.rows)
        total_vnd += sum(r.amount_vnd for r in priced.rows)
        problems_count += len(priced.problems)
        problems.extend(priced.problems[: MAX_PROBLEMS_LISTED - len(problems)])
        if progress is not None:
            progress(points, max(points, total_points))
    await conn.execute(
        "ANALYZE charge_run (service_point_id, service, component); ANALYZE charge_run_points"
    )
    params = {
        "tenant": tenant_id,
        "start": period.start,
        "end": period.end,
        "all": point_ids is None,
        "ids": list(point_ids or []),
        "now": now,
    }
    await conn.execute(_SUPERSEDE_PROPOSALS, params)
    proposed = (await conn.execute(_PROPOSE, params)).rowcount
    # A closed period keeps its charges: what changed is only proposed.
    removed = 0 if locked else await _count(conn, _DELETE_STALE, params)
    cursor = await conn.execute(_TAKE_OUT_KEPT, params)
    kept = await cursor.fetchone()
    assert kept is not None
    invoiced, unchanged = int(kept[0]), int(kept[1])
    written = 0 if locked else (await conn.execute(_INSERT_NEW, params)).rowcount
    await conn.execute("DROP TABLE pg_temp.charge_run, pg_temp.charge_run_points")
    if written + removed >= ANALYZE_AFTER_ROWS:
        await conn.execute("ANALYZE charges")
    return ChargeRun(
        period_start=period.start,
        period_end=period.end,
        billing_period=period.billing_period,
        points=points,
        rows_computed=computed,
        rows_written=written,
        rows_unchanged=unchanged,
        rows_invoiced=invoiced,
        rows_removed=removed,
        problems_count=problems_count,
        problems=problems,
        total_vnd=total_vnd,
        adjustments_proposed=proposed,
    )


async def compute_charges(
    conn: AsyncConnection[Any],
    tenant_id: int,
    period_start: dt.date,
    billing_period: BillingPeriod | str,
    *,
    now: dt.datetime,
    point_ids: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> ChargeRun:
    """Compute the charges of the period starting ``period_start`` for every point of the
    customers billed ``billing_period`` (or for those of ``point_ids``), replacing the
    period's charges no invoice has taken. Running it again changes nothing.

    ``progress(done_points, total_points)`` is called after every batch. InvalidValue when
    no period of that kind starts on ``period_start``."""
    period = period_starting(period_start, billing_period)
    return await _run(conn, tenant_id, period, now, point_ids, progress=progress)


async def recompute_charges(
    conn: AsyncConnection[Any],
    tenant_id: int,
    point_ids: Sequence[int],
    since: dt.date,
    *,
    now: dt.datetime,
) -> int:
    """After the terms of ``point_ids`` changed from ``since`` (possibly in the past):
    recompute every period already computed for them that ends after ``since``. The
    number of charge rows written or removed."""
    if not point_ids:
        return 0
    cursor = await conn.execute(
        "SELECT period_start, period_end, array_agg(DISTINCT service_point_id) FROM charges"
        " WHERE tenant_id = %s AND service_point_id = ANY(%s) AND period_end > %s"
        " GROUP BY period_start, period_end ORDER BY period_start, period_end",
        (tenant_id, list(point_ids), since),
    )
    changed = 0
    for start, end, computed_for in await cursor.fetchall():
        run = await _run(
            conn,
            tenant_id,
            period_of(start, end),
            now,
            point_ids,
            also_points=frozenset(computed_for),
        )
        changed += run.rows_written + run.rows_removed
    return changed


class Recompute(Protocol):
    """What a change request's application calls when terms changed from ``since``
    (``customers.changes.TermsChanged``)."""

    def __call__(
        self, conn: AsyncConnection[Any], tenant_id: int, point_ids: list[int], /, *, since: dt.date
    ) -> Awaitable[int]: ...


def recompute_on_terms_change(now: dt.datetime) -> Recompute:
    """``recompute_charges`` as a hook, computing at ``now``."""

    async def recompute(
        conn: AsyncConnection[Any], tenant_id: int, point_ids: list[int], /, *, since: dt.date
    ) -> int:
        return await recompute_charges(conn, tenant_id, point_ids, since, now=now)

    return recompute


async def charges_of(
    conn: AsyncConnection[Any],
    tenant_id: int,
    *,
    customer_id: int | None = None,
    service_point_id: int | None = None,
    period_start: dt.date | None = None,
    limit: int = 1000,
) -> list[Charge]:
    """Charges by period, point, service and component."""
    where = ["tenant_id = %(tenant)s"]
    if customer_id is not None:
        where.append("customer_id = %(customer)s")
    if service_point_id is not None:
        where.append("service_point_id = %(point)s")
    if period_start is not None:
        where.append("period_start = %(start)s")
    cursor = await conn.execute(
        "SELECT id, customer_id, service_point_id, period_start, period_end, service,"
        " component, tariff_version_id, quantity, unit, amount_vnd, vat_rate, detail,"
        f" computed_at, invoice_id FROM charges WHERE {' AND '.join(where)}"
        " ORDER BY period_start, service_point_id, service, component LIMIT %(limit)s",
        {
            "tenant": tenant_id,
            "customer": customer_id,
            "point": service_point_id,
            "start": period_start,
            "limit": limit,
        },
    )
    return [Charge(*row) for row in await cursor.fetchall()]
