"""One invoice as Circular 78/2021 has it printed ("bản thể hiện của hóa đơn điện tử"): the
title, symbol, number and date; the seller; the buyer; the lines; the totals per VAT rate
and in words; the signatures. An invoice runs onto as many A4 pages as its lines need,
each page after the first headed by its symbol and number and the table's header.
"""

from __future__ import annotations

from collections.abc import Sequence

from billing.amount_words import amount_in_words
from billing.invoice_models import (
    InvoiceDocument,
    InvoiceKind,
    InvoiceLine,
    InvoiceReference,
    InvoiceStatus,
    VatGroup,
)
from billing.pdf.flow import Block, Frame, draw_pages, paginate
from billing.pdf.formats import (
    date_short,
    date_words,
    decimal_text,
    local_date,
    money,
    period_text,
    vat_rate_text,
)
from billing.pdf.sheet import GREY, RED, Sheet, line_height
from billing.pdf.table import Cell, Column, Table

MARGIN_MM = 12.0
CONTENT_MM = 186.0  # A4's 210 less the margins
FRAME = Frame(first_top_mm=10.0, next_top_mm=21.0, bottom_mm=280.0)
FOOTER_MM = 283.0
BODY_PT = 9.0
TABLE_PT = 8.5

TITLES = {"1": "HÓA ĐƠN GIÁ TRỊ GIA TĂNG", "2": "HÓA ĐƠN BÁN HÀNG"}
DRAFT_MARK = "BẢN NHÁP – KHÔNG CÓ GIÁ TRỊ THANH TOÁN"
CANCELLED_MARK = "ĐÃ HỦY"
REPLACED_MARK = "ĐÃ BỊ THAY THẾ"
CHECK_NOTE = "(Cần kiểm tra, đối chiếu khi lập, giao, nhận hóa đơn)"
ORGANISATION_KINDS = frozenset({"business", "agency"})

VAT_COLUMNS = (
    Column("STT", 8, "C"),
    Column("Tên hàng hóa, dịch vụ", 69),
    Column("Đơn vị tính", 14, "C"),
    Column("Số lượng", 15, "R"),
    Column("Đơn giá", 21, "R"),
    Column("Thành tiền", 24, "R"),
    Column("Thuế suất", 13, "C"),
    Column("Tiền thuế GTGT", 22, "R"),
)
VAT_NUMBERS = ("1", "2", "3", "4", "5", "6 = 4 x 5", "7", "8 = 6 x 7")
# A sales invoice (template 2) carries no VAT: its table stops at the amount.
SALES_COLUMNS = (
    Column("STT", 10, "C"),
    Column("Tên hàng hóa, dịch vụ", 88),
    Column("Đơn vị tính", 18, "C"),
    Column("Số lượng", 18, "R"),
    Column("Đơn giá", 24, "R"),
    Column("Thành tiền", 28, "R"),
)
SALES_NUMBERS = ("1", "2", "3", "4", "5", "6 = 4 x 5")


def title_of(document: InvoiceDocument) -> str:
    """By the template; a draft has none yet and prints as a VAT invoice."""
    return TITLES.get(document.invoice.template or "1", TITLES["1"])


def status_mark(document: InvoiceDocument) -> str | None:
    status = document.invoice.status
    if status is InvoiceStatus.DRAFT:
        return DRAFT_MARK
    if status is InvoiceStatus.CANCELLED:
        return CANCELLED_MARK
    if status is InvoiceStatus.REPLACED:
        return REPLACED_MARK
    return None


def reference_text(reference: InvoiceReference) -> str:
    """ "Điều chỉnh cho hóa đơn Mẫu số 1 Ký hiệu C26TAA Số 00000012 ngày 02 tháng 07 năm
    2026", as an adjustment or a replacement names what it corrects."""
    verb = "Điều chỉnh cho" if reference.relation == "adjusts" else "Thay thế cho"
    return (
        f"{verb} hóa đơn Mẫu số {reference.template} Ký hiệu {reference.symbol}"
        f" Số {reference.number:08d} {date_words(reference.issue_date).lower()}"
    )


def draw_invoice(sheet: Sheet, document: InvoiceDocument) -> int:
    """The invoice on new pages of ``sheet``; how many pages it took."""
    vat_invoice = document.invoice.template != "2"
    table = Table(MARGIN_MM, VAT_COLUMNS if vat_invoice else SALES_COLUMNS, TABLE_PT)
    header = table.header(sheet, VAT_NUMBERS if vat_invoice else SALES_NUMBERS)
    blocks = [
        _heading(sheet, document),
        *_corrections(sheet, document),
        _seller(sheet, document),
        _buyer(sheet, document),
        header,
        *[table.row(sheet, _line_cells(line, vat_invoice)) for line in document.lines],
        *_totals(sheet, table, document, vat_invoice),
        _in_words(sheet, document),
        _signatures(sheet, document),
    ]
    pages = paginate(blocks, FRAME, header)
    running_head = _running_head(document)
    mark = status_mark(document)

    def chrome(sheet: Sheet, index: int, count: int) -> None:
        if mark is not None:
            sheet.watermark(mark.split(" – ")[0], 56)  # BẢN NHÁP, ĐÃ HỦY, ĐÃ BỊ THAY THẾ
        if index > 0:
            sheet.text(MARGIN_MM, 10, running_head, BODY_PT, bold=True)
            sheet.line(MARGIN_MM, 16, MARGIN_MM + CONTENT_MM, 16)
        sheet.line(MARGIN_MM, FOOTER_MM, MARGIN_MM + CONTENT_MM, FOOTER_MM, 0.1)
        sheet.text(MARGIN_MM, FOOTER_MM + 1, CHECK_NOTE, 7.5, colour=GREY)
        if count > 1:
            sheet.text(
                MARGIN_MM,
                FOOTER_MM + 1,
                f"Trang {index + 1}/{count}",
                8,
                align="R",
                width=CONTENT_MM,
            )

    draw_pages(sheet, pages, chrome)
    return len(pages)


def _running_head(document: InvoiceDocument) -> str:
    invoice = document.invoice
    number = invoice.number_text or "(chưa cấp số)"
    return f"{title_of(document)} – Ký hiệu: {invoice.series_code or ''} – Số: {number} (tiếp theo)"


def _heading(sheet: Sheet, document: InvoiceDocument) -> Block:
    """Title, "bản thể hiện", kind, date and the tax authority's code in the middle;
    symbol and number on the right; the status mark under them all."""
    invoice = document.invoice
    middle_x, middle_w = MARGIN_MM + 40, CONTENT_MM - 84
    right_x = MARGIN_MM + CONTENT_MM - 42
    centred: list[tuple[str, float, bool]] = [
        (title_of(document), 15, True),
        ("(Bản thể hiện của hóa đơn điện tử)", BODY_PT, False),
    ]
    if invoice.kind is InvoiceKind.ADJUSTMENT:
        centred.append(("(Hóa đơn điều chỉnh)", BODY_PT + 1, True))
    elif invoice.kind is InvoiceKind.REPLACEMENT:
        centred.append(("(Hóa đơn thay thế)", BODY_PT + 1, True))
    centred.append((date_words(invoice.issue_date), BODY_PT + 1, False))
    if invoice.authority_code:
        centred.append((f"Mã của cơ quan thuế: {invoice.authority_code}", BODY_PT, False))
    heights = [line_height(size) for _, size, _ in centred]
    mark = status_mark(document)
    height = sum(heights) + 3 + (line_height(12) + 1 if mark else 0)

    def draw(sheet: Sheet, y: float) -> None:
        top = y
        for (text, size, bold), step in zip(centred, heights, strict=True):
            sheet.text(middle_x, top, text, size, bold=bold, align="C", width=middle_w)
            top += step
        symbol = invoice.series_code or ""
        sheet.text(right_x, y + 2, f"Ký hiệu: {symbol}", BODY_PT + 1)
        number = invoice.number_text or "(chưa cấp số)"
        sheet.text(right_x, y + 2 + line_height(BODY_PT + 1), "Số: ", BODY_PT + 1)
        sheet.text(
            right_x + 7,
            y + 2 + line_height(BODY_PT + 1),
            number,
            BODY_PT + 2,
            bold=True,
            colour=RED,
        )
        if mark:
            sheet.text(
                MARGIN_MM, top + 1, mark, 12, bold=True, align="C", width=CONTENT_MM, colour=RED
            )

    return Block(height, draw)


def _corrections(sheet: Sheet, document: InvoiceDocument) -> list[Block]:
    """What an adjustment or replacement corrects, and why."""
    texts = [reference_text(r) for r in document.references]
    if document.invoice.correction_reason:
        texts.append(f"Lý do: {document.invoice.correction_reason}")
    if not texts:
        return []
    lines = [line for text in texts for line in sheet.wrap(text, CONTENT_MM, BODY_PT, True)]

    def draw(sheet: Sheet, y: float) -> None:
        sheet.lines(MARGIN_MM, y + 1, lines, BODY_PT, bold=True)

    return [Block(len(lines) * line_height(BODY_PT) + 2, draw)]


Field = tuple[str, str, bool]  # label, value, value in bold


def _fields(sheet: Sheet, fields: Sequence[Field]) -> Block:
    """Labelled values under a rule; a long value wraps under itself, never past the
    margin."""
    laid: list[tuple[str, float, list[str], bool]] = []
    for label, value, bold in fields:
        label_w = sheet.width(label, BODY_PT) + 1.5
        laid.append((label, label_w, sheet.wrap(value, CONTENT_MM - label_w, BODY_PT, bold), bold))
    step = line_height(BODY_PT) + 0.4
    height = sum(len(lines) for _, _, lines, _ in laid) * step + 3

    def draw(sheet: Sheet, y: float) -> None:
        sheet.line(MARGIN_MM, y + 0.5, MARGIN_MM + CONTENT_MM, y + 0.5, 0.1)
        top = y + 1.5
        for label, label_w, lines, bold in laid:
            sheet.text(MARGIN_MM, top, label, BODY_PT)
            for line in lines:
                sheet.text(MARGIN_MM + label_w, top, line, BODY_PT, bold=bold)
                top += step

    return Block(height, draw)


def _seller(sheet: Sheet, document: InvoiceDocument) -> Block:
    seller = document.seller
    bank = seller.bank_account + (f" tại {seller.bank_name}" if seller.bank_name else "")
    phone = seller.phone + (f"    Email: {seller.email}" if seller.email else "")
    return _fields(
        sheet,
        [
            ("Đơn vị bán hàng:", seller.legal_name, True),
            ("Mã số thuế:", seller.tax_code, True),
            ("Địa chỉ:", seller.address, False),
            ("Điện thoại:", phone, False),
            ("Số tài khoản:", bank, False),
        ],
    )


def _buyer(sheet: Sheet, document: InvoiceDocument) -> Block:
    invoice = document.invoice
    name_label = (
        "Tên đơn vị:" if invoice.buyer_kind in ORGANISATION_KINDS else "Họ tên người mua hàng:"
    )
    fields: list[Field] = [
        (name_label, invoice.buyer_name, True),
        ("Mã khách hàng:", invoice.buyer_code, False),
        ("Mã số thuế:", invoice.buyer_tax_code or "", False),
        ("Địa chỉ:", invoice.buyer_address, False),
        ("Hình thức thanh toán:", invoice.payment_method, False),
    ]
    if invoice.period_start is not None and invoice.period_end is not None:
        fields.append(("Kỳ dịch vụ:", period_text(invoice.period_start, invoice.period_end), False))
    if invoice.note:
        fields.append(("Ghi chú:", invoice.note, False))
    return _fields(sheet, fields)


def _line_cells(line: InvoiceLine, vat_invoice: bool) -> list[str | Cell]:
    cells: list[str | Cell] = [
        str(line.line_no),
        line.description,
        line.unit,
        decimal_text(line.quantity),
        decimal_text(line.unit_price_vnd),
        money(line.amount_vnd),
    ]
    if vat_invoice:
        cells += [vat_rate_text(line.vat_rate), money(line.vat_vnd)]
    return cells


def _group_label(group: VatGroup) -> str:
    if group.vat_rate == "KCT":
        return "Cộng tiền hàng không chịu thuế GTGT (KCT)"
    return f"Cộng tiền hàng chịu thuế suất {vat_rate_text(group.vat_rate)}"


def _totals(
    sheet: Sheet, table: Table, document: InvoiceDocument, vat_invoice: bool
) -> list[Block]:
    """Per VAT rate, then the invoice's totals (as issued)."""
    invoice = document.invoice
    if not vat_invoice:
        return [
            table.row(
                sheet,
                [Cell("Tổng cộng tiền thanh toán", 5, "L"), money(invoice.total_vnd)],
                bold=True,
                row=False,
            )
        ]
    blocks = [
        table.row(
            sheet,
            [
                Cell(_group_label(group), 5, "L"),
                money(group.amount_vnd),
                vat_rate_text(group.vat_rate),
                money(group.vat_vnd),
            ],
            row=False,
        )
        for group in document.vat_groups
    ]
    blocks.append(
        table.row(
            sheet,
            [
                Cell("Cộng tiền hàng hóa, dịch vụ", 5, "L"),
                money(invoice.subtotal_vnd),
                "",
                money(invoice.vat_vnd),
            ],
            bold=True,
            row=False,
        )
    )
    blocks.append(
        table.row(
            sheet,
            [Cell("Tổng cộng tiền thanh toán", 5, "L"), Cell(money(invoice.total_vnd), 3, "R")],
            bold=True,
            row=False,
        )
    )
    return blocks


def _in_words(sheet: Sheet, document: InvoiceDocument) -> Block:
    text = "Số tiền viết bằng chữ: " + amount_in_words(document.invoice.total_vnd)
    lines = sheet.wrap(text, CONTENT_MM, BODY_PT + 0.5)

    def draw(sheet: Sheet, y: float) -> None:
        sheet.lines(MARGIN_MM, y + 1.5, lines, BODY_PT + 0.5)

    return Block(len(lines) * line_height(BODY_PT + 0.5) + 3, draw)


def _signatures(sheet: Sheet, document: InvoiceDocument) -> Block:
    """Buyer and seller; an issued invoice shows whose digital signature it carries."""
    invoice = document.invoice
    signed = invoice.number is not None and invoice.issued_at is not None
    half = CONTENT_MM / 2
    box_w = 84.0
    signer = sheet.wrap(f"Ký bởi: {document.seller.legal_name}", box_w - 4, 8, True)
    signed_on = date_short(local_date(invoice.issued_at)) if invoice.issued_at else ""
    box_h = (len(signer) + 1) * line_height(8) + 3
    height = 12 + (box_h if signed else 18) + 4

    def draw(sheet: Sheet, y: float) -> None:
        for index, who in enumerate(("Người mua hàng", "Người bán hàng")):
            left = MARGIN_MM + index * half
            sheet.text(left, y + 2, who, BODY_PT + 1, bold=True, align="C", width=half)
            sheet.text(left, y + 7, "(Ký, ghi rõ họ tên)", 8, align="C", width=half, colour=GREY)
        if signed:
            left = MARGIN_MM + half + (half - box_w) / 2
            sheet.box(left, y + 12, box_w, box_h)
            top = y + 13.5 + sheet.lines(left + 2, y + 13.5, signer, 8, bold=True, colour=RED)
            sheet.text(left + 2, top, f"Ký ngày: {signed_on}", 8, colour=RED)

    return Block(height, draw)
