"""The collector's printed book (sổ thu): on landscape A4, every service point of one
collector in the order the collector walks, what each customer owes for the period, and
empty columns for what was collected and the customer's signature, filled in by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from billing.errors import InvalidValue
from billing.pdf.flow import Block, Frame, draw_pages, paginate
from billing.pdf.formats import date_short, money
from billing.pdf.render import RenderedPdf
from billing.pdf.sheet import GREY, Sheet, line_height
from billing.pdf.table import Cell, Column, Table

MARGIN_MM = 10.0
CONTENT_MM = 277.0  # landscape A4's 297 less the margins
FRAME = Frame(first_top_mm=10.0, next_top_mm=19.0, bottom_mm=195.0)
FOOTER_MM = 199.0
TABLE_PT = 8.5
ROW_MIN_MM = 9.0  # room for a signature
TITLE = "SỔ THU TIỀN DỊCH VỤ THU GOM, VẬN CHUYỂN RÁC THẢI"

COLUMNS = (
    Column("STT", 10, "C"),
    Column("Mã KH", 24),
    Column("Tên khách hàng", 46),
    Column("Địa chỉ", 66),
    Column("Điện thoại", 25),
    Column("Hóa đơn (ký hiệu, số)", 30),
    Column("Số tiền phải thu", 26, "R"),
    Column("Đã thu", 25, "R"),
    Column("Chữ ký", 25),
)


@dataclass(frozen=True, slots=True)
class BookRow:
    """One service point. A customer's amount is on the first of its points in the book;
    its other points say which row carries it (``see_row``)."""

    customer_code: str
    customer_name: str
    address: str
    phones: str
    invoices: str  # "1C26TAA 00000012", several separated by commas; "" when none
    due_vnd: int | None  # None: nothing due on this row
    see_row: int | None = None


@dataclass(frozen=True, slots=True)
class CollectorBook:
    company: str
    collector_name: str
    collector_code: str
    period: str  # as printed: "01/06/2026 – 30/06/2026"
    printed_on: dt.date
    rows: Sequence[BookRow]

    @property
    def total_due_vnd(self) -> int:
        return sum(row.due_vnd or 0 for row in self.rows)

    @property
    def customers_due(self) -> int:
        return sum(1 for row in self.rows if row.due_vnd is not None)


def render_collector_book(
    book: CollectorBook, created_at: dt.datetime | None = None
) -> RenderedPdf:
    if not book.rows:
        raise InvalidValue("rows: the collector's book has no service point")
    sheet = Sheet("L", f"Sổ thu – {book.collector_name}", created_at)
    table = Table(MARGIN_MM, COLUMNS, TABLE_PT)
    header = table.header(sheet)
    blocks = [
        _heading(sheet, book),
        header,
        *[
            table.row(sheet, _cells(index, row), min_height_mm=ROW_MIN_MM)
            for index, row in enumerate(book.rows, start=1)
        ],
        table.row(
            sheet,
            [
                Cell(
                    f"Tổng cộng: {len(book.rows)} điểm, {book.customers_due} khách hàng phải thu",
                    6,
                    "L",
                ),
                money(book.total_due_vnd),
                "",
                "",
            ],
            bold=True,
            row=False,
            min_height_mm=ROW_MIN_MM,
        ),
        _signatures(),
    ]
    pages = paginate(blocks, FRAME, header)
    running_head = f"{TITLE} – {book.collector_name} – Kỳ: {book.period} (tiếp theo)"

    def chrome(sheet: Sheet, index: int, count: int) -> None:
        if index > 0:
            sheet.text(MARGIN_MM, 9, running_head, 9, bold=True)
            sheet.line(MARGIN_MM, 15, MARGIN_MM + CONTENT_MM, 15)
        sheet.text(
            MARGIN_MM, FOOTER_MM, f"Trang {index + 1}/{count}", 8, align="R", width=CONTENT_MM
        )

    draw_pages(sheet, pages, chrome)
    return RenderedPdf(sheet.output(), len(pages))


def _cells(index: int, row: BookRow) -> list[str | Cell]:
    if row.due_vnd is not None:
        due = money(row.due_vnd)
    elif row.see_row is not None:
        due = f"xem STT {row.see_row}"
    else:
        due = ""
    return [
        str(index),
        row.customer_code,
        row.customer_name,
        row.address,
        row.phones,
        row.invoices or "—",
        due,
        "",
        "",
    ]


def _heading(sheet: Sheet, book: CollectorBook) -> Block:
    company = sheet.wrap(book.company, 120, 9, True)
    height = max(len(company) * line_height(9), 8) + line_height(14) + 2 * line_height(10) + 4

    def draw(sheet: Sheet, y: float) -> None:
        sheet.lines(MARGIN_MM, y, company, 9, bold=True)
        sheet.text(
            MARGIN_MM, y, f"Ngày in: {date_short(book.printed_on)}", 9, align="R", width=CONTENT_MM
        )
        top = y + max(len(company) * line_height(9), 8)
        sheet.text(MARGIN_MM, top, TITLE, 14, bold=True, align="C", width=CONTENT_MM)
        top += line_height(14)
        collector = f"Nhân viên thu: {book.collector_name} (mã {book.collector_code})"
        sheet.text(MARGIN_MM, top, collector, 10, bold=True, align="C", width=CONTENT_MM)
        top += line_height(10)
        sheet.text(MARGIN_MM, top, f"Kỳ: {book.period}", 10, align="C", width=CONTENT_MM)

    return Block(height, draw)


def _signatures() -> Block:
    half = CONTENT_MM / 2

    def draw(sheet: Sheet, y: float) -> None:
        sheet.text(MARGIN_MM, y + 3, "Tổng số tiền đã thu: ....................................", 9)
        for index, who in enumerate(("Người lập sổ", "Nhân viên thu")):
            left = MARGIN_MM + index * half
            sheet.text(left, y + 9, who, 10, bold=True, align="C", width=half)
            sheet.text(left, y + 14, "(Ký, ghi rõ họ tên)", 8, align="C", width=half, colour=GREY)

    return Block(34, draw)
