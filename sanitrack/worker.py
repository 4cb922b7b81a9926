"""`sanitrack worker`: the office's background jobs, each a named task on its own timer.

* ``changes``: approved change requests whose effective date has come are applied, and
  the terms coming into force reach the points (``customers.changes.apply_due``), in the
  company's time zone; the charges they touch are recomputed.
* ``map-cells``: the customer map's clusters are recounted when points changed.
* ``notifications``: customers' notices go out over SMTP and the SMS gateway.

Every job takes the time from the clock it is given; one tenant's failure is logged and
does not stop the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any

import billing
import customers
import fleet
import notifications
from api.ops import ops_app
from customers import changes
from sanitrack.clock import Clock, SystemClock
from sanitrack.settings import CustomersSettings, Settings
from storage import Pool

log = logging.getLogger(__name__)


async def apply_due_changes(
    pool: Pool, settings: CustomersSettings, now: dt.datetime
) -> list[changes.Applied]:
    """One sweep over every tenant: what came due by the company's date of ``now``."""
    today = now.astimezone(zoneinfo.ZoneInfo(settings.timezone)).date()
    geocoder = customers.StreetGeocoder(house_frontage_m=settings.house_frontage_m)
    applied: list[changes.Applied] = []
    async with pool.connection() as conn:
        tenants = await fleet.list_tenants(conn)
    for tenant in tenants:
        try:
            async with pool.connection() as conn, conn.transaction():
                applied += await changes.apply_due(
                    conn,
                    tenant.id,
                    now,
                    today=today,
                    on_terms_changed=billing.recompute_on_terms_change(now),
                    geocoder=geocoder,
                )
        except Exception:
            log.exception("applying due changes failed for tenant %s", tenant.slug)
    return applied


async def recount_map_cells(pool: Pool, settings: CustomersSettings, now: dt.datetime) -> int:
    """Rebuild the map cells of every tenant whose points changed, or whose cells are older
    than ``map_cells_max_age_s``; how many tenants were rebuilt."""
    rebuilt = 0
    async with pool.connection() as conn:
        tenants = await fleet.list_tenants(conn)
    for tenant in tenants:
        try:
            async with pool.connection() as conn, conn.transaction():
                state = await customers.cells_state(conn, tenant.id)
                too_old = state.built_at is None or (
                    (now - state.built_at).total_seconds() > settings.map_cells_max_age_s
                )
                if state.stale_since is not None or (too_old and state.has_points):
                    await customers.rebuild_cells(conn, tenant.id, now)
                    rebuilt += 1
        except Exception:
            log.exception("recounting the map's clusters failed for tenant %s", tenant.slug)
    return rebuilt


async def _every(
    name: str,
    interval_s: float,
    clock: Clock,
    job: Callable[[dt.datetime], Awaitable[object]],
    finished: dict[str, dt.datetime],
) -> None:
    while True:
        await job(clock.now())
        finished[name] = clock.now()
        await asyncio.sleep(interval_s)


async def run_worker(settings: Settings) -> None:
    """`sanitrack worker`: the office's jobs against the configured database, with /health
    (the database and when each job last finished) and /metrics."""
    from sanitrack.app import database, database_reachable, serve_http

    finished: dict[str, dt.datetime] = {}

    async def health() -> dict[str, Any]:
        database_ok = await database_reachable(db.pool)
        return {
            "ok": database_ok,
            "database": database_ok,
            "jobs_finished_at": {name: at.isoformat() for name, at in finished.items()},
        }

    async with database(settings) as db, asyncio.TaskGroup() as tasks:
        app = ops_app(health, [])
        tasks.create_task(serve_http(app, settings.http_host, settings.http_port), name="http")
        tasks.create_task(
            run_office_jobs(db.pool, settings, SystemClock(), finished), name="office-jobs"
        )


async def send_einvoices(pool: Pool, settings: Settings, clock: Clock) -> None:
    """Issued invoices to the e-invoice provider until cancelled; returns at once when no
    provider is set (issued invoices wait, queued)."""
    from billing.einvoice import HttpEInvoiceProvider, run_einvoice_sender

    if settings.einvoice.base_url is None:
        log.info("einvoice: no provider set (SANITRACK_EINVOICE__BASE_URL); invoices stay queued")
        return
    async with HttpEInvoiceProvider.from_settings(settings.einvoice) as provider:
        await run_einvoice_sender(pool, provider, settings.einvoice, clock, asyncio.Event())


async def run_office_jobs(
    pool: Pool, settings: Settings, clock: Clock, finished: dict[str, dt.datetime] | None = None
) -> None:
    """The worker's jobs until cancelled; ``finished`` gets when each job last finished."""
    finished = {} if finished is None else finished
    office = settings.customers

    async def changes_job(now: dt.datetime) -> None:
        await apply_due_changes(pool, office, now)

    async def cells_job(now: dt.datetime) -> None:
        await recount_map_cells(pool, office, now)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(
            _every("changes", office.sweep_interval_s, clock, changes_job, finished),
            name="changes",
        )
        tasks.create_task(
            _every("map-cells", office.map_cells_interval_s, clock, cells_job, finished),
            name="map-cells",
        )
        tasks.create_task(
            notifications.run_sender(pool, settings.notifications, clock), name="notifications"
        )
        tasks.create_task(send_einvoices(pool, settings, clock), name="einvoices")
