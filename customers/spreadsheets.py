"""The customer spreadsheets companies already keep: CSV and XLSX files, read and written.

One row per service point. Headers are Vietnamese (what offices write) with English
aliases, matched after ``customers.text.fold``, so "Mã KH", "ma kh" and "customer_code"
name the same column. Reading gives raw cells (text from CSV; numbers, dates and text from
XLSX); ``customers.import_validation`` turns them into values with the cell parsers here,
which read Vietnamese number formatting ("1.234,5"), dd/mm/yyyy dates and the Vietnamese
words for kinds, statuses, periods and services. Writing puts the same headers back, so that an
export imports as "all unchanged", and escapes text a spreadsheet would run as a formula.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import io
import math
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, Literal, Protocol
from xml.parsers import expat

from customers.errors import InvalidValue
from customers.text import fold

Cell = str | int | float | Decimal | dt.date | dt.datetime | bool | None
Format = Literal["csv", "xlsx"]


class SpreadsheetError(InvalidValue):
    """The file as a whole cannot be read: not a CSV or XLSX file, no header row, a column
    named twice. (A bad cell only rejects its row.)"""


# ---------------------------------------------------------------- columns


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    header: str  # what an export writes
    aliases: tuple[str, ...] = ()  # other headers understood, in any case, with or without marks


COLUMNS: tuple[Column, ...] = (
    Column("customer_code", "Mã KH", ("mã khách hàng", "customer code", "customer")),
    Column("point_code", "Mã điểm", ("mã điểm thu", "mã điểm thu gom", "point code", "point")),
    Column("name", "Tên khách hàng", ("tên kh", "tên", "họ tên", "name", "customer name")),
    Column("kind", "Loại", ("loại khách hàng", "loại kh", "kind", "type", "customer kind")),
    Column("phones", "Điện thoại", ("số điện thoại", "sđt", "đt", "phone", "phones")),
    Column("email", "Email", ("e-mail", "thư điện tử")),
    Column("tax_code", "Mã số thuế", ("mst", "tax code")),
    Column("address", "Địa chỉ", ("address",)),
    Column("street", "Đường", ("tên đường", "đường phố", "street")),
    Column("ward", "Phường/Xã", ("phường", "xã", "ward")),
    Column("area_code", "Địa bàn", ("mã địa bàn", "area", "area code")),
    Column("lat", "Vĩ độ", ("lat", "latitude")),
    Column("lon", "Kinh độ", ("lon", "lng", "longitude")),
    Column("accuracy_m", "Độ chính xác (m)", ("độ chính xác", "accuracy", "accuracy m")),
    Column("so_khau", "Số khẩu", ("số nhân khẩu", "nhân khẩu", "so khau")),
    Column(
        "weight_kg_per_month",
        "Khối lượng (kg/tháng)",
        ("khối lượng", "khối lượng kg tháng", "weight kg per month", "weight"),
    ),
    Column(
        "volume_m3_per_month",
        "Thể tích (m³/tháng)",
        ("thể tích", "thể tích m3 tháng", "volume m3 per month", "volume"),
    ),
    Column(
        "container_lifts_per_month",
        "Lượt nâng thùng (lượt/tháng)",
        ("lượt nâng thùng", "container lifts per month", "container lifts"),
    ),
    Column(
        "contract_price_vnd",
        "Giá hợp đồng (VNĐ)",
        ("giá hợp đồng", "contract price vnd", "contract price"),
    ),
    Column("services", "Dịch vụ", ("services",)),
    Column("customer_class", "Nhóm khách", ("nhóm khách hàng", "customer class", "class")),
    Column("category", "Ngành nghề", ("phân loại", "category")),
    Column("billing_period", "Kỳ thanh toán", ("kỳ thu", "billing period")),
    Column("collector", "NV thu gom", ("nhân viên thu gom", "người thu gom", "collector")),
    Column("cashier", "NV thu tiền", ("nhân viên thu tiền", "người thu tiền", "cashier")),
    Column("route_code", "Tuyến", ("mã tuyến", "route", "route code")),
    Column("status", "Trạng thái", ("tình trạng", "status")),
    Column("valid_from", "Ngày hiệu lực", ("hiệu lực từ", "từ ngày", "valid from")),
)
HEADERS: dict[str, str] = {c.key: c.header for c in COLUMNS}
_BY_HEADER: dict[str, str] = {
    fold(name): c.key for c in COLUMNS for name in (c.header, c.key, *c.aliases)
}


def column_key(header: Cell) -> str | None:
    """The column a header names, or None."""
    if header is None:
        return None
    return _BY_HEADER.get(fold(str(header)))


# Words a cell may hold for an enumerated value, folded; the first is what an export writes.
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "household": ("hộ gia đình", "household", "hộ dân", "gia đình", "hgđ"),
    "business_household": ("hộ kinh doanh", "business household", "hkd"),
    "business": ("doanh nghiệp", "business", "công ty", "dn"),
    "agency": ("cơ quan", "agency", "đơn vị hành chính sự nghiệp", "trường học"),
}
STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "active": ("đang thu", "active", "hoạt động", "đang hoạt động"),
    "suspended": ("tạm ngừng", "suspended", "tạm dừng"),
    "terminated": ("chấm dứt", "terminated", "ngừng", "đã chấm dứt"),
}
PERIOD_WORDS: dict[str, tuple[str, ...]] = {
    "monthly": ("tháng", "monthly", "hàng tháng", "1 tháng"),
    "quarterly": ("quý", "quarterly", "hàng quý", "3 tháng"),
    "yearly": ("năm", "yearly", "hàng năm", "12 tháng", "annual"),
}
SERVICE_WORDS: dict[str, tuple[str, ...]] = {
    "collection": ("thu gom", "collection", "thu gom vận chuyển"),
    "recycling": ("tái chế", "recycling"),
    "hazardous": ("nguy hại", "hazardous", "chất thải nguy hại"),
    "extra": ("thu gom thêm", "extra", "phát sinh"),
    "container_rental": ("thuê thùng", "container rental"),
}


def _lookup(words: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {fold(word): value for value, names in words.items() for word in (value, *names)}


_KINDS, _STATUSES = _lookup(KIND_WORDS), _lookup(STATUS_WORDS)
_PERIODS, _SERVICES = _lookup(PERIOD_WORDS), _lookup(SERVICE_WORDS)
WORDS: dict[str, dict[str, str]] = {
    "kind": _KINDS,
    "status": _STATUSES,
    "billing_period": _PERIODS,
    "services": _SERVICES,
}
_EXPORT_WORDS = {
    "kind": KIND_WORDS,
    "status": STATUS_WORDS,
    "billing_period": PERIOD_WORDS,
    "services": SERVICE_WORDS,
}


# ---------------------------------------------------------------- cells


class CellError(ValueError):
    """A cell that cannot be read as its column's value; the message is the reason."""


# NUL cannot be stored; the other C0 controls and lone surrogates are never meant.
_BAD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SPACES = re.compile(r"\s+")


def cell_text(cell: Cell) -> str:
    """A cell as text: trimmed, one space between words, NFC (so composed and decomposed
    Vietnamese compare equal), the export's formula escape undone. Integral numbers lose
    their ".0"."""
    if type(cell) is str:
        if cell.isprintable():  # no control characters, no odd spaces: the common case
            text = cell.strip()
            if not text.isascii() and not unicodedata.is_normalized("NFC", text):
                text = unicodedata.normalize("NFC", text)
            if "  " in text:
                text = _SPACES.sub(" ", text)
        else:
            if _BAD_CHARACTERS.search(cell):
                raise CellError("contains control characters")
            text = _SPACES.sub(" ", unicodedata.normalize("NFC", cell)).strip()
        if len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_START:
            text = text[1:]
        return text
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float):
        if not math.isfinite(cell):
            raise CellError("not a finite number")
        return str(int(cell)) if cell.is_integer() and abs(cell) < 1e16 else repr(cell)
    if isinstance(cell, int | Decimal):
        return str(cell)
    if isinstance(cell, dt.datetime):
        return cell.date().isoformat() if cell.time() == dt.time() else cell.isoformat(" ")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return cell_text(str(cell))


def digits_text(cell: Cell, *, lengths: tuple[int, ...] = ()) -> str:
    """Text of a cell holding a number that is really a code (tax code, phone): a spreadsheet
    that stored it as a number dropped its leading zero, which comes back when the length
    says so."""
    text = cell_text(cell)
    numeric = isinstance(cell, int | float) and not isinstance(cell, bool)
    if numeric and text.isdigit() and len(text) + 1 in lengths:
        return "0" + text
    return text


_GROUPED = {
    ".": re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+"),
    ",": re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+"),
    " ": re.compile(r"[0-9]{1,3}(?: [0-9]{3})+"),
}
_SCIENTIFIC = re.compile(r"[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]{1,4}")
_PLAIN = re.compile(r"[0-9]*")
_DIGITS = re.compile(r"[0-9]+")


def parse_number(
    cell: Cell, *, integer: bool = False, max_value: Decimal | int | None = None
) -> Decimal | None:
    """A number from a cell; None when empty.

    Both "1.234,5" (Vietnamese) and "1,234.5" read as 1234.5; "1 234" groups thousands.
    A single separator followed by exactly three digits ("1.234") reads either way; it is
    taken as thousands in an integer column, and otherwise only when one of the two readings
    fits ``max_value`` ("21.028" is a latitude, not 21028); when both fit, the cell is
    rejected as ambiguous.
    """
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if isinstance(cell, bool | dt.date):
        raise CellError("not a number")
    if isinstance(cell, int):
        return Decimal(cell)
    if isinstance(cell, float):
        if not math.isfinite(cell):
            raise CellError("not a finite number")
        return Decimal(repr(cell))
    if isinstance(cell, Decimal):
        if not cell.is_finite():
            raise CellError("not a finite number")
        return cell
    text = cell_text(cell).replace("\u00a0", " ").replace("\u202f", " ")
    sign = ""
    if text[:1] in "+-":
        sign, text = text[0], text[1:].strip()
    value = _unsigned(text, integer, max_value)
    return -value if sign == "-" else value


def _unsigned(text: str, integer: bool, max_value: Decimal | int | None) -> Decimal:
    if len(text) > 40:
        raise CellError("not a number (too long)")
    if _SCIENTIFIC.fullmatch(text):
        return Decimal(text)
    if " " in text:
        whole, _, rest = text.partition(",") if "," in text else text.partition(".")
        if not _GROUPED[" "].fullmatch(whole) or (rest and not _DIGITS.fullmatch(rest)):
            raise CellError("not a number")
        return Decimal(whole.replace(" ", "") + ("." + rest if rest else ""))
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        decimal_mark = "." if text.rfind(".") > text.rfind(",") else ","
        whole, _, fraction = text.rpartition(decimal_mark)
        group = "," if decimal_mark == "." else "."
        if not _GROUPED[group].fullmatch(whole) or not _DIGITS.fullmatch(fraction):
            raise CellError("not a number: mixes '.' and ',' in a way that reads neither way")
        return Decimal(whole.replace(group, "") + "." + fraction)
    if not dots and not commas:
        if not text or not _PLAIN.fullmatch(text):
            raise CellError("not a number")
        return Decimal(text)
    mark = "." if dots else ","
    if dots + commas > 1:
        if not _GROUPED[mark].fullmatch(text):
            raise CellError("not a number")
        return Decimal(text.replace(mark, ""))
    whole, _, fraction = text.partition(mark)
    if not _PLAIN.fullmatch(whole) or not _DIGITS.fullmatch(fraction):
        raise CellError("not a number")
    as_decimal = Decimal((whole or "0") + "." + fraction)
    if len(fraction) != 3 or not whole or whole.startswith("0") or len(whole) > 3:
        return as_decimal
    as_thousands = Decimal(whole + fraction)
    if integer:
        return as_thousands
    if max_value is not None and (as_thousands > max_value) != (as_decimal > max_value):
        return as_decimal if as_thousands > max_value else as_thousands
    raise CellError(
        f"ambiguous: {text!r} may be {as_decimal} or {as_thousands}; write"
        f" {as_thousands:,} or {str(as_decimal).replace('.', ',')} with both separators, or"
        " without the thousands separator"
    )


_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[ T]00:00(?::00)?)?")
_DMY_DATE = re.compile(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})")


def parse_date(cell: Cell) -> dt.date | None:
    """A date from a date cell, ISO text (2025-01-31) or dd/mm/yyyy; None when empty."""
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    if cell is None or isinstance(cell, bool | int | float | Decimal):
        if cell is None:
            return None
        raise CellError("not a date (write dd/mm/yyyy or yyyy-mm-dd)")
    text = cell_text(cell)
    if not text:
        return None
    iso, dmy = _ISO_DATE.fullmatch(text), _DMY_DATE.fullmatch(text)
    try:
        if iso:
            return dt.date(int(iso[1]), int(iso[2]), int(iso[3]))
        if dmy:
            return dt.date(int(dmy[3]), int(dmy[2]), int(dmy[1]))
    except ValueError:
        raise CellError("no such day") from None
    raise CellError("not a date (write dd/mm/yyyy or yyyy-mm-dd)")


# A column of words holds a handful of distinct ones: each is folded once.
_fold_word = functools.lru_cache(maxsize=4096)(fold)


def parse_word(cell: Cell, column: str) -> str | None:
    """The value a word names in an enumerated column (kind, status, billing_period); None
    when empty."""
    text = cell_text(cell)
    if not text:
        return None
    value = WORDS[column].get(_fold_word(text))
    if value is None:
        allowed = ", ".join(names[0] for names in _EXPORT_WORDS[column].values())
        raise CellError(f"not one of: {allowed} (or their English names)")
    return value


def split_list(cell: Cell, separators: str) -> list[str]:
    """The items of a list cell, trimmed, empty ones dropped."""
    text = cell_text(cell)
    return [part.strip() for part in re.split(f"[{re.escape(separators)}]", text) if part.strip()]


def parse_services(cell: Cell) -> list[str] | None:
    items = split_list(cell, ";,")
    if not items:
        return None
    values = []
    for item in items:
        value = _SERVICES.get(_fold_word(item))
        if value is None:
            allowed = ", ".join(names[0] for names in SERVICE_WORDS.values())
            raise CellError(f"{item!r} is not a service (one of: {allowed})")
        values.append(value)
    return sorted(set(values))


def shown(cell: Cell, limit: int = 200) -> str:
    """A cell as a report shows it: control characters escaped, long text cut."""
    text = cell if isinstance(cell, str) else ("" if cell is None else str(cell))
    text = _BAD_CHARACTERS.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class SheetRow:
    number: int  # as the spreadsheet numbers it: the first row is 1
    cells: dict[str, Cell]  # every column of the header, by key; an empty cell is None


@dataclass(frozen=True)
class Sheet:
    format: Format
    columns: tuple[str, ...]  # the known columns, in the file's order
    ignored_headers: tuple[str, ...]  # headers naming no known column
    header_row: int
    total_rows: int  # rows below the header (an estimate, for progress)
    rows: Iterator[SheetRow]  # the non-empty rows below the header, once


HEADER_SEARCH_ROWS = 10  # a title or a note may sit above the header


def read_sheet(data: bytes) -> Sheet:
    """A CSV or XLSX file's rows (which one, from the content)."""
    if data.startswith(b"PK\x03\x04"):
        return read_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise SpreadsheetError("file: an old Excel .xls workbook; save it as .xlsx or CSV")
    return read_csv(data)


def _header(rows: Iterator[tuple[int, Sequence[Cell]]]) -> tuple[int, dict[int, str], list[str]]:
    """Reads ``rows`` up to the header row (the first naming the customer code column):
    its number, the known columns by position, the headers naming none."""
    for number, cells in rows:
        if number > HEADER_SEARCH_ROWS:
            break
        keys = {i: column_key(c) for i, c in enumerate(cells)}
        if "customer_code" not in keys.values():
            continue
        found: dict[int, str] = {}
        for i, key in keys.items():
            if key is None:
                continue
            if key in found.values():
                raise SpreadsheetError(
                    f"header: two columns mean {HEADERS[key]!r} (row {number}); keep one"
                )
            found[i] = key
        ignored = [
            str(c).strip() for i, c in enumerate(cells) if i not in found and c not in (None, "")
        ]
        return number, found, ignored
    raise SpreadsheetError(
        f"header: none of the first {HEADER_SEARCH_ROWS} rows names the columns"
        f" (a header row with at least {HEADERS['customer_code']!r} is needed)"
    )


def _sheet_rows(
    rows: Iterator[tuple[int, Sequence[Cell]]], columns: dict[int, str]
) -> Iterator[SheetRow]:
    for number, cells in rows:
        values = {key: cells[i] if i < len(cells) else None for i, key in columns.items()}
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values.values()):
            continue
        yield SheetRow(number, values)


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Excel's "CSV" on a Vietnamese Windows writes the ANSI code page 1258, where tone
        # marks follow their letter: composed again here.
        return unicodedata.normalize("NFC", data.decode("cp1258", errors="replace"))


def read_csv(data: bytes) -> Sheet:
    """A CSV file's rows: UTF-8 (with or without BOM), UTF-16 or Windows-1258; separated by
    commas, semicolons or tabs (whichever the first lines use most)."""
    text = _decode(data)
    head = text[:20_000].splitlines()[:HEADER_SEARCH_ROWS]
    delimiter = max(",;\t", key=lambda d: sum(line.count(d) for line in head))

    def records() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as exc:
            raise SpreadsheetError(f"file: not a readable CSV file ({exc})") from None

    rows = records()
    number, columns, ignored = _header(rows)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return Sheet(
        format="csv",
        columns=tuple(columns.values()),
        ignored_headers=tuple(ignored),
        header_row=number,
        total_rows=max(lines - number, 0),
        rows=_sheet_rows(rows, columns),
    )


def read_xlsx(data: bytes) -> Sheet:
    """The first worksheet's rows (values as last calculated: a formula gives its result)."""
    try:
        found = _WorksheetXml.open(data)
        if found is None:
            return _read_xlsx_with_openpyxl(data)
        archive, worksheet = found
    except SpreadsheetError:
        raise
    except Exception as exc:  # openpyxl and zipfile raise many kinds for a damaged file
        raise SpreadsheetError(f"file: not a readable XLSX workbook ({exc})") from None

    def records() -> Iterator[tuple[int, Sequence[Cell]]]:
        try:
            with archive.open(worksheet.path) as xml:
                yield from worksheet.rows(xml)
        except (zipfile.BadZipFile, KeyError, expat.ExpatError, OSError) as exc:
            raise SpreadsheetError(f"file: not a readable XLSX workbook ({exc})") from None
        finally:
            archive.close()

    rows = records()
    number, columns, ignored = _header(rows)
    return Sheet(
        format="xlsx",
        columns=tuple(columns.values()),
        ignored_headers=tuple(ignored),
        header_row=number,
        total_rows=max(_count_rows(data, worksheet.path) - number, 0),
        rows=_sheet_rows(rows, columns),
    )


def _read_xlsx_with_openpyxl(data: bytes) -> Sheet:
    """openpyxl's own reader: slower; for an openpyxl whose workbook parts we do not know."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheet = book.worksheets[0]

    def records() -> Iterator[tuple[int, Sequence[Cell]]]:
        try:
            yield from enumerate(sheet.iter_rows(values_only=True), start=1)
        finally:
            book.close()

    rows = records()
    number, columns, ignored = _header(rows)
    return Sheet(
        format="xlsx",
        columns=tuple(columns.values()),
        ignored_headers=tuple(ignored),
        header_row=number,
        total_rows=max((sheet.max_row or 0) - number, 0),
        rows=_sheet_rows(rows, columns),
    )


class _WorksheetXml:
    """A worksheet's cell values streamed from its XML with expat: openpyxl's own reader
    builds an object per cell and takes several times as long on 100,000 rows. Its
    workbook-level reading (shared strings, which styles are dates) is reused."""

    def __init__(
        self, path: str, shared: Sequence[Any], date_styles: set[int], epoch: dt.datetime
    ) -> None:
        from openpyxl.utils.datetime import from_excel

        self.path, self._shared, self._date_styles = path, shared, date_styles
        self._from_excel, self._epoch = from_excel, epoch
        self._done: list[tuple[int, list[Cell]]] = []
        self._number = 0
        self._cells: dict[int, Cell] = {}
        self._column = -1
        self._type, self._style = "n", -1
        self._text: list[str] | None = None
        self._capture = False  # inside <v> or <t>
        self._phonetic = 0  # inside <rPh>: a reading aid, not the cell's text
        self._parser = expat.ParserCreate(namespace_separator="}")
        self._parser.buffer_text = True
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._data

    @classmethod
    def open(cls, data: bytes) -> tuple[zipfile.ZipFile, _WorksheetXml] | None:
        """The workbook's archive and its first worksheet, read with openpyxl's workbook
        reader but not its worksheet reader (which, for a sheet written without its size,
        parses the whole sheet just to size it). None: an openpyxl whose parts differ."""
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.stylesheet import apply_stylesheet

        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
        try:
            reader.read_manifest()
            reader.read_strings()
            reader.read_workbook()
            apply_stylesheet(reader.archive, reader.wb)
            paths = [
                rel.target
                for _, rel in reader.parser.find_sheets()
                if rel.target in reader.valid_files and "chartsheet" not in rel.Type
            ]
            worksheet = cls(
                paths[0] if paths else "",
                reader.shared_strings,
                set(reader.wb._date_formats),
                reader.wb.epoch,
            )
        except (AttributeError, TypeError):
            reader.archive.close()
            return None
        if not paths:
            reader.archive.close()
            raise SpreadsheetError("file: the workbook has no worksheet")
        return reader.archive, worksheet

    def rows(self, xml: IO[bytes]) -> Iterator[tuple[int, list[Cell]]]:
        while chunk := xml.read(1 << 16):
            self._parser.Parse(chunk, False)
            yield from self._done
            self._done.clear()
        self._parser.Parse(b"", True)
        yield from self._done

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        tag = _TAGS.get(name)
        if tag == "c":
            self._column = _column_index(attrs.get("r"), self._column + 1)
            self._type = attrs.get("t", "n")
            style = attrs.get("s")
            self._style = int(style) if style and style.isdigit() else -1
            self._text = None
        elif tag == "v" or tag == "t":
            if not self._phonetic:
                if self._text is None:
                    self._text = []
                self._capture = True
        elif tag == "row":
            number = attrs.get("r")
            self._number = int(number) if number and number.isdigit() else self._number + 1
            self._cells = {}
            self._column = -1
        elif tag == "rPh":
            self._phonetic += 1

    def _data(self, text: str) -> None:
        if self._capture and self._text is not None:
            self._text.append(text)

    def _end(self, name: str) -> None:
        tag = _TAGS.get(name)
        if tag == "c":
            self._cells[self._column] = self._value()
        elif tag == "v" or tag == "t":
            self._capture = False
        elif tag == "row":
            cells = self._cells
            row: list[Cell] = [None] * (max(cells) + 1 if cells else 0)
            for column, value in cells.items():
                row[column] = value
            self._done.append((self._number, row))
        elif tag == "rPh":
            self._phonetic -= 1

    def _value(self) -> Cell:
        text = "".join(self._text) if self._text is not None else None
        kind = self._type
        if kind == "s":
            try:
                return str(self._shared[int(text or "")])
            except (ValueError, IndexError):
                return None
        if kind in ("inlineStr", "str", "e"):
            return text or None
        if kind == "b":
            return text == "1"
        if not text:
            return None
        try:
            if kind == "d":
                return dt.datetime.fromisoformat(text)
            number: int | float
            try:
                number = int(text)
            except ValueError:
                number = float(text)
            if self._style in self._date_styles:
                value: Cell = self._from_excel(number, self._epoch)
                return value
            return number
        except (ValueError, OverflowError):
            return text  # the validation says why


# The worksheet elements read, in the transitional and the strict namespace: expat names
# them "namespace}local" whatever prefix the file uses.
_TAGS = {
    f"{namespace}}}{local}": local
    for namespace in (
        "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "http://purl.oclc.org/ooxml/spreadsheetml/main",
    )
    for local in ("row", "c", "v", "t", "rPh")
}


@functools.lru_cache(maxsize=1024)
def _letters_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter.upper()) - 64
    return index - 1


def _column_index(reference: str | None, default: int) -> int:
    """0 for "A7", 27 for "AB7"; ``default`` when the cell names no column."""
    if not reference:
        return default
    letters = reference.rstrip("0123456789")
    if not letters or len(letters) > 3 or not letters.isalpha() or not letters.isascii():
        return default
    return _letters_index(letters)


def _count_rows(data: bytes, path: str) -> int:
    """A worksheet's rows, counted in its XML (for progress only)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive, archive.open(path) as xml:
            count, tail = 0, b""
            while chunk := xml.read(1 << 20):
                block = tail + chunk
                count += block.count(b"<row ") + block.count(b"<row>")
                tail = block[-5:]
                count -= tail.count(b"<row ") + tail.count(b"<row>")
            return count + tail.count(b"<row ") + tail.count(b"<row>")
    except (KeyError, zipfile.BadZipFile, OSError):
        return 0


# ---------------------------------------------------------------- writing


def format_number(value: int | float | Decimal) -> str:
    """A number as text no reader can misread: no thousands separator, a '.' decimal mark,
    and never exactly three decimals after a non-zero whole part ("1.234" could be 1234)."""
    if isinstance(value, int):
        return str(value)
    number = Decimal(repr(value)) if isinstance(value, float) else value
    text = format(number.normalize(), "f")
    whole, _, fraction = text.lstrip("-").partition(".")
    if len(fraction) == 3 and whole.strip("0"):
        text += "0"
    return text


def escape_text(text: str) -> str:
    """Text a spreadsheet would run as a formula (= + - @ first) gets a leading apostrophe,
    which spreadsheets show as "this is text" and the importer takes off again."""
    return "'" + text if text.startswith(_FORMULA_START) else text


# Control characters XML (so XLSX) cannot hold; a CSV reader would choke on them too.
_NOT_IN_SHEETS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def export_cells(row: Mapping[str, Any]) -> list[Cell]:
    """An exported row as cells in ``COLUMNS`` order: Vietnamese words for enumerated values,
    lists joined with "; ", text escaped; numbers and dates stay typed."""
    cells: list[Cell] = []
    for column in COLUMNS:
        value = row.get(column.key)
        if column.key in _EXPORT_WORDS and value is not None:
            words = _EXPORT_WORDS[column.key]
            values = value if isinstance(value, list | tuple) else [value]
            value = "; ".join(words[str(v)][0] for v in values)
        elif isinstance(value, list | tuple):
            value = "; ".join(str(v) for v in value)
        if isinstance(value, str):
            value = escape_text(_NOT_IN_SHEETS.sub("", value))
        cells.append(value)
    return cells


class SheetWriter(Protocol):
    def write(self, row: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class CsvSheetWriter:
    """UTF-8 with a byte-order mark (so Excel shows Vietnamese), comma-separated, CRLF."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._text, lineterminator="\r\n")
        self._csv.writerow([c.header for c in COLUMNS])

    def write(self, row: Mapping[str, Any]) -> None:
        self._csv.writerow([_csv_text(cell) for cell in export_cells(row)])

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


def _csv_text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, int | float | Decimal) and not isinstance(cell, bool):
        return format_number(cell)
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell)


class XlsxSheetWriter:
    """One worksheet, a bold frozen header; codes and phones as text (their leading zeros
    stay), numbers as numbers, dates as dd/mm/yyyy dates. No text starts with "=" once
    escaped, so none becomes a formula."""

    def __init__(self, stream: IO[bytes]) -> None:
        import openpyxl
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        self._stream = stream
        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet("Khách hàng")
        self._cell = WriteOnlyCell
        self._sheet.freeze_panes = "A2"
        for i, column in enumerate(COLUMNS, start=1):
            width = max(len(column.header) + 2, 12 if column.key != "address" else 40)
            self._sheet.column_dimensions[get_column_letter(i)].width = width
        header = []
        for column in COLUMNS:
            cell = WriteOnlyCell(self._sheet, column.header)
            cell.font = Font(bold=True)
            header.append(cell)
        self._sheet.append(header)

    def write(self, row: Mapping[str, Any]) -> None:
        cells: list[Any] = export_cells(row)
        for i, value in enumerate(cells):
            if isinstance(value, dt.date):
                cell = self._cell(self._sheet, value)
                cell.number_format = "DD/MM/YYYY"
                cells[i] = cell
        self._sheet.append(cells)

    def close(self) -> None:
        self._book.save(self._stream)


def sheet_writer(fmt: Format, stream: IO[bytes]) -> SheetWriter:
    return CsvSheetWriter(stream) if fmt == "csv" else XlsxSheetWriter(stream)


def format_of(filename: str) -> Format:
    """The format a file name asks for."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in ("csv", "xlsx"):
        raise SpreadsheetError(f"file: {filename!r} is neither .csv nor .xlsx")
    return "csv" if suffix == "csv" else "xlsx"


def parse_digits_list(cell: Cell, separators: str, lengths: tuple[int, ...]) -> list[str]:
    """Phones: a list cell, or one number a spreadsheet stored as a number."""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        text = digits_text(cell, lengths=lengths)
        return [text] if text else []
    return split_list(cell, separators)


__all__ = [
    "COLUMNS",
    "HEADERS",
    "Cell",
    "CellError",
    "Column",
    "CsvSheetWriter",
    "Format",
    "Sheet",
    "SheetRow",
    "SheetWriter",
    "SpreadsheetError",
    "XlsxSheetWriter",
    "cell_text",
    "column_key",
    "digits_text",
    "escape_text",
    "export_cells",
    "format_number",
    "format_of",
    "parse_date",
    "parse_digits_list",
    "parse_number",
    "parse_services",
    "parse_word",
    "read_csv",
    "read_sheet",
    "read_xlsx",
    "shown",
    "split_list",
]
