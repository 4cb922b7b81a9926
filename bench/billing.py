"""How invoicing holds up with a city's worth of customers: a billing run over 1,000,000
service points, issuing every draft on one series, 10,000 invoice PDFs in one batch and the
revenue report of the period.

Run from the repository root (it prints figures; it is not a pass/fail test):

    .venv/bin/python -m bench.billing [--points 1000000] [--pdfs 10000]

It creates a scratch database on the server of SANITRACK_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/test), seeds the synthetic Hà Nội of bench.customers
(COPY; not a figure), enters Hà Nội's tariffs with 8 % VAT, the seller and series 1C26TAA,
then measures:

* the billing run of one month: the charges of every point, then one draft per customer
  (the issue's figure: drafts per second of the drafting step, and of the whole run);
* the same run again (nothing new is drafted);
* issuing every draft on the one series, 10,000 per transaction, in two concurrent issuers,
  then the check that the numbers run 1..N with no gap and no duplicate;
* printing the first ``--pdfs`` invoices by number in one batch (with print status);
* the revenue report of the period by service, area, customer class and collector, five
  times each: p50 and worst.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

import audit
import billing
from bench.customers import CITY_SEED, City, bench_database, seed
from billing.sample_tariffs import hanoi_tariffs

ACTOR = audit.Actor("bench")
PERIOD = dt.date(2026, 11, 1)
ISSUE_DATE = dt.date(2026, 12, 2)
ISSUE_CHUNK = 10_000
SELLER = billing.Seller(
    legal_name="Công ty TNHH MTV Môi trường Đô thị Hà Nội",
    tax_code="0100106779",
    address="Số 18 Nguyễn Chí Thanh, phường Ngọc Khánh, quận Ba Đình, Hà Nội",
    phone="024 3835 2536",
    bank_account="1020 1000 0012 345",
    bank_name="Ngân hàng TMCP Công thương Việt Nam",
)


def _say(text: str) -> None:
    print(text, flush=True)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StageClock:
    """Progress lines for a billing run, and when each stage began and ended."""

    def __init__(self) -> None:
        self.began: dict[str, float] = {"charges": time.monotonic()}
        self.ended: dict[str, float] = {}
        self.shown: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        self.began.setdefault(stage, now)
        self.ended[stage] = now
        step = done * 5 // max(total, 1)
        if step > self.shown.get(stage, -1):
            self.shown[stage] = step
            _say(f"    {stage:<8} {done:>9,} / {total:,}")

    def seconds(self, stage: str) -> float:
        return self.ended.get(stage, 0.0) - self.began.get(stage, 0.0)


async def setup_billing(conn: psycopg.AsyncConnection[Any], tenant_id: int) -> int:
    at = dt.datetime.now(dt.UTC)
    for version in hanoi_tariffs(dt.date(2025, 1, 1)):
        await billing.create_tariff_version(
            conn, tenant_id, ACTOR, at, version.model_copy(update={"vat_rate": "8"})
        )
    await billing.set_seller(conn, tenant_id, SELLER)
    series = await billing.create_series(
        conn, tenant_id, ACTOR, at, billing.NewSeries(symbol="C26TAA", name="Phí vệ sinh")
    )
    await conn.commit()
    return series.id


async def measure_run(conn: psycopg.AsyncConnection[Any], tenant_id: int, series_id: int) -> int:
    _say(f"billing run for {PERIOD:%m/%Y}: charges, then one draft per customer")
    drafted = 0
    for attempt in ("first", "again"):
        clock = StageClock()
        began = time.monotonic()
        run = await billing.run_billing(
            conn, tenant_id, ACTOR, dt.datetime.now(dt.UTC), "monthly", PERIOD, series_id,
            progress=clock,
        )  # fmt: skip
        await conn.commit()
        took = time.monotonic() - began
        drafting = max(clock.seconds("drafts"), 1e-9)
        charges = clock.began["drafts"] - clock.began["charges"]
        drafted = drafted or run.invoices_drafted
        _say(
            f"  {attempt:<6} {took:6.1f} s: {run.points:,} points, {run.invoices_drafted:,}"
            f" drafts ({run.drafts_replaced:,} replaced), total {run.total_vnd:,} VND,"
            f" {run.problems_count:,} problems"
        )
        _say(
            f"         charges and old drafts {charges:6.1f} s; drafting {drafting:6.1f} s"
            f" = {run.invoices_drafted / drafting:,.0f} drafts/s"
            f" ({run.invoices_drafted / took:,.0f}/s over the whole run)"
        )
    return drafted


async def _draft_ids(conn: psycopg.AsyncConnection[Any], tenant_id: int) -> list[int]:
    cursor = await conn.execute(
        "SELECT id FROM invoices WHERE tenant_id = %s AND status = 'draft' ORDER BY id",
        (tenant_id,),
    )
    return [row[0] for row in await cursor.fetchall()]


async def measure_issue(url: str, tenant_id: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        ids = await _draft_ids(conn, tenant_id)
    _say(f"issuing {len(ids):,} drafts on one series, {ISSUE_CHUNK:,} per transaction,"
         " two issuers at once")  # fmt: skip
    chunks = [ids[i : i + ISSUE_CHUNK] for i in range(0, len(ids), ISSUE_CHUNK)]
    done = [0]
    began = time.monotonic()

    async def issuer(mine: list[list[int]]) -> list[float]:
        waits = []
        async with await psycopg.AsyncConnection.connect(url) as conn:
            for chunk in mine:
                started = time.monotonic()
                await billing.issue_invoices(
                    conn, tenant_id, ACTOR, dt.datetime.now(dt.UTC), chunk, issue_date=ISSUE_DATE
                )
                await conn.commit()
                waits.append(time.monotonic() - started)
                done[0] += len(chunk)
                if len(waits) % 10 == 0:
                    _say(f"    {done[0]:>9,} / {len(ids):,} issued")
        return waits

    results = await asyncio.gather(issuer(chunks[0::2]), issuer(chunks[1::2]))
    took = time.monotonic() - began
    per_chunk = sorted(w for waits in results for w in waits)
    _say(
        f"  {took:6.1f} s = {len(ids) / took:,.0f} invoices/s; a {ISSUE_CHUNK:,}-invoice"
        f" transaction p50 {statistics.median(per_chunk):.2f} s, worst {per_chunk[-1]:.2f} s"
    )
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            "SELECT count(*), count(DISTINCT number), min(number), max(number),"
            " bool_and(issued_at IS NOT NULL) FROM invoices WHERE tenant_id = %s"
            " AND symbol = 'C26TAA'",
            (tenant_id,),
        )
        count, distinct, low, high, stamped = await cursor.fetchone() or (0, 0, 0, 0, False)
        cursor = await conn.execute(
            "SELECT count(*) FROM (SELECT number, issued_at, lag(issued_at) OVER (ORDER BY"
            " number) AS before FROM invoices WHERE tenant_id = %s AND symbol = 'C26TAA') x"
            " WHERE before > issued_at",
            (tenant_id,),
        )
        backwards = (await cursor.fetchone() or (0,))[0]
    gapless = count == distinct == high and low == 1
    _say(
        f"  numbers: {count:,} issued, {distinct:,} distinct, {low}..{high}:"
        f" {'no gap, no duplicate' if gapless else 'GAP OR DUPLICATE'};"
        f" {backwards} issued earlier than the number before; all stamped: {stamped}"
    )


async def measure_pdfs(conn: psycopg.AsyncConnection[Any], tenant_id: int, count: int) -> None:
    from billing import printing

    cursor = await conn.execute(
        "SELECT id FROM invoices WHERE tenant_id = %s AND number IS NOT NULL ORDER BY number"
        " LIMIT %s",
        (tenant_id, count),
    )
    ids = [row[0] for row in await cursor.fetchall()]
    _say(f"printing {len(ids):,} invoices in one batch")
    shown = [-1]

    def progress(done: int, total: int) -> None:
        step = done * 5 // max(total, 1)
        if step > shown[0]:
            shown[0] = step
            _say(f"    {done:>9,} / {total:,} rendered")

    began = time.monotonic()
    batch = await printing.print_invoices(
        conn, tenant_id, ACTOR, dt.datetime.now(dt.UTC), invoice_ids=ids, progress=progress
    )
    await conn.commit()
    took = time.monotonic() - began
    _say(
        f"  {took:6.1f} s = {batch.invoice_count / took:,.0f} invoices/s: {batch.pages:,} pages,"
        f" {len(batch.pdf) / 1e6:,.1f} MB"
    )


async def measure_revenue(conn: psycopg.AsyncConnection[Any], tenant_id: int) -> None:
    await _revenue_figures(conn, tenant_id, "straight after issuing")
    # What autovacuum does within minutes of a month's issuing: the planner's figures and
    # the visibility map of the lines just written.
    await conn.set_autocommit(True)
    await conn.execute("VACUUM ANALYZE revenue_lines")
    await conn.set_autocommit(False)
    await _revenue_figures(conn, tenant_id, "after autovacuum's VACUUM ANALYZE")


async def _revenue_figures(conn: psycopg.AsyncConnection[Any], tenant_id: int, when: str) -> None:
    from billing import revenue

    _say(f"revenue report of the month issued, {when}, five times per grouping")
    for group in revenue.RevenueGroup:
        if group == revenue.RevenueGroup.MONTH:
            continue
        seconds = []
        report = None
        for _ in range(5):
            began = time.monotonic()
            report = await revenue.revenue_report(
                conn, tenant_id, date_from=ISSUE_DATE.replace(day=1),
                date_to=ISSUE_DATE.replace(day=28), basis=revenue.RevenueBasis.ISSUE_DATE,
                group_by=[group],
            )  # fmt: skip
            seconds.append(time.monotonic() - began)
            await conn.rollback()
        assert report is not None
        _say(
            f"  by {group.value:<15} p50 {statistics.median(seconds) * 1000:6.0f} ms"
            f"   worst {max(seconds) * 1000:6.0f} ms   ({len(report.rows)} rows,"
            f" total {report.total.total_vnd:,} VND)"
        )


async def run(args: argparse.Namespace) -> None:
    async with (
        bench_database(args.server_url, args.keep) as url,
        await psycopg.AsyncConnection.connect(url) as conn,
    ):
        _say(f"seeding {args.points:,} service points")
        tenant_id = await seed(conn, City(CITY_SEED), args.points)
        series_id = await setup_billing(conn, tenant_id)
        steps: dict[str, Callable[[], Any]] = {
            "run": lambda: measure_run(conn, tenant_id, series_id),
            "issue": lambda: measure_issue(url, tenant_id),
            "pdf": lambda: measure_pdfs(conn, tenant_id, args.pdfs),
            "revenue": lambda: measure_revenue(conn, tenant_id),
        }
        for name, step in steps.items():
            if name in args.parts:
                await step()
        _say(f"peak memory of this process: {_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--pdfs", type=int, default=10_000)
    parser.add_argument("--parts", nargs="*", default=["run", "issue", "pdf", "revenue"])
    parser.add_argument("--keep", action="store_true", help="keep the database (to explain)")
    parser.add_argument(
        "--server-url",
        default=os.environ.get(
            "SANITRACK_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
