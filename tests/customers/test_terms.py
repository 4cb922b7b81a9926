"""Dated terms: a change from a date splits the row in force, keeps later scheduled changes,
and reaches the point's own columns on its day."""

from __future__ import annotations

import datetime as dt

import pytest

import audit
import customers
from customers import Status, terms
from storage import Pool
from tests.customers.book import AT, CLERK, household, make_book

D = dt.date


async def _point(pool: Pool, slug: str) -> tuple[int, int]:
    book = await make_book(pool, slug)
    async with pool.connection() as conn:
        created = await customers.create_customer(
            conn, book.tenant_id, CLERK, AT, household("KH1", "Hộ A", so_khau=4)
        )
        point = (await customers.points_of(conn, book.tenant_id, created.id))[0]
    return book.tenant_id, point.id


def _rows(found: list[customers.Terms]) -> list[tuple[dt.date, dt.date | None, int | None, str]]:
    return [(t.valid_from, t.valid_to, t.so_khau, t.status) for t in found]


async def test_a_change_from_a_date_splits_the_row_in_force(pool: Pool) -> None:
    tenant, point = await _point(pool, "terms-a")
    async with pool.connection() as conn:
        changed = await customers.change_terms(
            conn, tenant, CLERK, AT, point, D(2026, 11, 16), {"so_khau": 5}, today=D(2026, 12, 5)
        )
        assert changed
        assert _rows(await customers.terms_of(conn, tenant, point)) == [
            (D(2026, 1, 1), D(2026, 11, 16), 4, "active"),
            (D(2026, 11, 16), None, 5, "active"),
        ]
        # Already in force: the point shows it now.
        assert (await customers.get_point(conn, tenant, point)).so_khau == 5
        entry = (await audit.history(conn, tenant, entity="service_point", entity_id=point))[0]
        assert entry.action == "change_terms"
        assert entry.before == {"effective_date": "2026-11-16", "so_khau": 4}
        assert entry.after == {"effective_date": "2026-11-16", "so_khau": 5}


async def test_a_future_change_waits_for_its_day(pool: Pool) -> None:
    tenant, point = await _point(pool, "terms-b")
    async with pool.connection() as conn:
        await customers.change_terms(
            conn, tenant, CLERK, AT, point, D(2027, 1, 1),
            {"status": Status.SUSPENDED}, today=D(2026, 12, 5),
        )  # fmt: skip
        assert (await customers.get_point(conn, tenant, point)).status == Status.ACTIVE
        assert await customers.sync_current(conn, tenant, D(2026, 12, 31)) == 0
        assert await customers.sync_current(conn, tenant, D(2027, 1, 1)) == 1
        now = await customers.get_point(conn, tenant, point)
        assert (now.status, now.status_from) == (Status.SUSPENDED, D(2027, 1, 1))


async def test_an_earlier_change_keeps_a_later_scheduled_one(pool: Pool) -> None:
    tenant, point = await _point(pool, "terms-c")
    async with pool.connection() as conn:
        today = D(2026, 12, 5)
        await customers.change_terms(
            conn, tenant, CLERK, AT, point, D(2027, 3, 1), {"so_khau": 6}, today=today
        )
        await customers.change_terms(
            conn, tenant, CLERK, AT, point, D(2027, 2, 1), {"so_khau": 2}, today=today
        )
        # A change of another field from before both reaches every later row.
        await customers.change_terms(
            conn, tenant, CLERK, AT, point, D(2027, 1, 1), {"exemption_pct": 50}, today=today
        )
        found = await customers.terms_of(conn, tenant, point)
    assert _rows(found) == [
        (D(2026, 1, 1), D(2027, 1, 1), 4, "active"),
        (D(2027, 1, 1), D(2027, 2, 1), 4, "active"),
        (D(2027, 2, 1), D(2027, 3, 1), 2, "active"),
        (D(2027, 3, 1), None, 6, "active"),
    ]
    assert [t.exemption_pct for t in found] == [0, 50, 50, 50]


async def test_the_same_value_changes_nothing_and_bad_changes_are_refused(pool: Pool) -> None:
    tenant, point = await _point(pool, "terms-d")
    async with pool.connection() as conn:
        assert not await customers.change_terms(
            conn, tenant, CLERK, AT, point, D(2026, 6, 1), {"so_khau": 4}, today=D(2026, 12, 5)
        )
        assert len(await customers.terms_of(conn, tenant, point)) == 1
        with pytest.raises(customers.InvalidValue, match=r"^effective_date: 2025-12-31 is before"):
            await customers.change_terms(
                conn,
                tenant,
                CLERK,
                AT,
                point,
                D(2025, 12, 31),
                {"so_khau": 5},
                today=D(2026, 12, 5),
            )
        with pytest.raises(customers.InvalidValue, match=r"^so_khau: "):
            await customers.change_terms(
                conn, tenant, CLERK, AT, point, D(2026, 6, 1), {"so_khau": 0}, today=D(2026, 12, 5)
            )
        with pytest.raises(customers.InvalidValue, match=r"^address: "):
            await terms.change_terms_from(
                conn, tenant, point, D(2026, 6, 1), {"address": "x"}, today=D(2026, 12, 5)
            )


async def test_period_terms_are_clipped_to_the_period(pool: Pool) -> None:
    tenant, point = await _point(pool, "terms-e")
    async with pool.connection() as conn:
        await customers.change_terms(
            conn, tenant, CLERK, AT, point, D(2026, 11, 16), {"so_khau": 5}, today=D(2026, 12, 5)
        )
        batches = [
            b async for b in customers.period_terms(conn, tenant, D(2026, 11, 1), D(2026, 12, 1))
        ]
    pieces = [p for b in batches for p in b]
    assert [(p.valid_from, p.valid_to, p.so_khau, p.billing_period) for p in pieces] == [
        (D(2026, 11, 1), D(2026, 11, 16), 4, "monthly"),
        (D(2026, 11, 16), D(2026, 12, 1), 5, "monthly"),
    ]
