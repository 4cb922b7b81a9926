"""Reading and writing the spreadsheets: headers, Vietnamese numbers and dates, encodings,
and the formula escape."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import unicodedata
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customers.spreadsheets import (
    HEADERS,
    CellError,
    SpreadsheetError,
    column_key,
    digits_text,
    format_number,
    parse_date,
    parse_number,
    parse_services,
    parse_word,
    read_csv,
    read_sheet,
    sheet_writer,
)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Mã KH", "customer_code"),
        ("ma kh", "customer_code"),
        ("customer_code", "customer_code"),
        ("  MÃ   KHÁCH HÀNG ", "customer_code"),
        ("Phường/Xã", "ward"),
        ("phuong xa", "ward"),
        ("Số khẩu", "so_khau"),
        ("Thể tích (m³/tháng)", "volume_m3_per_month"),
        ("Giá hợp đồng (VNĐ)", "contract_price_vnd"),
        ("Vĩ độ", "lat"),
        ("Kinh độ", "lon"),
        ("Ghi chú", None),
    ],
)
def test_headers_match_in_any_case_with_or_without_marks(header: str, key: str | None) -> None:
    assert column_key(header) == key


@pytest.mark.parametrize(
    ("text", "kwargs", "value"),
    [
        ("1.234,5", {}, Decimal("1234.5")),
        ("1,234.5", {}, Decimal("1234.5")),
        ("1.234.567", {}, Decimal("1234567")),
        ("1,234,567", {}, Decimal("1234567")),
        ("1 234 567,25", {}, Decimal("1234567.25")),
        ("0,5", {}, Decimal("0.5")),
        ("12,5", {}, Decimal("12.5")),
        ("1234.567", {}, Decimal("1234.567")),
        ("0.123", {}, Decimal("0.123")),
        ("-21,5", {}, Decimal("-21.5")),
        ("21.028", {"max_value": 90}, Decimal("21.028")),  # a latitude, not 21028
        ("105.852", {"max_value": 180}, Decimal("105.852")),
        ("150.000", {"integer": True}, Decimal("150000")),  # VND written the Vietnamese way
        ("1.500", {"max_value": 1000}, Decimal("1.500")),
        ("1.5e3", {}, Decimal("1500")),
        ("", {}, None),
        (12, {}, Decimal(12)),
        (0.1, {}, Decimal("0.1")),
    ],
)
def test_numbers_read_the_vietnamese_and_the_english_way(
    text: object, kwargs: dict[str, object], value: Decimal | None
) -> None:
    assert parse_number(text, **kwargs) == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.234", "ambiguous"),
        ("1,500", "ambiguous"),
        ("1.2,3", "reads neither way"),
        ("12.34.5", "not a number"),
        ("abc", "not a number"),
        ("1,2,3", "not a number"),
        ("1.", "not a number"),
        ("=1+1", "not a number"),
        ("١٢٣", "not a number"),
        ("²", "not a number"),
        (float("nan"), "finite"),
        (True, "not a number"),
    ],
)
def test_unreadable_and_ambiguous_numbers_say_why(text: object, reason: str) -> None:
    with pytest.raises(CellError, match=reason):
        parse_number(text)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False))
def test_what_an_export_writes_reads_back_exactly(value: Decimal) -> None:
    assert parse_number(format_number(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_number_or_a_reason(text: str) -> None:
    with contextlib.suppress(CellError):
        parse_number(text, max_value=100)


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("2025-01-31", dt.date(2025, 1, 31)),
        ("31/01/2025", dt.date(2025, 1, 31)),
        ("1/2/2025", dt.date(2025, 2, 1)),
        ("31-01-2025", dt.date(2025, 1, 31)),
        (dt.datetime(2025, 1, 31, 0, 0), dt.date(2025, 1, 31)),
        ("", None),
    ],
)
def test_dates_read_iso_and_day_month_year(cell: object, value: dt.date | None) -> None:
    assert parse_date(cell) == value  # type: ignore[arg-type]


@pytest.mark.parametrize("cell", ["31/02/2025", "01/31/2025", "2025/01/31", "31/01/25", 45678])
def test_impossible_or_foreign_dates_are_refused(cell: object) -> None:
    with pytest.raises(CellError):
        parse_date(cell)  # type: ignore[arg-type]


def test_words_in_vietnamese_and_english() -> None:
    assert parse_word("Hộ gia đình", "kind") == "household"
    assert parse_word("ho kinh doanh", "kind") == "business_household"
    assert parse_word("business", "kind") == "business"
    assert parse_word("Tạm ngừng", "status") == "suspended"
    assert parse_word("quý", "billing_period") == "quarterly"
    assert parse_services("thu gom; Tái chế") == ["collection", "recycling"]
    with pytest.raises(CellError, match="hộ gia đình"):
        parse_word("palace", "kind")


def test_numbers_stored_as_numbers_get_their_leading_zero_back() -> None:
    assert digits_text(912345678, lengths=(10, 11)) == "0912345678"
    assert digits_text(101234567, lengths=(10, 12)) == "0101234567"
    assert digits_text("0912345678", lengths=(10, 11)) == "0912345678"


def test_csv_with_semicolons_a_title_row_and_windows_1258() -> None:
    text = "Danh sách khách hàng\nMã KH;Tên khách hàng;Ghi chú\nKH1;Nguyễn Văn Ánh;x\n\nKH2;B;\n"
    sheet = read_csv(_cp1258(text))
    assert sheet.header_row == 2
    assert sheet.columns == ("customer_code", "name")
    assert sheet.ignored_headers == ("Ghi chú",)
    rows = list(sheet.rows)
    assert [r.number for r in rows] == [3, 5]
    assert rows[0].cells == {"customer_code": "KH1", "name": "Nguyễn Văn Ánh"}


def test_a_file_without_a_header_or_with_a_column_twice_is_refused() -> None:
    with pytest.raises(SpreadsheetError, match="header"):
        read_csv(b"a,b\n1,2\n")
    with pytest.raises(SpreadsheetError, match="two columns"):
        read_csv("Mã KH,customer code\n1,2\n".encode())
    with pytest.raises(SpreadsheetError, match="xls"):
        read_sheet(b"\xd0\xcf\x11\xe0" + bytes(100))


def test_xlsx_rows_keep_their_spreadsheet_numbers() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A2"] = "Mã KH"
    sheet["B2"] = "Số khẩu"
    sheet["A3"] = "KH1"
    sheet["B3"] = 4
    sheet["A6"] = "KH2"
    buffer = io.BytesIO()
    book.save(buffer)
    read = read_sheet(buffer.getvalue())
    assert read.format == "xlsx"
    assert read.header_row == 2
    rows = list(read.rows)
    assert [(r.number, r.cells["so_khau"]) for r in rows] == [(3, 4), (6, None)]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_writers_escape_formulas_and_keep_vietnamese(fmt: str) -> None:
    buffer = io.BytesIO()
    writer = sheet_writer(fmt, buffer)  # type: ignore[arg-type]
    writer.write(
        {
            "customer_code": "KH1",
            "name": "=cmd|' /C calc'!A0",
            "address": "@SUM(1)",
            "kind": "household",
            "phones": ["+84 912 345 678"],
            "lat": -21.5,
            "volume_m3_per_month": Decimal("1.234"),
            "services": ["collection", "recycling"],
        }
    )
    writer.close()
    data = buffer.getvalue()
    if fmt == "csv":
        assert data.startswith(b"\xef\xbb\xbf")
        text = data.decode("utf-8-sig")
        assert text.splitlines()[0].startswith("Mã KH,Mã điểm,Tên khách hàng")
        assert "'=cmd|' /C calc'!A0" in text
        assert ",'@SUM(1)," in text
        assert "'+84 912 345 678" in text
        assert "1.2340" in text  # never "1.234": that reads as 1234 too
        assert "hộ gia đình" in text
        assert "thu gom; tái chế" in text
    else:
        book = openpyxl.load_workbook(io.BytesIO(data))
        sheet = book.active
        assert [c.value for c in sheet[1]][: len(HEADERS)] == list(HEADERS.values())
        row = {HEADERS_BY_NAME[h.value]: c for h, c in zip(sheet[1], sheet[2], strict=True)}
        assert row["name"].data_type == "s"  # text, not a formula
        assert row["name"].value == "'=cmd|' /C calc'!A0"
        assert row["lat"].value == -21.5
    sheet_back = read_sheet(data)
    cells = next(iter(sheet_back.rows)).cells
    assert str(cells["name"]).startswith("'=")


HEADERS_BY_NAME = {header: key for key, header in HEADERS.items()}


def _cp1258(text: str) -> bytes:
    """What Windows writes: a letter (with its circumflex, breve or horn), then its tone."""
    out = b""
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", char)
            base = unicodedata.normalize("NFC", decomposed[:-1])
            out += (base + decomposed[-1]).encode("cp1258")
    return out


def test_the_fast_xlsx_reader_reads_what_openpyxl_reads() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Mã KH", "Tên khách hàng", "Số khẩu", "Vĩ độ", "Ngày hiệu lực", "Ghi chú"])
    sheet.append(["KH1", "Nguyễn Văn Ánh", 4, 21.0285, dt.date(2025, 1, 31), True])
    sheet.append(["001", "=1+1", None, -0.5, dt.datetime(2025, 2, 1, 8, 30), "x"])
    sheet["A6"] = "KH2"
    sheet["C6"] = 12345678901234
    sheet["F6"] = "=SUM(C2:C5)"  # a formula without a cached value reads as empty
    buffer = io.BytesIO()
    book.save(buffer)
    data = buffer.getvalue()
    ours = [(r.number, r.cells) for r in read_sheet(data).rows]
    theirs = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    expected = []
    for number, values in enumerate(theirs.worksheets[0].iter_rows(values_only=True), start=1):
        if number > 1 and any(v is not None for v in values[:5]):
            keys = ("customer_code", "name", "so_khau", "lat", "valid_from")
            expected.append((number, dict(zip(keys, values[:5], strict=True))))
    assert ours == expected
    assert ours[0][1]["valid_from"] == dt.datetime(2025, 1, 31)


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04" + bytes(200), b"PK\x03\x04not a zip at all", b"\xd0\xcf\x11\xe0"],
)
def test_a_damaged_workbook_is_refused_as_a_whole(data: bytes) -> None:
    with pytest.raises(SpreadsheetError, match="file:"):
        read_sheet(data)


def test_a_zip_that_is_no_workbook_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "xin chào")
    with pytest.raises(SpreadsheetError, match="file:"):
        read_sheet(buffer.getvalue())
