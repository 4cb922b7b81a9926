"""Printing batches of invoices (print status, reprints, scopes) and the collector's book,
against the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from typing import Any

import pytest
from psycopg import AsyncConnection
from pypdf import PdfReader

import accounts
import audit
import billing
import fleet
from billing.pdf import money
from billing.printing import collector_book, print_history, print_invoices
from storage import Pool
from tests.billing.invoice_support import new_series, new_tenant, seed_invoices

NOW = dt.datetime(2026, 7, 3, 1, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=2)
JUNE = dt.date(2026, 6, 1)


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def printed_numbers(pdf: bytes) -> list[str]:
    """The invoice numbers in the order the file has them."""
    return re.findall(r"^Số: (\d{8})$", pdf_text(pdf), re.MULTILINE)


async def accountant(conn: AsyncConnection[Any], tenant_id: int) -> audit.Actor:
    user = await accounts.create_user(
        conn,
        tenant_id,
        accounts.NewUser("ketoan.lan", "Trần Thị Lan", accounts.Role.ACCOUNTANT, "horse battery"),
    )
    return audit.Actor("ketoan.lan", user.id)


async def new_area(conn: AsyncConnection[Any], tenant_id: int, code: str) -> int:
    cursor = await conn.execute(
        "INSERT INTO areas (tenant_id, code, name) VALUES (%s, %s, %s) RETURNING id",
        (tenant_id, code, f"Địa bàn {code}"),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def new_collector(conn: AsyncConnection[Any], tenant_id: int, code: str, name: str) -> int:
    return await fleet.ensure_staff(conn, tenant_id, code, name, fleet.StaffRole.COLLECTOR)


async def points_of(conn: AsyncConnection[Any], invoice_id: int) -> list[int]:
    cursor = await conn.execute(
        "SELECT service_point_id FROM invoice_lines WHERE invoice_id = %s ORDER BY line_no",
        (invoice_id,),
    )
    return [int(row[0]) for row in await cursor.fetchall()]


async def place(
    conn: AsyncConnection[Any],
    point_id: int,
    *,
    area_id: int | None = None,
    collector_id: int | None = None,
    book_order: int | None = None,
) -> None:
    await conn.execute(
        "UPDATE service_points SET area_id = %s, collector_staff_id = %s, book_order = %s"
        " WHERE id = %s",
        (area_id, collector_id, book_order, point_id),
    )


async def print_counts(conn: AsyncConnection[Any], ids: list[int]) -> list[int]:
    cursor = await conn.execute("SELECT id, print_count FROM invoices WHERE id = ANY(%s)", (ids,))
    counts = dict(await cursor.fetchall())
    return [counts[i] for i in ids]


# ---------------------------------------------------------------- batches


async def test_a_first_print_then_a_reprint_are_recorded(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        actor = await accountant(conn, tenant_id)
        ids = await seed_invoices(conn, tenant_id, 3)
        seen: list[tuple[int, int]] = []
        first = await print_invoices(
            conn, tenant_id, actor, NOW, invoice_ids=ids, progress=lambda d, t: seen.append((d, t))
        )
        assert (first.invoice_count, first.reprints, first.pages) == (3, 0, 3)
        assert seen[-1] == (3, 3)
        assert len(PdfReader(io.BytesIO(first.pdf)).pages) == 3
        assert await print_counts(conn, ids) == [1, 1, 1]
        second = await print_invoices(conn, tenant_id, actor, LATER, invoice_ids=ids[:2])
        assert (second.invoice_count, second.reprints) == (2, 2)
        assert await print_counts(conn, ids) == [2, 2, 1]

        history = await print_history(conn, tenant_id, ids[0])
        assert [(h.print_no, h.printed_at, h.printed_by, h.batch_id) for h in history] == [
            (1, NOW, actor.user_id, first.id),
            (2, LATER, actor.user_id, second.id),
        ]
        assert [h.print_no for h in await print_history(conn, tenant_id, ids[2])] == [1]
        cursor = await conn.execute(
            "SELECT last_printed_at, last_printed_by FROM invoices WHERE id = %s", (ids[0],)
        )
        assert await cursor.fetchone() == (LATER, actor.user_id)

        cursor = await conn.execute(
            "SELECT kind, scope, invoice_count, pages, size_bytes, sha256, created_by"
            " FROM print_batches WHERE id = %s",
            (first.id,),
        )
        assert await cursor.fetchone() == (
            "invoices",
            {"invoice_ids": ids},
            3,
            3,
            len(first.pdf),
            hashlib.sha256(first.pdf).hexdigest(),
            actor.user_id,
        )
        entries = await audit.history(conn, tenant_id, entity="print_batch", entity_id=first.id)
        assert len(entries) == 1
        assert entries[0].action == "print"
        assert entries[0].actor_user == actor.user_id
        assert entries[0].after is not None
        assert entries[0].after["sha256"] == first.sha256


async def test_a_batch_goes_in_the_collectors_walking_order(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        actor = audit.Actor("ketoan")
        ids = await seed_invoices(conn, tenant_id, 5)
        area_a, area_b = await new_area(conn, tenant_id, "A"), await new_area(conn, tenant_id, "B")
        binh = await new_collector(conn, tenant_id, "TG01", "Lê Văn Bình")
        chi = await new_collector(conn, tenant_id, "TG02", "Phạm Thị Chi")
        # area A, Bình's book: invoice 3 first, then 1, then 2 (no place in the book: last)
        for invoice_id, order in ((ids[2], 1), (ids[0], 2), (ids[1], None)):
            for point in await points_of(conn, invoice_id):
                await place(conn, point, area_id=area_a, collector_id=binh, book_order=order)
        for point in await points_of(conn, ids[3]):
            await place(conn, point, area_id=area_b, collector_id=chi, book_order=1)

        in_a = await print_invoices(conn, tenant_id, actor, NOW, area_id=area_a)
        assert printed_numbers(in_a.pdf) == ["00000003", "00000001", "00000002"]
        by_chi = await print_invoices(conn, tenant_id, actor, NOW, collector_staff_id=chi)
        assert printed_numbers(by_chi.pdf) == ["00000004"]
        both = await print_invoices(
            conn, tenant_id, actor, NOW, area_id=area_a, collector_staff_id=binh, period_start=JUNE
        )
        assert both.invoice_count == 3
        assert both.reprints == 3
        listed = await print_invoices(conn, tenant_id, actor, NOW, invoice_ids=ids[::-1])
        assert printed_numbers(listed.pdf) == [
            "00000003",
            "00000001",
            "00000002",
            "00000004",
            "00000005",
        ]
        assert await print_counts(conn, ids) == [3, 3, 3, 2, 1]
        cursor = await conn.execute("SELECT scope FROM print_batches WHERE id = %s", (both.id,))
        assert await cursor.fetchone() == (
            {"area_id": area_a, "collector_staff_id": binh, "period_start": "2026-06-01"},
        )
        with pytest.raises(billing.InvalidValue, match=r"^scope: no issued invoice"):
            await print_invoices(conn, tenant_id, actor, NOW, period_start=dt.date(2026, 5, 1))


async def test_drafts_are_not_printed_and_void_invoices_stay_out_of_a_scope(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        actor = audit.Actor("ketoan")
        series_id = await new_series(conn, tenant_id)
        issued = await seed_invoices(conn, tenant_id, 2, series_id=series_id)
        drafts = await seed_invoices(conn, tenant_id, 2, status="draft", series_id=series_id)
        with pytest.raises(billing.InvalidValue, match=f"invoice {drafts[0]} is a draft"):
            await print_invoices(conn, tenant_id, actor, NOW, invoice_ids=[issued[0], drafts[0]])
        assert await print_counts(conn, issued) == [0, 0]
        await conn.execute("UPDATE invoices SET status = 'cancelled' WHERE id = %s", (issued[1],))
        batch = await print_invoices(conn, tenant_id, actor, NOW, period_start=JUNE)
        assert printed_numbers(batch.pdf) == ["00000001"]
        assert "BẢN NHÁP" not in pdf_text(batch.pdf)
        # asked for by number, a cancelled invoice prints, with its mark
        cancelled = await print_invoices(conn, tenant_id, actor, NOW, invoice_ids=[issued[1]])
        assert "ĐÃ HỦY" in pdf_text(cancelled.pdf)

        await conn.execute("UPDATE invoices SET status = 'replaced' WHERE id = %s", (issued[0],))
        with pytest.raises(billing.InvalidValue, match=r"^scope: no issued invoice.*2 drafts"):
            await print_invoices(conn, tenant_id, actor, NOW, period_start=JUNE)
        with pytest.raises(billing.InvalidValue, match=r"^scope: give invoice_ids"):
            await print_invoices(conn, tenant_id, actor, NOW)
        with pytest.raises(billing.InvalidValue, match="not both"):
            await print_invoices(conn, tenant_id, actor, NOW, invoice_ids=issued, area_id=1)


async def test_another_tenants_invoices_are_not_found(pool: Pool) -> None:
    """Listed by id, another tenant's invoice is NotFound (as one that never existed); by
    scope, its invoices are never selected."""
    async with pool.connection() as conn:
        ours, theirs = await new_tenant(conn), await new_tenant(conn)
        actor = audit.Actor("ketoan")
        our_ids = await seed_invoices(conn, ours, 1)
        their_series = await new_series(conn, theirs, symbol="C26TBB")  # numbers of their own
        their_ids = await seed_invoices(conn, theirs, 2, series_id=their_series)
        with pytest.raises(billing.NotFound, match=f"invoice {their_ids[0]} does not exist"):
            await print_invoices(conn, ours, actor, NOW, invoice_ids=[our_ids[0], their_ids[0]])
        with pytest.raises(billing.NotFound):
            await print_history(conn, ours, their_ids[0])
        batch = await print_invoices(conn, ours, actor, NOW, period_start=JUNE)
        assert batch.invoice_count == 1
        assert await print_counts(conn, their_ids) == [0, 0]


# ---------------------------------------------------------------- the collector's book


async def test_the_collectors_book_follows_the_book_order_with_what_is_due(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        actor = audit.Actor("ketoan")
        ids = await seed_invoices(conn, tenant_id, 4, amounts_vnd=(50_000, 25_000))
        thu = await new_collector(conn, tenant_id, "TG07", "Nguyễn Thị Thu")
        other = await new_collector(conn, tenant_id, "TG08", "Hoàng Văn Nam")
        p = [await points_of(conn, invoice_id) for invoice_id in ids]
        # Thu walks: invoice 2's first point, invoice 1's both, invoice 4's first (cancelled),
        # then invoice 2's second point without a place in the book; invoice 3 is Nam's.
        order = [(p[1][0], 1), (p[0][0], 2), (p[0][1], 3), (p[3][0], 4), (p[1][1], None)]
        for point, book_order in order:
            await place(conn, point, collector_id=thu, book_order=book_order)
        await place(conn, p[2][0], collector_id=other, book_order=1)
        await place(conn, p[3][1], collector_id=thu, book_order=5)
        await conn.execute(
            "UPDATE service_points SET status = 'terminated' WHERE id = %s", (p[3][1],)
        )
        await conn.execute("UPDATE invoices SET status = 'cancelled' WHERE id = %s", (ids[3],))

        book = await collector_book(conn, tenant_id, thu, JUNE, actor, NOW)
        text = pdf_text(book.pdf)
        assert "Nhân viên thu: Nguyễn Thị Thu (mã TG07)" in text
        assert "Kỳ: 01/06/2026 – 30/06/2026" in text
        addresses = re.findall(r"Số (\d) ngõ (\d) phố Hàng Bạc", text)
        assert addresses == [("2", "1"), ("1", "1"), ("1", "2"), ("4", "1"), ("2", "2")]
        # one invoice each: 50,000 and 25,000 at 8%; carried on the customer's first row
        each = 50_000 + 4_000 + 25_000 + 2_000
        assert text.count(money(each)) == 2
        assert "xem STT 2" in text
        assert "xem STT 1" in text
        assert "1C26TAA 00000001" in text
        assert "1C26TAA 00000002" in text
        assert "00000003" not in text
        assert "00000004" not in text
        assert f"Tổng cộng: 5 điểm, 2 khách hàng phải thu {money(2 * each)}" in text
        assert "Trần Thị Bưởi" in text
        assert "Nguyễn Văn Ánh" in text
        assert (book.kind, book.invoice_count, book.reprints) == ("collector_book", 2, 0)
        assert book.pages == len(PdfReader(io.BytesIO(book.pdf)).pages) == 1
        cursor = await conn.execute(
            "SELECT kind, scope, invoice_count, sha256 FROM print_batches WHERE id = %s",
            (book.id,),
        )
        assert await cursor.fetchone() == (
            "collector_book",
            {"collector_staff_id": thu, "period_start": "2026-06-01"},
            2,
            book.sha256,
        )
        assert await print_counts(conn, ids) == [0, 0, 0, 0]  # a book is not an invoice print
        assert (
            len(await audit.history(conn, tenant_id, entity="print_batch", entity_id=book.id)) == 1
        )


async def test_a_long_book_runs_onto_numbered_pages(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        ids = await seed_invoices(conn, tenant_id, 30, amounts_vnd=(10_000,))
        thu = await new_collector(conn, tenant_id, "TG07", "Nguyễn Thị Thu")
        for order, invoice_id in enumerate(reversed(ids), start=1):
            (point,) = await points_of(conn, invoice_id)
            await place(conn, point, collector_id=thu, book_order=order)
        book = await collector_book(conn, tenant_id, thu, JUNE, audit.Actor("ketoan"), NOW)
        pages = [page.extract_text() for page in PdfReader(io.BytesIO(book.pdf)).pages]
        assert book.pages == len(pages) >= 2
        for number, text in enumerate(pages, start=1):
            assert f"Trang {number}/{len(pages)}" in text
            if "1C26TAA" in text:
                assert "Số tiền phải thu" in text  # the table's header on every page of rows
        numbers = re.findall(r"1C26TAA (\d{8})", "\n".join(pages))
        assert numbers == [f"{n:08d}" for n in range(30, 0, -1)]
        assert f"phải thu {money(30 * 10_800)}" in "\n".join(pages[-2:])


async def test_a_book_needs_a_collector_of_the_tenant_with_points(pool: Pool) -> None:
    async with pool.connection() as conn:
        ours, theirs = await new_tenant(conn), await new_tenant(conn)
        their_collector = await new_collector(conn, theirs, "TG01", "Đỗ Văn Hải")
        idle = await new_collector(conn, ours, "TG09", "Vũ Thị Mai")
        with pytest.raises(billing.NotFound, match=f"collector {their_collector} does not exist"):
            await collector_book(conn, ours, their_collector, JUNE, audit.Actor("ketoan"), NOW)
        with pytest.raises(billing.InvalidValue, match="no active service point"):
            await collector_book(conn, ours, idle, JUNE, audit.Actor("ketoan"), NOW)
