"""One spreadsheet row checked on its own (step 1 of ``customers.importer``): its cells
parsed into an ``ImportRow``, or every reason it is rejected (``Rejection``) with its row
number, column, value and reason. Codes of areas and staff are looked up; a point code seen
before in the file rejects the later row; the rows of one customer must agree on the
customer's own fields. A good row comes out as the staging table holds it (``STAGE``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from customers.import_search import point_search_text
from customers.models import (
    BillingPeriod,
    ClassName,
    Code,
    CustomerKind,
    Email,
    Name,
    Phone,
    Service,
    Status,
    TaxCode,
    Text200,
)
from customers.spreadsheets import (
    Cell,
    CellError,
    SheetRow,
    cell_text,
    digits_text,
    parse_date,
    parse_digits_list,
    parse_number,
    parse_services,
    parse_word,
    shown,
)


class ImportRow(BaseModel):
    """One spreadsheet row as values. A column the file lacks stays at its default here and
    is not written (``name``, ``kind``, ``lat``, ``lon`` are None only then)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_code: Code
    point_code: Code
    name: Name | None = None
    kind: CustomerKind | None = None
    phones: list[Phone] = Field(default_factory=list, max_length=5)
    email: Email | None = None
    tax_code: TaxCode | None = None
    billing_period: BillingPeriod = BillingPeriod.MONTHLY
    address: str = Field("", max_length=500)
    street: Text200 = ""
    ward: str = Field("", max_length=100)
    area_code: Code | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=10_000)
    category: str = Field("", max_length=100)
    collector: Code | None = None
    cashier: Code | None = None
    route_code: Code | None = None
    status: Status = Status.ACTIVE
    customer_class: ClassName | None = None  # None: the kind's default class
    so_khau: int | None = Field(None, ge=1, le=100)
    volume_m3_per_month: Decimal | None = Field(None, ge=0, le=10**8)
    weight_kg_per_month: Decimal | None = Field(None, ge=0, le=10**9)
    container_lifts_per_month: int | None = Field(None, ge=0, le=10_000)
    contract_price_vnd: int | None = Field(None, ge=0, le=10**12)
    services: list[Service] = Field(default_factory=lambda: [Service.COLLECTION], max_length=5)
    valid_from: dt.date | None = Field(None, ge=dt.date(1900, 1, 1), le=dt.date(2200, 12, 31))


_TOO_LARGE = Decimal(10) ** 15


def _number(cell: Cell, *, integer: bool = False, max_value: int | None = None) -> Decimal | None:
    value = parse_number(cell, integer=integer, max_value=max_value)
    if value is not None and abs(value) > _TOO_LARGE:
        raise CellError("far too large")
    return value


def _whole(max_value: int) -> Callable[[Cell], int | None]:
    def parse(cell: Cell) -> int | None:
        value = _number(cell, integer=True, max_value=max_value)
        if value is None:
            return None
        if value != value.to_integral_value():
            raise CellError("not a whole number")
        return int(value)

    return parse


# "21.0285": below 1,000 a lone '.' can only be a decimal mark ("1.234" is not 1234).
_DECIMAL_POINT = re.compile(r"-?[0-9]{1,3}\.[0-9]{1,12}")


def _float(max_value: int, *, required: str | None = None) -> Callable[[Cell], float | None]:
    plain = _DECIMAL_POINT.fullmatch if max_value < 1000 else None

    def parse(cell: Cell) -> float | None:
        if plain is not None and type(cell) is str and plain(cell):
            return float(cell)
        value = _number(cell, max_value=max_value)
        if value is None:
            if required:
                raise CellError(required)
            return None
        # Far below a millimetre; and a subnormal float would not fit PostgreSQL's real.
        return 0.0 if abs(value) < Decimal("1e-12") else float(value)

    return parse


def _rounded(places: int, max_value: int) -> Callable[[Cell], Decimal | None]:
    quantum = Decimal(1).scaleb(-places)

    def parse(cell: Cell) -> Decimal | None:
        value = _number(cell, max_value=max_value)
        # What PostgreSQL's numeric(12, places) would keep: "=A1/30" in a sheet is fine.
        return None if value is None else value.quantize(quantum, rounding=ROUND_HALF_UP)

    return parse


def _text(cell: Cell) -> str:
    return cell_text(cell)


def _optional(cell: Cell) -> str | None:
    return cell_text(cell) or None


def _required(reason: str) -> Callable[[Cell], str]:
    def parse(cell: Cell) -> str:
        text = cell_text(cell)
        if not text:
            raise CellError(reason)
        return text

    return parse


def _word(column: str, *, required: bool = False) -> Callable[[Cell], str | None]:
    def parse(cell: Cell) -> str | None:
        value = parse_word(cell, column)
        if value is None and required:
            raise CellError("missing")
        return value

    return parse


def _defaulted(parse: Callable[[Cell], Any]) -> Callable[[Cell], Any]:
    """An empty cell takes the model's default (drops out of the values)."""

    def parse_or_default(cell: Cell) -> Any:
        value = parse(cell)
        return _DEFAULT if value is None else value

    return parse_or_default


_DEFAULT = object()
_MISSING_POSITION = "missing position: a service point needs its latitude and longitude"
_PARSERS: dict[str, Callable[[Cell], Any]] = {
    "customer_code": _required("missing"),
    "point_code": _optional,
    "name": _required("missing"),
    "kind": _word("kind", required=True),
    "phones": lambda c: parse_digits_list(c, ";/", (10, 11)),
    "email": _optional,
    "tax_code": lambda c: digits_text(c, lengths=(10, 12)) or None,
    "billing_period": _defaulted(lambda c: parse_word(c, "billing_period")),
    "address": _text,
    "street": _text,
    "ward": _text,
    "area_code": _optional,
    "lat": _float(90, required=_MISSING_POSITION),
    "lon": _float(180, required=_MISSING_POSITION),
    "accuracy_m": _float(10_000),
    "category": _text,
    "collector": _optional,
    "cashier": _optional,
    "route_code": _optional,
    "status": _defaulted(lambda c: parse_word(c, "status")),
    "customer_class": _optional,
    "so_khau": _whole(100),
    "volume_m3_per_month": _rounded(3, 10**8),
    "weight_kg_per_month": _rounded(2, 10**9),
    "container_lifts_per_month": _whole(10_000),
    "contract_price_vnd": _whole(10**12),
    "services": _defaulted(parse_services),
    "valid_from": parse_date,
}

_PATTERN_REASONS = {
    "customer_code": "a code of 1-32 letters, digits, '.', '_' or '-'",
    "point_code": "a code of 1-32 letters, digits, '.', '_' or '-'",
    "area_code": "a code of 1-32 letters, digits, '.', '_' or '-'",
    "collector": "a staff code of 1-32 letters, digits, '.', '_' or '-'",
    "cashier": "a staff code of 1-32 letters, digits, '.', '_' or '-'",
    "route_code": "a code of 1-32 letters, digits, '.', '_' or '-'",
    "customer_class": "a class name of 1-32 lower-case letters, digits or '_'",
    "phones": "a phone number: 6-20 digits, spaces, dots or dashes, '+' first",
    "email": "not an e-mail address",
    "tax_code": "a tax code of 10 digits, 10 digits-3 digits, or 12 digits",
}


def _reason(column: str, error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERN_REASONS.get(column, "not in the expected form")
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind == "string_too_long":
        return f"longer than {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"more than {ctx.get('max_length')} items"
    return str(error["msg"])


@dataclass(frozen=True, slots=True)
class Rejection:
    row_number: int  # the spreadsheet's: the header is row 1
    field: str | None  # the column's key (``HEADERS`` gives its header)
    value: str | None
    reason: str


# The customer's own columns: the rows of one customer must agree on them.
CUSTOMER_FIELDS = ("name", "kind", "phones", "email", "tax_code", "billing_period")

# The staging table: a good row as the database will hold it.
STAGE: tuple[tuple[str, str], ...] = (
    ("row_number", "integer"),
    ("customer_code", "text"),
    ("point_code", "text"),
    ("name", "text"),
    ("kind", "text"),
    ("phones", "text[]"),
    ("email", "text"),
    ("tax_code", "text"),
    ("billing_period", "text"),
    ("address", "text"),
    ("street", "text"),
    ("ward", "text"),
    ("area_id", "bigint"),
    ("area_group", "text"),
    ("lat", "double precision"),
    ("lon", "double precision"),
    ("position_accuracy_m", "real"),
    ("category", "text"),
    ("collector_staff_id", "bigint"),
    ("cashier_staff_id", "bigint"),
    ("route_code", "text"),
    ("status", "text"),
    ("customer_class", "text"),
    ("so_khau", "integer"),
    ("volume_m3_per_month", "numeric(12, 3)"),
    ("weight_kg_per_month", "numeric(12, 2)"),
    ("container_lifts_per_month", "integer"),
    ("contract_price_vnd", "bigint"),
    ("services", "text[]"),
    ("valid_from", "date"),
    ("search_text", "text"),
)
STAGE_NAMES = [name for name, _ in STAGE]


class Validator:
    """Checks rows one by one; remembers what later rows are checked against (point codes
    seen, each customer's own fields as its first row gave them)."""

    def __init__(
        self,
        columns: frozenset[str],
        areas: dict[str, tuple[int, str]],  # code -> (id, area_group)
        staff: dict[str, int],  # code -> id
    ) -> None:
        self.columns, self.areas, self.staff = columns, areas, staff
        self.customer_fields = tuple(f for f in CUSTOMER_FIELDS if f in columns)
        self.point_rows: dict[str, int] = {}  # point code -> the row it was first seen in
        self.customers: dict[str, tuple[int, tuple[Any, ...]]] = {}
        # What is staged for a column the file lacks: None, "not given".
        self.given = {c: c in columns for c in _PARSERS}

    def check(self, row: SheetRow) -> tuple[tuple[Any, ...] | None, list[Rejection]]:
        """The row as staged, or None and why not."""
        values: dict[str, Any] = {}
        rejections: list[Rejection] = []
        for column, cell in row.cells.items():
            try:
                value = _PARSERS[column](cell)
            except CellError as exc:
                rejections.append(Rejection(row.number, column, shown(cell), str(exc)))
                continue
            if value is not _DEFAULT:
                values[column] = value
        if not values.get("point_code") and "customer_code" in values:
            values["point_code"] = values["customer_code"]
        point_code = values.get("point_code")
        if point_code is not None:
            first = self.point_rows.setdefault(point_code, row.number)
            if first != row.number:
                reason = f"duplicate point code: row {first} has it already"
                rejections.append(Rejection(row.number, "point_code", point_code, reason))
        if rejections:
            return None, rejections
        try:
            parsed = ImportRow.model_validate(values)
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else None
                cell = row.cells.get(name) if name else None
                rejections.append(
                    Rejection(row.number, name, shown(cell), _reason(name or "", error))
                )
            return None, rejections
        return self._resolve(row.number, parsed)

    def _resolve(
        self, number: int, row: ImportRow
    ) -> tuple[tuple[Any, ...] | None, list[Rejection]]:
        rejections = []
        area = None
        if row.area_code is not None:
            area = self.areas.get(row.area_code)
            if area is None:
                rejections.append(Rejection(number, "area_code", row.area_code, "no such area"))
        collector = cashier = None
        if row.collector is not None:
            collector = self.staff.get(row.collector)
            if collector is None:
                reason = "no such staff member"
                rejections.append(Rejection(number, "collector", row.collector, reason))
        if row.cashier is not None:
            cashier = self.staff.get(row.cashier)
            if cashier is None:
                reason = "no such staff member"
                rejections.append(Rejection(number, "cashier", row.cashier, reason))
        if rejections:
            return None, rejections
        customer = tuple(getattr(row, f) for f in self.customer_fields)
        first = self.customers.setdefault(row.customer_code, (number, customer))
        if first[1] != customer:
            for name, theirs, ours in zip(self.customer_fields, first[1], customer, strict=True):
                if theirs != ours:
                    reason = (
                        f"differs from row {first[0]} of the same customer"
                        f" ({shown(_display(theirs), 60)!r})"
                    )
                    return None, [Rejection(number, name, shown(_display(ours)), reason)]
        return self._staged(number, row, area, collector, cashier), []

    def _staged(
        self,
        number: int,
        row: ImportRow,
        area: tuple[int, str] | None,
        collector: int | None,
        cashier: int | None,
    ) -> tuple[Any, ...]:
        """The row in ``STAGE`` order; None for a column the file lacks."""
        given = self.given
        kind = row.kind.value if row.kind is not None else None
        return (
            number,
            row.customer_code,
            row.point_code,
            row.name,
            kind,
            row.phones if given["phones"] else None,
            row.email,
            row.tax_code,
            row.billing_period.value if given["billing_period"] else None,
            row.address if given["address"] else None,
            row.street if given["street"] else None,
            row.ward if given["ward"] else None,
            area[0] if area else None,
            area[1] if area else None,
            row.lat,
            row.lon,
            row.accuracy_m,
            row.category if given["category"] else None,
            collector,
            cashier,
            row.route_code,
            row.status.value if given["status"] else None,
            row.customer_class or kind,  # no kind either: the stored one's (in SQL)
            row.so_khau,
            row.volume_m3_per_month,
            row.weight_kg_per_month,
            row.container_lifts_per_month,
            row.contract_price_vnd,
            sorted({s.value for s in row.services}) if given["services"] else None,
            row.valid_from,
            point_search_text(
                customer_code=row.customer_code,
                point_code=row.point_code,
                name=row.name or "",
                phones=row.phones,
                address=row.address,
                street=row.street,
                ward=row.ward,
                tax_code=row.tax_code,
            ),
        )


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)
