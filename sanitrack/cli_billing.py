"""The accounting department's commands: a billing run, issuing its drafts, printing and
the revenue report, each with progress lines and a summary table."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
import time
from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection

import audit
import billing
import fleet
from sanitrack.app import database
from sanitrack.settings import Settings

ISSUE_CHUNK = 1_000  # invoices per transaction: the series' lock is held this long, no more


def _actor(given: str | None) -> audit.Actor:
    return audit.Actor(given or f"cli by {getpass.getuser()}")


def _company_now(settings: Settings) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(settings.customers.timezone))


def _stage_printer() -> Callable[[str, int, int], None]:
    shown: dict[str, int] = {}

    def show(stage: str, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if percent // 10 > shown.get(stage, -1):
            shown[stage] = percent // 10
            what = "service points priced" if stage == "charges" else "invoices drafted"
            print(f"  {percent:>3} %  {done:>9,} / {total:,} {what}", flush=True)

    return show


async def _series_by_code(conn: AsyncConnection[Any], tenant_id: int, code: str) -> billing.Series:
    for series in await billing.list_series(conn, tenant_id):
        if code in (series.code, series.symbol) or code == str(series.id):
            return series
    raise billing.NotFound(f"series {code!r} does not exist (give 1C26TAA or its id)")


async def _billing_run(settings: Settings, args: argparse.Namespace) -> int:
    now = _company_now(settings)
    async with database(settings) as db, db.pool.connection() as conn:
        tenant = await fleet.get_tenant(conn, args.tenant)
        series = await _series_by_code(conn, tenant.id, args.series)
        print(
            f"billing {tenant.slug!r}: {args.billing_period} period from"
            f" {args.period_start.isoformat()}, drafts on series {series.code}",
            flush=True,
        )
        began = time.monotonic()
        run = await billing.run_billing(
            conn, tenant.id, _actor(args.actor), now, args.billing_period, args.period_start,
            series.id, today=now.date(), progress=_stage_printer(),
        )  # fmt: skip
        await conn.commit()
    took = time.monotonic() - began
    print(
        f"\n  run              {run.id:>14}"
        f"\n  period           {run.period_start} – {run.period_end}"
        f"\n  service points   {run.points:>14,}\n  drafts           {run.invoices_drafted:>14,}"
        f"\n  drafts replaced  {run.drafts_replaced:>14,}"
        f"\n  postpaid waiting {run.postpaid_waiting:>14,} customers (their period is not over)"
        f"\n  already invoiced {run.charges_invoiced:>14,} charges"
        f"\n  total            {run.total_vnd:>14,} VND (VAT included)"
        f"\n  problems         {run.problems_count:>14,}\n  took             {took:>14.1f} s"
    )
    for problem in run.problems[:20]:
        print(f"    point {problem['service_point_id']}: {problem['reason']}")
    if args.issue and run.invoices_drafted:
        return await _issue(settings, tenant.slug, run.id, args.actor)
    return 0


async def _issue(
    settings: Settings, tenant_slug: str, run_id: int | None, actor: str | None
) -> int:
    async with database(settings) as db:
        pool = db.pool
        async with pool.connection() as conn:
            tenant = await fleet.get_tenant(conn, tenant_slug)
            ids = await billing.invoice_ids(
                conn,
                tenant.id,
                billing.InvoiceFilter(status=billing.InvoiceStatus.DRAFT, billing_run_id=run_id),
            )
        print(f"issuing {len(ids):,} drafts, {ISSUE_CHUNK:,} per transaction", flush=True)
        numbers: dict[str, list[int]] = {}
        began = time.monotonic()
        for start in range(0, len(ids), ISSUE_CHUNK):
            now = _company_now(settings)
            async with pool.connection() as conn, conn.transaction():
                issued = await billing.issue_invoices(
                    conn, tenant.id, _actor(actor), now, ids[start : start + ISSUE_CHUNK],
                    issue_date=now.date(),
                )  # fmt: skip
            for item in issued:
                numbers.setdefault(item.template + item.symbol, []).append(item.number)
            done = min(len(ids), start + ISSUE_CHUNK)
            if done == len(ids) or (start // ISSUE_CHUNK) % 10 == 0:
                print(f"  {done * 100 // max(len(ids), 1):>3} %  {done:>9,} issued", flush=True)
    took = time.monotonic() - began
    for code, taken in sorted(numbers.items()):
        print(f"  {code}: numbers {min(taken):,} to {max(taken):,} ({len(taken):,} invoices)")
    print(f"  took {took:.1f} s")
    return 0


async def _invoices_issue(settings: Settings, args: argparse.Namespace) -> int:
    return await _issue(settings, args.tenant, args.run, args.actor)


def add_billing_commands(commands: Any, guarded: Callable[[Any], Any]) -> None:
    """Add the commands to the CLI's subparsers; ``guarded`` wraps a handler so that the
    billing errors print as one line."""
    run = commands.add_parser(
        "billing-run", help="bill a period: compute charges and draft one invoice per customer"
    )
    run.add_argument("--tenant", required=True, help="the company's slug")
    run.add_argument(
        "--period-start", type=dt.date.fromisoformat, required=True, metavar="YYYY-MM-DD"
    )
    run.add_argument(
        "--billing-period", choices=["monthly", "quarterly", "yearly"], default="monthly"
    )
    run.add_argument("--series", required=True, help="the series to issue on, e.g. 1C26TAA")
    run.add_argument("--issue", action="store_true", help="issue the drafts straight away")
    run.add_argument("--actor", default=None, help="who, for the audit log")
    run.set_defaults(handler=guarded(_billing_run))

    issue = commands.add_parser("invoices-issue", help="issue drafts (of one run, or all)")
    issue.add_argument("--tenant", required=True)
    issue.add_argument("--run", type=int, default=None, help="the billing run's id")
    issue.add_argument("--actor", default=None)
    issue.set_defaults(handler=guarded(_invoices_issue))


def guard(handler: Callable[[Settings, argparse.Namespace], Any]) -> Callable[..., Any]:
    return guarded_by(billing.BillingError)(handler)


def guarded_by(
    *errors: type[Exception],
) -> Callable[[Callable[[Settings, argparse.Namespace], Any]], Callable[..., Any]]:
    """Wrap a command's handler so that ``errors`` print as one line and exit 1."""

    def wrap(handler: Callable[[Settings, argparse.Namespace], Any]) -> Callable[..., Any]:
        async def guarded(settings: Settings, args: argparse.Namespace) -> int:
            try:
                result: int = await handler(settings, args)
            except errors as exc:
                print(f"sanitrack: {exc}", file=sys.stderr)
                return 1
            return result

        return guarded

    return wrap
