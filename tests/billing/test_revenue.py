"""The revenue report and its XLSX export, against the real PostgreSQL: invoices drafted
and issued through billing, corrected through billing, and written straight into the tables
(tests.billing.invoice_support)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest
from psycopg import AsyncConnection

import audit
import billing
from billing.invoice_models import vat_of
from billing.revenue import (
    RevenueBasis,
    RevenueGroup,
    RevenueReport,
    RevenueRow,
    VatAmounts,
    revenue_report,
)
from billing.revenue_export import revenue_xlsx
from storage import Pool
from tests.billing.invoice_support import SELLER, new_series, new_tenant, seed_invoices

ACTOR = audit.Actor("ketoan", None)
NOW = dt.datetime(2026, 7, 2, 3, 0, tzinfo=dt.UTC)
MAY, JUNE, JULY = dt.date(2026, 5, 1), dt.date(2026, 6, 1), dt.date(2026, 7, 1)
JUNE_30, JULY_2, JULY_31 = dt.date(2026, 6, 30), dt.date(2026, 7, 2), dt.date(2026, 7, 31)
COLLECTORS = {"NV01": "Nguyễn Văn An", "NV02": "Trần Thị Bình"}
AREAS = {"HK01": "Hàng Bạc", "HK02": "Hàng Đào"}


@dataclass(frozen=True)
class Book:
    """A company's staff, areas and invoice series, by code."""

    tenant_id: int
    series_id: int
    collectors: dict[str, int]
    areas: dict[str, int]


@dataclass(frozen=True)
class Line:
    """A line to draft, on a service point of its own placed as said."""

    amount_vnd: int
    vat_rate: str = "8"
    service: str = "collection"
    area: str | None = "HK01"
    collector: str | None = "NV01"
    customer_class: str = "household"


async def new_book(conn: AsyncConnection[Any], symbol: str = "C26TAA") -> Book:
    """Another company with the same seller needs another symbol: numbers are unique per
    seller's tax code."""
    tenant_id = await new_tenant(conn)
    collectors, areas = {}, {}
    for code, name in COLLECTORS.items():
        cursor = await conn.execute(
            "INSERT INTO staff (tenant_id, code, full_name, role) VALUES (%s, %s, %s,"
            " 'collector') RETURNING id",
            (tenant_id, code, name),
        )
        collectors[code] = (await cursor.fetchone() or (0,))[0]
    for code, name in AREAS.items():
        cursor = await conn.execute(
            "INSERT INTO areas (tenant_id, code, name) VALUES (%s, %s, %s) RETURNING id",
            (tenant_id, code, name),
        )
        areas[code] = (await cursor.fetchone() or (0,))[0]
    return Book(tenant_id, await new_series(conn, tenant_id, symbol), collectors, areas)


async def draft(
    conn: AsyncConnection[Any], book: Book, *lines: Line, period_start: dt.date = JUNE
) -> int:
    """A draft of one new customer with ``lines``, its points placed and its totals summed."""
    (invoice_id,) = await seed_invoices(
        conn,
        book.tenant_id,
        status="draft",
        amounts_vnd=tuple(line.amount_vnd for line in lines),
        period_start=period_start,
        series_id=book.series_id,
    )
    cursor = await conn.execute(
        "SELECT id, service_point_id FROM invoice_lines WHERE invoice_id = %s ORDER BY line_no",
        (invoice_id,),
    )
    for (line_id, point_id), line in zip(await cursor.fetchall(), lines, strict=True):
        await conn.execute(
            "UPDATE invoice_lines SET service = %s, vat_rate = %s, vat_vnd = %s WHERE id = %s",
            (line.service, line.vat_rate, vat_of(line.amount_vnd, line.vat_rate), line_id),
        )
        await place(conn, book, point_id, line)
    await conn.execute(
        "UPDATE invoices i SET subtotal_vnd = s.amount, vat_vnd = s.vat,"
        " total_vnd = s.amount + s.vat FROM (SELECT sum(amount_vnd) AS amount,"
        " sum(vat_vnd) AS vat FROM invoice_lines WHERE invoice_id = %s) s WHERE i.id = %s",
        (invoice_id, invoice_id),
    )
    return invoice_id


async def place(conn: AsyncConnection[Any], book: Book, point_id: int, line: Line) -> None:
    await conn.execute(
        "UPDATE service_points SET area_id = %s, collector_staff_id = %s, customer_class = %s"
        " WHERE id = %s",
        (
            book.areas.get(line.area or ""),
            book.collectors.get(line.collector or ""),
            line.customer_class,
            point_id,
        ),
    )


async def issue(conn: AsyncConnection[Any], book: Book, *ids: int, on: dt.date = JULY_2) -> None:
    await billing.issue_invoices(conn, book.tenant_id, ACTOR, NOW, list(ids), issue_date=on)


async def report(
    conn: AsyncConnection[Any],
    book: Book,
    *groups: RevenueGroup,
    basis: RevenueBasis = RevenueBasis.ISSUE_DATE,
    date_from: dt.date = JULY,
    date_to: dt.date = JULY_31,
) -> RevenueReport:
    return await revenue_report(
        conn, book.tenant_id, date_from=date_from, date_to=date_to, basis=basis, group_by=groups
    )


def figures(row: RevenueRow) -> tuple[int, int, int, int]:
    return row.invoices, row.lines, row.amount_vnd, row.vat_vnd


def by_label(rep: RevenueReport) -> dict[str, tuple[int, int, int, int]]:
    return {" | ".join(row.labels): figures(row) for row in rep.rows}


def assert_rows_add_up(rep: RevenueReport) -> None:
    """Everything but the invoice count adds up to the total (an invoice may be in two rows)."""
    total = rep.total
    assert sum(row.lines for row in rep.rows) == total.lines
    assert sum(row.amount_vnd for row in rep.rows) == total.amount_vnd
    assert sum(row.vat_vnd for row in rep.rows) == total.vat_vnd
    for rate, amounts in total.by_vat_rate.items():
        in_rows = [row.by_vat_rate[rate] for row in rep.rows if rate in row.by_vat_rate]
        assert sum(a.amount_vnd for a in in_rows) == amounts.amount_vnd
        assert sum(a.vat_vnd for a in in_rows) == amounts.vat_vnd


# Four lines on three invoices issued 2 July 2026 (hand-computed below):
#   invoice 1: collection 36,000 at 8 % (HK01, NV01, household)
#              container rental 130,000 at 8 % (HK02, NV02, business)
#   invoice 2: recycling 20,000 not subject to VAT (HK01, no collector, household)
#   invoice 3: collection 100,000 at 10 % (HK02, NV01, agency)
SMALL_SET = (
    (
        Line(36_000),
        Line(130_000, service="container_rental", area="HK02", collector="NV02",
             customer_class="business"),
    ),
    (Line(20_000, vat_rate="KCT", service="recycling", collector=None),),
    (Line(100_000, vat_rate="10", area="HK02", customer_class="agency"),),
)  # fmt: skip


async def small_set(conn: AsyncConnection[Any], book: Book) -> list[int]:
    ids = [await draft(conn, book, *lines) for lines in SMALL_SET]
    await issue(conn, book, *ids)
    return ids


# ---------------------------------------------------------------- what is summed


async def test_each_grouping_sums_the_lines_by_hand(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        await small_set(conn, book)

        by_service = await report(conn, book, RevenueGroup.SERVICE)
        assert by_label(by_service) == {
            "Dịch vụ thu gom, vận chuyển rác thải sinh hoạt": (2, 2, 136_000, 12_880),
            "Dịch vụ thu gom rác tái chế": (1, 1, 20_000, 0),
            "Thuê thùng chứa rác": (1, 1, 130_000, 10_400),
        }
        assert [row.keys for row in by_service.rows] == [
            ("collection",),
            ("recycling",),
            ("container_rental",),
        ]
        assert by_service.rows[0].by_vat_rate == {
            "8": VatAmounts(36_000, 2_880),
            "10": VatAmounts(100_000, 10_000),
        }
        assert figures(by_service.total) == (3, 4, 286_000, 23_280)
        assert by_service.total.total_vnd == 309_280
        assert by_service.total.labels == ("Tổng cộng",)
        assert by_service.total.by_vat_rate == {
            "KCT": VatAmounts(20_000, 0),
            "8": VatAmounts(166_000, 13_280),
            "10": VatAmounts(100_000, 10_000),
        }
        assert by_service.vat_rates == ["KCT", "8", "10"]
        assert_rows_add_up(by_service)

        by_area = await report(conn, book, RevenueGroup.AREA)
        assert by_label(by_area) == {
            "HK01 – Hàng Bạc": (2, 2, 56_000, 2_880),
            "HK02 – Hàng Đào": (2, 2, 230_000, 20_400),
        }
        # invoice 1 is in both areas: four invoices in the rows, three in the total
        assert figures(by_area.total) == (3, 4, 286_000, 23_280)
        assert_rows_add_up(by_area)

        by_class = await report(conn, book, RevenueGroup.CUSTOMER_CLASS)
        assert by_label(by_class) == {
            "Cơ quan, đơn vị": (1, 1, 100_000, 10_000),
            "Doanh nghiệp": (1, 1, 130_000, 10_400),
            "Hộ gia đình": (2, 2, 56_000, 2_880),
        }
        assert_rows_add_up(by_class)

        by_collector = await report(conn, book, RevenueGroup.COLLECTOR)
        assert by_label(by_collector) == {
            "NV01 – Nguyễn Văn An": (2, 2, 136_000, 12_880),
            "NV02 – Trần Thị Bình": (1, 1, 130_000, 10_400),
            "Chưa phân công": (1, 1, 20_000, 0),
        }
        assert [row.keys for row in by_collector.rows] == [("NV01",), ("NV02",), (None,)]
        assert_rows_add_up(by_collector)

        combined = await report(conn, book, RevenueGroup.AREA, RevenueGroup.SERVICE)
        assert by_label(combined) == {
            "HK01 – Hàng Bạc | Dịch vụ thu gom, vận chuyển rác thải sinh hoạt": (
                1, 1, 36_000, 2_880
            ),
            "HK01 – Hàng Bạc | Dịch vụ thu gom rác tái chế": (1, 1, 20_000, 0),
            "HK02 – Hàng Đào | Dịch vụ thu gom, vận chuyển rác thải sinh hoạt": (
                1, 1, 100_000, 10_000
            ),
            "HK02 – Hàng Đào | Thuê thùng chứa rác": (1, 1, 130_000, 10_400),
        }  # fmt: skip
        assert combined.total.labels == ("Tổng cộng", "Tổng cộng")
        assert_rows_add_up(combined)

        total_only = await report(conn, book)
        assert total_only.rows == []
        assert figures(total_only.total) == (3, 4, 286_000, 23_280)
        assert total_only.total.paid_vnd is None
        assert total_only.total.outstanding_vnd is None
        assert total_only.company == SELLER.legal_name


async def test_months_are_their_own_rows(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        may = await draft(conn, book, Line(60_000, vat_rate="KCT"), period_start=MAY)
        await issue(conn, book, may, on=JUNE_30)
        await small_set(conn, book)
        by_month = await report(conn, book, RevenueGroup.MONTH, date_from=JUNE)
    assert [(row.keys, row.labels) for row in by_month.rows] == [
        (("2026-06",), ("06/2026",)),
        (("2026-07",), ("07/2026",)),
    ]
    assert [figures(row) for row in by_month.rows] == [
        (1, 1, 60_000, 0),
        (3, 4, 286_000, 23_280),
    ]
    assert figures(by_month.total) == (4, 5, 346_000, 23_280)


async def test_an_invoice_written_numbered_line_by_line_counts_once(pool: Pool) -> None:
    """seed_invoices writes issued invoices straight in, a line per statement."""
    async with pool.connection() as conn:
        book = await new_book(conn)
        await seed_invoices(
            conn, book.tenant_id, 2, amounts_vnd=(36_000, 130_000), series_id=book.series_id
        )
        rep = await report(conn, book, RevenueGroup.AREA, RevenueGroup.SERVICE)
    # issued 2 July 2026, on points with no area yet
    assert by_label(rep) == {
        "Chưa có địa bàn | Dịch vụ thu gom, vận chuyển rác thải sinh hoạt": (
            2, 4, 332_000, 26_560
        )
    }  # fmt: skip
    assert figures(rep.total) == (2, 4, 332_000, 26_560)


async def test_revenue_stays_where_it_was_invoiced_when_a_point_moves(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        *_, third = await small_set(conn, book)
        groups = (RevenueGroup.AREA, RevenueGroup.COLLECTOR, RevenueGroup.CUSTOMER_CLASS)
        before = [by_label(await report(conn, book, group)) for group in groups]
        # invoice 3's point, from HK02, NV01, agency to HK01, NV02, household
        moved = Line(0, area="HK01", collector="NV02", customer_class="household")
        await place(conn, book, await _point_of(conn, third), moved)
        after = [by_label(await report(conn, book, group)) for group in groups]
    # a month reported stays as it was reported
    assert after == before
    assert before[0]["HK02 – Hàng Đào"][0] >= 1


async def test_corrections_count_and_drafts_stand_apart(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        adjusted = await draft(conn, book, Line(36_000), Line(130_000))
        replaced = await draft(conn, book, Line(100_000, vat_rate="10"))
        cancelled = await draft(conn, book, Line(50_000))
        await issue(conn, book, adjusted, replaced, cancelled)
        point = await _point_of(conn, adjusted)
        adjustment = await billing.draft_adjustment(
            conn,
            book.tenant_id,
            ACTOR,
            NOW,
            billing.NewAdjustment(
                invoice_ids=[adjusted],
                reason="Tính thừa số khẩu tháng 6",
                lines=[
                    _new_line(-36_000, point, "Giảm tiền thu gom tháng 6/2026"),
                    _new_line(10_000, point, "Thu gom bổ sung tháng 6/2026"),
                ],
            ),
        )
        replacement = await billing.draft_replacement(
            conn,
            book.tenant_id,
            ACTOR,
            NOW,
            replaced,
            billing.NewReplacement(
                reason="Sai đơn giá",
                lines=[_new_line(80_000, await _point_of(conn, replaced), "Thu gom", "10")],
            ),
        )
        await issue(conn, book, adjustment, replacement)
        await billing.cancel_invoice(conn, book.tenant_id, ACTOR, NOW, cancelled, "Lập nhầm")
        left_draft = await draft(conn, book, Line(20_000))

        cursor = await conn.execute(
            "SELECT id, status FROM invoices WHERE id = ANY(%s)",
            ([adjusted, replaced, cancelled, adjustment, replacement, left_draft],),
        )
        statuses: dict[int, str] = dict(await cursor.fetchall())
        assert statuses == {
            adjusted: "adjusted",
            replaced: "replaced",
            cancelled: "cancelled",
            adjustment: "issued",
            replacement: "issued",
            left_draft: "draft",
        }
        rep = await report(conn, book, RevenueGroup.SERVICE, date_from=JUNE)

    # the adjusted invoice and its adjustment (-36,000 and +10,000 at 8 %), the replacement
    assert figures(rep.total) == (3, 5, 220_000, 19_200)
    assert rep.total.by_vat_rate == {
        "8": VatAmounts(166_000 - 26_000, 13_280 - 2_080),
        "10": VatAmounts(80_000, 8_000),
    }
    assert rep.drafts_vnd == 21_600
    assert rep.draft_invoices == 1


def _new_line(amount_vnd: int, point_id: int, text: str, rate: str = "8") -> billing.NewLine:
    return billing.NewLine.model_validate(
        {
            "service": "collection",
            "description": text,
            "amount_vnd": amount_vnd,
            "vat_rate": rate,
            "service_point_id": point_id,
        }
    )


async def _point_of(conn: AsyncConnection[Any], invoice_id: int) -> int:
    cursor = await conn.execute(
        "SELECT service_point_id FROM invoice_lines WHERE invoice_id = %s AND line_no = 1",
        (invoice_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_the_basis_picks_issue_dates_or_service_periods(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        may_service = await draft(conn, book, Line(60_000, vat_rate="KCT"), period_start=MAY)
        await issue(conn, book, may_service, on=JUNE_30)
        june_service = await draft(conn, book, Line(40_000, vat_rate="KCT"))
        # a line without its own period is served in its invoice's period
        no_period = await draft(conn, book, Line(5_000, vat_rate="KCT"))
        await conn.execute(
            "UPDATE invoice_lines SET period_start = NULL, period_end = NULL WHERE invoice_id = %s",
            (no_period,),
        )
        await issue(conn, book, june_service, no_period, on=JULY_2)
        issued_in_june = await report(conn, book, date_from=JUNE, date_to=JUNE_30)
        served_in_june = await report(
            conn, book, basis=RevenueBasis.SERVICE_PERIOD, date_from=JUNE, date_to=JUNE_30
        )
        served_in_may = await report(
            conn, book, basis=RevenueBasis.SERVICE_PERIOD, date_from=MAY, date_to=MAY
        )
    assert figures(issued_in_june.total) == (1, 1, 60_000, 0)
    assert figures(served_in_june.total) == (2, 2, 45_000, 0)
    assert figures(served_in_may.total) == (1, 1, 60_000, 0)  # 1 May: one day is a range
    assert served_in_june.basis == RevenueBasis.SERVICE_PERIOD


async def test_another_companys_invoices_never_appear(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        await small_set(conn, book)
        other = await new_book(conn, "C26TAB")
        await small_set(conn, other)
        seeded_series = await new_series(conn, other.tenant_id, "C26TAC")
        await seed_invoices(conn, other.tenant_id, 3, series_id=seeded_series)
        await draft(conn, other, Line(1_000_000), period_start=JULY)
        mine = await report(conn, book, RevenueGroup.AREA, RevenueGroup.COLLECTOR)
        theirs = await report(conn, other)
    assert figures(mine.total) == (3, 4, 286_000, 23_280)
    assert mine.drafts_vnd == 0
    assert figures(theirs.total) == (6, 10, 784_000, 63_120)
    assert theirs.drafts_vnd == 1_080_000


async def test_nothing_issued_is_an_empty_report(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        rep = await report(conn, book, RevenueGroup.SERVICE)
    assert rep.rows == []
    assert figures(rep.total) == (0, 0, 0, 0)
    assert rep.total.by_vat_rate == {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"date_to": dt.date(2026, 5, 31)}, "date_to: 2026-05-31 is before date_from 2026-06-01"),
        ({"date_to": dt.date(2027, 6, 2)}, "date_to: the range is 367 days, at most 366"),
        ({"basis": "paid_date"}, "basis: 'paid_date' is not one of issue_date, service_period"),
        ({"group_by": ["area", "street"]}, "group_by: 'street' is not one of service, area,"),
        ({"group_by": "area"}, "group_by: 'area' is not a list of groups"),
    ],
)
async def test_bad_ranges_and_groups_name_the_field(
    pool: Pool, changes: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "date_from": JUNE,
        "date_to": dt.date(2027, 6, 1),  # 366 days: allowed
        "basis": "issue_date",
        "group_by": ["area"],
    }
    async with pool.connection() as conn:
        book = await new_book(conn)
        await revenue_report(conn, book.tenant_id, **arguments)
        with pytest.raises(billing.InvalidValue) as raised:
            await revenue_report(conn, book.tenant_id, **(arguments | changes))
    assert str(raised.value).startswith(message)


async def test_an_unknown_company_is_not_found(pool: Pool) -> None:
    async with pool.connection() as conn:
        with pytest.raises(billing.NotFound):
            await revenue_report(
                conn, 987_654, date_from=JUNE, date_to=JUNE_30, basis="issue_date", group_by=[]
            )


async def test_paid_is_split_over_the_lines_once_payments_exist(pool: Pool) -> None:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT to_regclass('payment_allocations') IS NOT NULL")
        if (await cursor.fetchone() or (False,))[0]:
            pytest.skip("payments exist: their allocations are tested with them")
        book = await new_book(conn)
        first, _, third = await small_set(conn, book)
        async with conn.transaction(force_rollback=True):
            # the shape billing.revenue expects (PAYMENT_ALLOCATIONS)
            await conn.execute(
                "CREATE TABLE payment_allocations (invoice_id bigint, amount_vnd bigint)"
            )
            await conn.execute(
                "INSERT INTO payment_allocations VALUES (%s, 100000), (%s, 79280), (%s, 55000)",
                (first, first, third),
            )
            rep = await report(conn, book, RevenueGroup.COLLECTOR)
    paid = {row.labels[0]: (row.paid_vnd, row.outstanding_vnd) for row in rep.rows}
    # invoice 1 (179,280) paid in full, invoice 3 (110,000) half, invoice 2 not at all
    assert paid == {
        "NV01 – Nguyễn Văn An": (38_880 + 55_000, 55_000),
        "NV02 – Trần Thị Bình": (140_400, 0),
        "Chưa phân công": (0, 20_000),
    }
    assert (rep.total.paid_vnd, rep.total.outstanding_vnd) == (234_280, 75_000)
    assert rep.payments_known
    sheet = openpyxl.load_workbook(io.BytesIO(revenue_xlsx(rep)))["Doanh thu"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[4][-2:] == ["Đã thu (đồng)", "Còn phải thu (đồng)"]
    assert rows[-1][-3:] == [309_280, 234_280, 75_000]


# ---------------------------------------------------------------- the workbook


async def test_the_workbook_carries_the_report(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        await small_set(conn, book)
        await draft(conn, book, Line(20_000), period_start=JULY)
        rep = await report(conn, book, RevenueGroup.AREA, RevenueGroup.SERVICE)
    workbook = openpyxl.load_workbook(io.BytesIO(revenue_xlsx(rep)))
    assert workbook.sheetnames == ["Doanh thu", "Thuế GTGT"]

    sheet = workbook["Doanh thu"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0][0] == SELLER.legal_name
    assert rows[1][0] == (
        "Báo cáo doanh thu từ ngày 01/07/2026 đến ngày 31/07/2026 (theo ngày lập hóa đơn)"
    )
    assert rows[2][0] == (
        "Hóa đơn nháp chưa phát hành, không tính vào doanh thu: 1 hóa đơn, 21.600 đồng"
    )
    header = rows[4]
    assert header == [
        "Địa bàn",
        "Dịch vụ",
        "Số hóa đơn",
        "Số dòng",
        "Tiền trước thuế (đồng)",
        "Tiền thuế GTGT (đồng)",
        "Tổng cộng (đồng)",
    ]
    body, total = rows[5:-1], rows[-1]
    assert len(body) == len(rep.rows) == 4
    assert body[0] == [
        "HK01 – Hàng Bạc",
        "Dịch vụ thu gom, vận chuyển rác thải sinh hoạt",
        1,
        1,
        36_000,
        2_880,
        38_880,
    ]
    assert total == ["Tổng cộng", None, 3, 4, 286_000, 23_280, 309_280]
    assert [sum(row[i] for row in body) for i in (4, 5, 6)] == [286_000, 23_280, 309_280]
    last = sheet.max_row
    assert sheet.cell(last, 1).font.bold
    assert sheet.cell(last, 7).font.bold
    assert sheet.cell(last, 7).number_format == "#,##0"
    assert sheet.cell(6, 5).number_format == "#,##0"
    assert not sheet.cell(6, 5).font.bold

    vat = workbook["Thuế GTGT"]
    vat_rows = [[cell.value for cell in row] for row in vat.iter_rows()]
    assert vat_rows[4] == [
        "Địa bàn",
        "Dịch vụ",
        "Thuế suất",
        "Tiền trước thuế (đồng)",
        "Tiền thuế GTGT (đồng)",
        "Tổng cộng (đồng)",
    ]
    totals = [row[2:] for row in vat_rows if row[0] == "Tổng cộng"]
    assert totals == [
        ["Không chịu thuế", 20_000, 0, 20_000],
        ["8%", 166_000, 13_280, 179_280],
        ["10%", 100_000, 10_000, 110_000],
    ]


async def test_a_label_starting_with_a_formula_sign_is_escaped(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        await small_set(conn, book)
        await conn.execute(
            "UPDATE staff SET code = '=1+1', full_name = '@SUM(A1)' WHERE id = %s",
            (book.collectors["NV02"],),
        )
        await conn.execute(
            "UPDATE sellers SET legal_name = '=cmd|calc' WHERE tenant_id = %s", (book.tenant_id,)
        )
        rep = await report(conn, book, RevenueGroup.COLLECTOR)
    workbook = openpyxl.load_workbook(io.BytesIO(revenue_xlsx(rep)))
    values = [cell.value for row in workbook["Doanh thu"].iter_rows() for cell in row]
    assert "'=cmd|calc" in values
    assert "'=1+1 – @SUM(A1)" in values
    assert all(v is None or v.data_type != "f" for row in workbook["Doanh thu"].iter_rows()
               for v in row)  # fmt: skip


async def test_a_report_without_groups_is_its_total(pool: Pool) -> None:
    async with pool.connection() as conn:
        book = await new_book(conn)
        await small_set(conn, book)
        rep = await report(conn, book, basis=RevenueBasis.SERVICE_PERIOD, date_from=JUNE)
    workbook = openpyxl.load_workbook(io.BytesIO(revenue_xlsx(rep)))
    rows = [[cell.value for cell in row] for row in workbook["Doanh thu"].iter_rows()]
    assert rows[1][0] == (
        "Báo cáo doanh thu từ ngày 01/06/2026 đến ngày 31/07/2026 (theo kỳ dịch vụ)"
    )
    assert rows[2][0].endswith(": 0 hóa đơn, 0 đồng")
    assert rows[4][0] == "Nội dung"
    assert rows[5:] == [["Tổng cộng", 3, 4, 286_000, 23_280, 309_280]]
    vat_rows = [[cell.value for cell in row] for row in workbook["Thuế GTGT"].iter_rows()]
    assert [row[1] for row in vat_rows[5:]] == ["Không chịu thuế", "8%", "10%"]
