"""Invoices rendered to PDF and read back: the text a person (or a search) finds in the file
is exactly the Vietnamese that went in.

pypdf gives back the precomposed (NFC) letters the fonts' ToUnicode maps carry, so the
texts are compared as they come out, without normalising them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection
from pypdf import PdfReader

from billing.amount_words import amount_in_words
from billing.errors import InvalidValue
from billing.invoice_models import (
    InvoiceDocument,
    InvoiceKind,
    InvoiceReference,
    InvoiceStatus,
    vat_of,
)
from billing.invoices import load_documents
from billing.pdf import (
    DRAFT_MARK,
    FONT_FILES,
    money,
    reference_text,
    render_invoice,
    render_invoices,
)
from billing.pdf.formats import date_words, decimal_text, vat_rate_text
from billing.pdf.sheet import Sheet
from storage import Pool
from tests.billing.invoice_support import SELLER, new_tenant, seed_invoices

CREATED = dt.datetime(2026, 7, 3, 1, 0, tzinfo=dt.UTC)
VOWELS = "aăâeêioôơuưy"
TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # huyền sắc hỏi ngã nặng


def every_vietnamese_letter() -> list[str]:
    """Each vowel with no tone and the five tones, then đ; lower case, then upper case."""
    lower = [
        "".join(unicodedata.normalize("NFC", vowel + tone) for tone in TONES) for vowel in VOWELS
    ]
    lower.append("đ")
    return lower + [group.upper() for group in lower]


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


async def one_document(conn: AsyncConnection[Any], **seed: Any) -> InvoiceDocument:
    tenant_id = await new_tenant(conn)
    ids = await seed_invoices(conn, tenant_id, 1, **seed)
    return (await load_documents(conn, tenant_id, ids))[0]


# ---------------------------------------------------------------- formats


def test_money_and_numbers_print_the_vietnamese_way() -> None:
    assert money(1_234_567) == "1.234.567"
    assert money(-1_234_567) == "-1.234.567"
    assert money(0) == "0"
    assert money(999) == "999"
    assert decimal_text(Decimal("1.000")) == "1"
    assert decimal_text(Decimal("1.500")) == "1,5"
    assert decimal_text(Decimal("12345.67")) == "12.345,67"
    assert decimal_text(Decimal("-0.25")) == "-0,25"
    assert decimal_text(None) == ""
    assert vat_rate_text("KCT") == "KCT"
    assert vat_rate_text("8") == "8%"
    assert date_words(dt.date(2026, 7, 2)) == "Ngày 02 tháng 07 năm 2026"


# ---------------------------------------------------------------- fonts


def test_the_fonts_carry_every_vietnamese_letter() -> None:
    letters = "".join(every_vietnamese_letter())
    assert len(letters) == 2 * (len(VOWELS) * len(TONES) + 1)
    for path in FONT_FILES.values():
        with TTFont(path) as font:
            cmap = font["cmap"].getBestCmap()
        missing = [c for c in letters if ord(c) not in cmap]
        assert missing == [], f"{path.name} lacks {missing}"
    total_bytes = sum(p.stat().st_size for p in FONT_FILES.values())
    assert total_bytes < 2_000_000


@pytest.mark.parametrize("bold", [False, True])
def test_every_vietnamese_letter_extracts_back_identical(bold: bool) -> None:
    groups = every_vietnamese_letter()
    sheet = Sheet("P", "chữ", CREATED)
    sheet.add_page()
    for index, group in enumerate(groups):
        sheet.text(10, 10 + index * 5, group, 10, bold=bold)
    (text,) = pages_text(sheet.output())
    assert text.split("\n") == groups


def test_the_fonts_are_embedded_as_subsets() -> None:
    """Only the glyphs used travel with the file (a few kB, not the 1.3 MB of the fonts),
    with the map back to Unicode that extraction and search read."""
    sheet = Sheet("P", "nhúng", CREATED)
    sheet.add_page()
    sheet.text(10, 10, "Nguyễn Văn Ánh")
    sheet.text(10, 20, "Đặng Quốc Việt", bold=True)
    pdf = sheet.output()
    page: Any = PdfReader(io.BytesIO(pdf)).pages[0]  # pypdf's objects are loosely typed
    names = []
    for reference in page["/Resources"]["/Font"].values():
        font = reference.get_object()
        descendant = font["/DescendantFonts"][0].get_object()
        embedded = descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()
        assert 1_000 < len(embedded) < 50_000
        assert "/ToUnicode" in font
        names.append(str(font["/BaseFont"]))
    assert sorted(re.sub(r"^/[A-Z]{6}\+", "", n) for n in names) == [
        "DejaVuSansCondensed",
        "DejaVuSansCondensedBold",
    ]


def test_nothing_to_render_is_refused() -> None:
    with pytest.raises(InvalidValue, match=r"^documents: nothing to render"):
        render_invoices([])


def test_decomposed_input_prints_as_precomposed_letters() -> None:
    """A name typed as base letters and combining marks (some Vietnamese keyboards do)
    prints as the letters themselves."""
    sheet = Sheet("P", "NFD", CREATED)
    sheet.add_page()
    sheet.text(10, 10, unicodedata.normalize("NFD", "Nguyễn Văn Ánh"))
    (text,) = pages_text(sheet.output())
    assert text == "Nguyễn Văn Ánh"


@settings(max_examples=30, deadline=None)  # each example loads the fonts (~0.1 s)
@given(
    st.lists(
        st.text(alphabet="".join(every_vietnamese_letter()) + "abcmnt,.", min_size=1, max_size=40),
        min_size=1,
        max_size=30,
    ),
    st.floats(min_value=20, max_value=120),
)
def test_wrapping_never_overflows_and_keeps_every_word(words: list[str], width: float) -> None:
    text = " ".join(words)
    with Sheet("P", "wrap", None) as sheet:
        lines = sheet.wrap(text, width, 9)
        for line in lines:
            assert sheet.width(line, 9) <= width or len(line) == 1
        assert "".join(" ".join(lines).split()) == "".join(text.split())
        if all(sheet.width(word, 9) <= width for word in text.split()):
            assert " ".join(lines).split() == text.split()


# ---------------------------------------------------------------- the invoice


async def test_an_issued_invoice_reads_back_in_vietnamese(pool: Pool) -> None:
    async with pool.connection() as conn:
        document = await one_document(conn)
    invoice = document.invoice
    (text,) = pages_text(render_invoice(document, CREATED))
    lines = text.split("\n")
    assert "HÓA ĐƠN GIÁ TRỊ GIA TĂNG" in lines
    assert "(Bản thể hiện của hóa đơn điện tử)" in lines
    assert "Ký hiệu: 1C26TAA" in lines
    assert "Số: 00000001" in lines
    assert "Ngày 02 tháng 07 năm 2026" in lines
    assert "Họ tên người mua hàng: Nguyễn Văn Ánh" in lines
    assert f"Địa chỉ: {invoice.buyer_address}" in lines
    assert invoice.buyer_address == "Số 1 ngõ 1 phố Hàng Bạc, phường Hoàn Kiếm"
    assert f"Đơn vị bán hàng: {SELLER.legal_name}" in lines
    assert f"Mã số thuế: {SELLER.tax_code}" in lines
    assert f"Địa chỉ: {SELLER.address}" in lines
    assert f"Số tài khoản: {SELLER.bank_account} tại {SELLER.bank_name}" in lines
    assert f"Mã khách hàng: {invoice.buyer_code}" in lines
    # 36,000 and 130,000 at 8%: VAT 2,880 and 10,400; 179,280 in all
    assert invoice.total_vnd == 179_280
    assert "Số tiền viết bằng chữ: Một trăm bảy mươi chín nghìn hai trăm tám mươi đồng" in lines
    assert amount_in_words(179_280) == "Một trăm bảy mươi chín nghìn hai trăm tám mươi đồng"
    assert "tháng 1 36.000 36.000 8% 2.880" in lines
    assert "Cộng tiền hàng chịu thuế suất 8% 166.000 8% 13.280" in lines
    assert "Tổng cộng tiền thanh toán 179.280" in lines
    assert f"Ký bởi: {SELLER.legal_name}" in lines
    assert "Mã của cơ quan thuế" not in text
    assert "Trang 1/1" not in text
    assert DRAFT_MARK not in text


async def test_the_tax_authority_code_and_a_sales_invoice(pool: Pool) -> None:
    async with pool.connection() as conn:
        document = await one_document(conn, vat_rate="KCT")
    coded = dataclasses.replace(document.invoice, authority_code="00A1B2C3D4E5F60718293A4B5C")
    (text,) = pages_text(render_invoice(dataclasses.replace(document, invoice=coded)))
    assert "Mã của cơ quan thuế: 00A1B2C3D4E5F60718293A4B5C" in text.split("\n")
    assert "Cộng tiền hàng không chịu thuế GTGT (KCT) 166.000 KCT 0" in text
    sales = dataclasses.replace(document.invoice, template="2")
    (text,) = pages_text(render_invoice(dataclasses.replace(document, invoice=sales)))
    assert "HÓA ĐƠN BÁN HÀNG" in text.split("\n")
    assert "GIÁ TRỊ GIA TĂNG" not in text
    assert "Thuế suất" not in text
    assert "GTGT" not in text
    assert "Tổng cộng tiền thanh toán 166.000" in text


async def test_sixty_lines_run_onto_numbered_pages_with_the_header_repeated(pool: Pool) -> None:
    amounts = tuple(10_000 + 1_234 * n for n in range(60))
    async with pool.connection() as conn:
        document = await one_document(conn, amounts_vnd=amounts)
    rendered = render_invoices([document], CREATED)
    texts = pages_text(rendered.pdf)
    assert rendered.pages == len(texts) >= 3
    count = len(texts)
    for number, text in enumerate(texts, start=1):
        assert f"Trang {number}/{count}" in text
        assert "Tên hàng hóa, dịch vụ" in text  # the table's header, on every page
        if number > 1:
            assert text.startswith("HÓA ĐƠN GIÁ TRỊ GIA TĂNG – Ký hiệu: 1C26TAA – Số: 00000001")
    everything = "\n".join(texts)
    printed_lines = re.findall(r"^(\d+) Dịch vụ thu gom", everything, re.MULTILINE)
    assert printed_lines == [str(n) for n in range(1, 61)]
    subtotal = sum(amounts)
    vat = sum((a * 8 + 50) // 100 for a in amounts)
    assert (subtotal, vat) == (document.invoice.subtotal_vnd, document.invoice.vat_vnd)
    assert f"Cộng tiền hàng hóa, dịch vụ {money(subtotal)} {money(vat)}" in texts[-1]
    assert f"Tổng cộng tiền thanh toán {money(subtotal + vat)}" in texts[-1]
    assert amount_in_words(subtotal + vat) in texts[-1]
    assert "Tổng cộng" not in texts[0]


async def test_several_invoices_each_start_on_their_own_page(pool: Pool) -> None:
    async with pool.connection() as conn:
        tenant_id = await new_tenant(conn)
        ids = await seed_invoices(conn, tenant_id, 3)
        documents = await load_documents(conn, tenant_id, ids)
    rendered = render_invoices(documents, CREATED)
    assert rendered.pages == 3
    assert rendered.first_pages == (1, 2, 3)
    texts = pages_text(rendered.pdf)
    for number, (text, document) in enumerate(zip(texts, documents, strict=True), start=1):
        assert f"Số: {number:08d}" in text
        assert document.invoice.buyer_name in text
    assert render_invoices(documents, CREATED).pdf == rendered.pdf  # same input, same bytes


async def test_a_draft_carries_the_mark_and_no_signature(pool: Pool) -> None:
    async with pool.connection() as conn:
        document = await one_document(conn, status="draft")
    assert document.invoice.status is InvoiceStatus.DRAFT
    (text,) = pages_text(render_invoice(document))
    assert DRAFT_MARK == "BẢN NHÁP – KHÔNG CÓ GIÁ TRỊ THANH TOÁN"
    assert DRAFT_MARK in text.split("\n")
    assert "BẢN NHÁP" in text.replace(DRAFT_MARK, "")  # the watermark too
    assert "Ký bởi" not in text
    assert "Số: (chưa cấp số)" in text
    assert "Ngày ..... tháng ..... năm ........." in text


async def test_a_cancelled_invoice_says_so(pool: Pool) -> None:
    async with pool.connection() as conn:
        document = await one_document(conn)
    cancelled = dataclasses.replace(document.invoice, status=InvoiceStatus.CANCELLED)
    (text,) = pages_text(render_invoice(dataclasses.replace(document, invoice=cancelled)))
    assert "ĐÃ HỦY" in text.split("\n")
    (issued,) = pages_text(render_invoice(document))
    assert "ĐÃ HỦY" not in issued


async def test_an_adjustment_names_the_invoice_it_adjusts_and_prints_negative_amounts(
    pool: Pool,
) -> None:
    async with pool.connection() as conn:
        document = await one_document(conn, amounts_vnd=(36_000, 10_000))
    # the first line taken back, the second added: an adjustment's lines may be negative
    first, second = document.lines
    reduced = dataclasses.replace(
        first,
        amount_vnd=-36_000,
        unit_price_vnd=Decimal(-36_000),
        vat_vnd=vat_of(-36_000, "8"),
    )
    lines = [reduced, second]
    assert [line.vat_vnd for line in lines] == [-2_880, 800]
    reference = InvoiceReference(99, "adjusts", "1", "C26TAA", 12, dt.date(2026, 7, 2))
    adjustment = dataclasses.replace(
        document.invoice,
        kind=InvoiceKind.ADJUSTMENT,
        correction_reason="Sai đơn giá dịch vụ tháng 6/2026",
        subtotal_vnd=-26_000,
        vat_vnd=-2_080,
        total_vnd=-28_080,
    )
    document = InvoiceDocument(adjustment, lines, [reference], document.seller)
    (text,) = pages_text(render_invoice(document))
    expected = (
        "Điều chỉnh cho hóa đơn Mẫu số 1 Ký hiệu C26TAA Số 00000012 ngày 02 tháng 07 năm 2026"
    )
    assert reference_text(reference) == expected
    assert expected in text.split("\n")
    assert "Lý do: Sai đơn giá dịch vụ tháng 6/2026" in text
    assert "(Hóa đơn điều chỉnh)" in text
    assert "tháng 1 -36.000 -36.000 8% -2.880" in text
    assert "Tổng cộng tiền thanh toán -28.080" in text
    assert "Số tiền viết bằng chữ: Âm hai mươi tám nghìn không trăm tám mươi đồng" in text
    replaces = dataclasses.replace(reference, relation="replaces")
    assert reference_text(replaces).startswith("Thay thế cho hóa đơn Mẫu số 1 Ký hiệu C26TAA")


async def test_long_names_and_addresses_wrap_inside_the_page(
    pool: Pool, request: pytest.FixtureRequest
) -> None:
    async with pool.connection() as conn:
        document = await one_document(conn)
    name = "Công ty Cổ phần Thương mại Dịch vụ Xây dựng và Môi trường Xanh Sạch Đẹp " * 4
    address = "Số 123 ngõ 45 ngách 67 hẻm 89 đường Nguyễn Văn Cừ, phường Bồ Đề " * 5
    invoice = dataclasses.replace(
        document.invoice, buyer_name=name.strip(), buyer_address=address.strip()
    )
    long_line = dataclasses.replace(document.lines[0], description=address.strip())
    document = dataclasses.replace(
        document, invoice=invoice, lines=[long_line, *document.lines[1:]]
    )
    pdf = render_invoice(document)
    reader = PdfReader(io.BytesIO(pdf))
    page_width_mm = float(reader.pages[0].mediabox.width) / 72 * 25.4
    sheet = Sheet("P", "widths", None)
    request.addfinalizer(sheet.close)
    right_edges_mm: list[float] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            # where the text starts plus its width in its face
            bold = "Bold" in str(font["/BaseFont"])
            right_edges_mm.append(tm[4] / 72 * 25.4 + sheet.width(text.strip(), size, bold))

    reader.pages[0].extract_text(visitor_text=visit)
    assert len(right_edges_mm) > 50
    assert max(right_edges_mm) <= page_width_mm - 12 + 0.5
    words = "".join(reader.pages[0].extract_text().split())
    assert "".join(name.split()) in words
    assert "".join(address.split()) in words
