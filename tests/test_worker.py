"""The worker's office jobs on a replayed timeline: a change approved for a later date is
applied on that date (in Hà Nội's time), and the map's clusters are recounted when points
changed; issued invoices go to the e-invoice provider's fake and come back coded."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from psycopg import AsyncConnection

import accounts
import audit
import customers
from billing.einvoice import FakeEInvoiceProvider, queue_for_sending
from customers import changes
from sanitrack.clock import SystemClock
from sanitrack.settings import CustomersSettings, Settings
from sanitrack.worker import apply_due_changes, recount_map_cells, send_einvoices
from storage import Pool
from tests.billing.invoice_support import new_tenant, seed_invoices
from tests.customers.book import AT, CLERK, household, make_book

SETTINGS = CustomersSettings()
APPROVER = audit.Actor("ke.toan", None)


async def test_a_change_approved_for_the_first_applies_on_the_first_in_hanoi(pool: Pool) -> None:
    book = await make_book(pool, "worker-a")
    async with pool.connection() as conn:
        accountant = await _user(conn, book.tenant_id, "ketoan")
        clerk = await _user(conn, book.tenant_id, "vanthu")
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH1", "Hộ A", so_khau=4)
        )
        point = (await customers.points_of(conn, book.tenant_id, created.id))[0]
        request = await changes.submit(
            conn, book.tenant_id, audit.Actor("vanthu", clerk), AT,
            customer_id=created.id, service_point_id=point.id, changes={"so_khau": 6},
            reason="Sổ hộ khẩu mới", effective_date=dt.date(2027, 1, 1), via="office",
        )  # fmt: skip
        await changes.approve(
            conn, book.tenant_id, audit.Actor("ketoan", accountant), AT, request.id,
            "Đã xem sổ", today=AT.date(),
        )  # fmt: skip
        await conn.commit()
    # 23:30 on 31 December in Hà Nội is 16:30 UTC: not yet.
    assert (
        await apply_due_changes(pool, SETTINGS, dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC))
        == []
    )
    # 00:10 on 1 January in Hà Nội is still 31 December in UTC: now.
    applied = await apply_due_changes(
        pool, SETTINGS, dt.datetime(2026, 12, 31, 17, 10, tzinfo=dt.UTC)
    )
    assert [(a.request.id, a.conflict) for a in applied] == [(request.id, None)]
    async with pool.connection() as conn:
        assert (await customers.get_point(conn, book.tenant_id, point.id)).so_khau == 6
        terms = await customers.terms_of(conn, book.tenant_id, point.id)
    assert [(t.valid_from, t.so_khau) for t in terms] == [
        (dt.date(2026, 1, 1), 4),
        (dt.date(2027, 1, 1), 6),
    ]


async def test_the_map_is_recounted_when_points_changed(pool: Pool) -> None:
    book = await make_book(pool, "worker-b")
    async with pool.connection() as conn:
        await customers.create_customer(conn, book.tenant_id, CLERK, AT, household("KH1", "A"))
        await conn.commit()
    assert await recount_map_cells(pool, SETTINGS, AT) >= 1
    assert await recount_map_cells(pool, SETTINGS, AT + dt.timedelta(minutes=1)) == 0
    async with pool.connection() as conn:
        await customers.create_customer(conn, book.tenant_id, CLERK, AT, household("KH2", "B"))
        await conn.commit()
    assert await recount_map_cells(pool, SETTINGS, AT + dt.timedelta(minutes=2)) == 1
    # Unchanged, they are still recounted once they are older than the longest age.
    later = AT + dt.timedelta(seconds=SETTINGS.map_cells_max_age_s + 300)
    assert await recount_map_cells(pool, SETTINGS, later) == 1


async def _user(conn: AsyncConnection[Any], tenant_id: int, username: str) -> int:
    user = await accounts.create_user(
        conn,
        tenant_id,
        accounts.NewUser(username, username, accounts.Role.ACCOUNTANT, "mat-khau-dai-du-12"),
    )
    return user.id


async def test_issued_invoices_reach_the_provider_and_come_back_coded(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant = await new_tenant(conn)
        ids = await seed_invoices(conn, tenant, 3)
        await queue_for_sending(conn, tenant, ids, dt.datetime.now(dt.UTC))
    async with FakeEInvoiceProvider() as fake:
        settings = Settings(einvoice=fake.settings(send_interval_s=0.05, poll_interval_s=0.05))
        sender = asyncio.create_task(send_einvoices(pool, settings, SystemClock()))
        try:
            async with asyncio.timeout(20):
                while True:
                    async with pool.connection() as conn:
                        cursor = await conn.execute(
                            "SELECT count(*) FROM invoices WHERE id = ANY(%s) AND status = 'coded'"
                            " AND length(authority_code) = 34",
                            (ids,),
                        )
                        if await cursor.fetchone() == (3,):
                            break
                    await asyncio.sleep(0.05)
        finally:
            sender.cancel()
        assert len(fake.submissions) == 3
    # no provider set: the job says so and leaves invoices queued
    await asyncio.wait_for(send_einvoices(pool, Settings(), SystemClock()), timeout=5)
