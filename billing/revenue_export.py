"""The revenue report as an XLSX workbook for the accountant: a sheet of the groups' revenue
and a sheet of its VAT breakdown, each under a title (company, range, basis), with
Vietnamese headers, money as numbers formatted "#,##0" and the total row bold. Text a
spreadsheet would run as a formula is escaped."""

from __future__ import annotations

import io
import re
from typing import Any

from billing.revenue import (
    BASIS_NAMES_VI,
    GROUP_HEADERS_VI,
    TOTAL_VI,
    RevenueReport,
    RevenueRow,
)
from customers.spreadsheets import escape_text

NUMBER_FORMAT = "#,##0"  # thousands grouped, no decimals: money and counts
# Control characters XML (so XLSX) cannot hold.
_NOT_IN_SHEETS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
VAT_RATE_NAMES_VI = {"KCT": "Không chịu thuế", "0": "0%", "5": "5%", "8": "8%", "10": "10%"}


def revenue_xlsx(report: RevenueReport) -> bytes:
    """The workbook's bytes: sheet "Doanh thu", then sheet "Thuế GTGT"."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    _revenue_sheet(book, report)
    _vat_sheet(book, report)
    stream = io.BytesIO()
    book.save(stream)
    return stream.getvalue()


def _text(value: str) -> str:
    return escape_text(_NOT_IN_SHEETS.sub("", value))


def _group_headers(report: RevenueReport) -> list[str]:
    return [GROUP_HEADERS_VI[group] for group in report.group_by] or ["Nội dung"]


def _title(sheet: Any, report: RevenueReport, subject: str, width: int) -> None:
    """Widths first (a write-only sheet writes them ahead of the rows), then the company,
    the subject with its range and basis, the drafts left out, and a blank row: the
    headers are on row 5 whatever the report."""
    from openpyxl.styles import Font

    for column in range(1, width + 1):
        sheet.column_dimensions[_letter(column)].width = 36 if column == 1 else 20
    company = _cell(sheet, _text(report.company))
    company.font = Font(bold=True, size=13)
    sheet.append([company])
    sheet.append(
        [
            _cell(
                sheet,
                f"{subject} từ ngày {report.date_from:%d/%m/%Y} đến ngày"
                f" {report.date_to:%d/%m/%Y} ({BASIS_NAMES_VI[report.basis]})",
                bold=True,
            )
        ]
    )
    sheet.append(
        [
            "Hóa đơn nháp chưa phát hành, không tính vào doanh thu:"
            f" {_thousands(report.draft_invoices)} hóa đơn, {_thousands(report.drafts_vnd)} đồng"
        ]
    )
    sheet.append([])


def _thousands(number: int) -> str:
    """As Vietnamese write it: 1.234.567."""
    return f"{number:,}".replace(",", ".")


def _revenue_sheet(book: Any, report: RevenueReport) -> None:
    sheet = book.create_sheet("Doanh thu")
    headers = [
        *_group_headers(report),
        "Số hóa đơn",
        "Số dòng",
        "Tiền trước thuế (đồng)",
        "Tiền thuế GTGT (đồng)",
        "Tổng cộng (đồng)",
    ]
    if report.payments_known:
        headers += ["Đã thu (đồng)", "Còn phải thu (đồng)"]
    _title(sheet, report, "Báo cáo doanh thu", len(headers))
    sheet.append([_cell(sheet, header, bold=True) for header in headers])
    for row in [*report.rows, report.total]:
        bold = row is report.total
        money = [row.amount_vnd, row.vat_vnd, row.total_vnd]
        if report.payments_known:
            money += [row.paid_vnd or 0, row.outstanding_vnd or 0]
        sheet.append(
            [
                *_labels(sheet, report, row, bold),
                _cell(sheet, row.invoices, bold=bold, number_format=NUMBER_FORMAT),
                _cell(sheet, row.lines, bold=bold, number_format=NUMBER_FORMAT),
                *[_cell(sheet, v, bold=bold, number_format=NUMBER_FORMAT) for v in money],
            ]
        )


def _vat_sheet(book: Any, report: RevenueReport) -> None:
    sheet = book.create_sheet("Thuế GTGT")
    headers = [
        *_group_headers(report),
        "Thuế suất",
        "Tiền trước thuế (đồng)",
        "Tiền thuế GTGT (đồng)",
        "Tổng cộng (đồng)",
    ]
    _title(sheet, report, "Doanh thu theo thuế suất GTGT", len(headers))
    sheet.append([_cell(sheet, header, bold=True) for header in headers])
    for row in [*report.rows, report.total]:
        bold = row is report.total
        for rate, amounts in row.by_vat_rate.items():
            sheet.append(
                [
                    *_labels(sheet, report, row, bold),
                    _cell(sheet, VAT_RATE_NAMES_VI.get(rate, rate), bold=bold),
                    *[
                        _cell(sheet, value, bold=bold, number_format=NUMBER_FORMAT)
                        for value in (amounts.amount_vnd, amounts.vat_vnd, amounts.total_vnd)
                    ],
                ]
            )


def _labels(sheet: Any, report: RevenueReport, row: RevenueRow, bold: bool) -> list[Any]:
    if row is report.total:
        blanks = max(len(report.group_by), 1) - 1
        return [_cell(sheet, TOTAL_VI, bold=True), *([None] * blanks)]
    return [_cell(sheet, _text(label), bold=bold) for label in row.labels]


def _cell(sheet: Any, value: Any, *, bold: bool = False, number_format: str | None = None) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cell = WriteOnlyCell(sheet, value)
    if bold:
        cell.font = Font(bold=True)
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _letter(column: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(column))
