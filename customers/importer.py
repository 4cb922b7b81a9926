"""Importing a customer spreadsheet into the book, and exporting the book as one.

The flow, in order:

1. **validate** each row on its own (``ImportRow``): a bad row is rejected with its row
   number, field, value and reason; the good ones go on. Codes of areas and staff are
   looked up; a point code seen before in the file rejects the later row; the rows of one
   customer must agree on the customer's own fields.
2. **stage** the good rows in a temporary table (COPY) and match them to the stored
   customers and points; a point stored under another customer rejects its row.
3. **compare** each matched row with what is stored: the point's place and people with its
   columns, its billing terms with the terms in force on the effective date. Only columns
   the file has are compared and written; a column it lacks is left as it is.
4. **write** set-based: new customers, points and their first terms; changed customers and
   points; changed terms from the effective date (``customers.terms`` semantics: the row in
   force is split, later rows that carried the old value take the new one); the points'
   columns synced to the terms in force today.
5. **audit** every created or changed customer and point, and record the import with its
   rejections.

Steps 2-5 run per chunk of ``CHUNK_ROWS`` good rows while the next chunk is validated, so
PostgreSQL writes on one core while Python reads on the other (100,000 new rows from a CSV:
about 25 s on two cores). Re-importing a file changes nothing (every row
counts as unchanged). Everything happens in the caller's transaction, under a per-company
lock so two imports do not interleave.

Exporting (``export_rows``) gives every point as a row of the same columns, so that an
export imports back as all unchanged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import audit
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
    HEADERS,
    Cell,
    CellError,
    Format,
    Sheet,
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
from customers.text import fold, phone_digits

Progress = Callable[[int, int], None]

# ---------------------------------------------------------------- one row


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


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Rejection:
    row_number: int  # the spreadsheet's: the header is row 1
    field: str | None  # the column's key (``HEADERS`` gives its header)
    value: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    import_id: int
    rows_total: int  # the non-empty rows below the header
    rows_created: int
    rows_updated: int
    rows_unchanged: int
    rows_rejected: int
    rejections: list[Rejection]  # every reason of every rejected row, by row
    ignored_headers: tuple[str, ...] = ()


# ---------------------------------------------------------------- validation


CUSTOMER_FIELDS = ("name", "kind", "phones", "email", "tax_code", "billing_period")
# service_points column -> the spreadsheet column it comes from
PLACE_FIELDS = {
    "address": "address",
    "street": "street",
    "ward": "ward",
    "area_id": "area_code",
    "lat": "lat",
    "lon": "lon",
    "position_accuracy_m": "accuracy_m",
    "category": "category",
    "collector_staff_id": "collector",
    "cashier_staff_id": "cashier",
    "route_code": "route_code",
}
TERM_FIELDS = (
    "status",
    "customer_class",
    "so_khau",
    "volume_m3_per_month",
    "weight_kg_per_month",
    "container_lifts_per_month",
    "contract_price_vnd",
    "services",
)
# The staging table: a good row as the database will hold it.
_STAGE: tuple[tuple[str, str], ...] = (
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
_STAGE_NAMES = [name for name, _ in _STAGE]


class _Validator:
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
        """The row in ``_STAGE`` order; None for a column the file lacks."""
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


_fold = functools.lru_cache(maxsize=1 << 16)(fold)


def point_search_text(
    *,
    customer_code: str,
    point_code: str,
    name: str,
    phones: Sequence[str],
    address: str,
    street: str = "",
    ward: str = "",
    tax_code: str | None = None,
) -> str:
    """``customers.text.search_text``, each part folded once and streets, wards and names
    remembered: an import folds 100,000s of rows. The tests keep the two equal."""
    folded_address = _fold(address)
    folded_street = _fold(street) if street else ""
    folded_ward = _fold(ward) if ward else ""
    parts = [
        _fold(point_code),
        _fold(customer_code) if customer_code != point_code else "",
        _fold(name),
        " ".join(phone_digits(p) for p in phones),
        folded_address,
        folded_street if street and folded_street not in folded_address else "",
        folded_ward if ward and folded_ward not in folded_address else "",
        tax_code or "",
    ]
    return " ".join(p for p in parts if p)


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


# ---------------------------------------------------------------- the database side


CHUNK_ROWS = 20_000  # rows written at once; the next ones are validated meanwhile
_YIELD_ROWS = 250  # validation lets the writing go on this often


class _Progress:
    """Reading a row and writing it are each half of the work."""

    def __init__(self, callback: Progress | None, estimate: int) -> None:
        self._callback, self._estimate = callback, estimate
        self.read = self.written = 0

    def report(self) -> None:
        if self._callback is not None:
            self._callback(self.read + self.written, 2 * max(self._estimate, self.read, 1))

    def finish(self) -> None:
        if self._callback is not None:
            total = 2 * max(self.read, 1)
            self._callback(total, total)


async def import_rows(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    sheet: Sheet,
    *,
    filename: str,
    file_sha256: str,
    fmt: Format,
    now: dt.datetime,
    effective_date: dt.date,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``sheet`` into the company's book, in the caller's transaction.

    Billing terms change from ``effective_date`` (for a point whose terms start later, from
    their start); the points' columns mirror the terms in force on ``now``'s date. Rows are
    written ``CHUNK_ROWS`` at a time while the next ones are validated: PostgreSQL writes
    on one core while Python reads on the other.
    """
    started = time.monotonic()
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('customers.import', %s))", (tenant_id,)
    )
    cursor = await conn.execute(
        "INSERT INTO customer_imports (tenant_id, filename, file_sha256, format, imported_by,"
        " actor, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, filename[:500], file_sha256, fmt, actor.user_id, actor.name, now),
    )
    row = await cursor.fetchone()
    assert row is not None
    import_id = int(row[0])
    columns = frozenset(sheet.columns)
    validator = _Validator(columns, await _areas(conn, tenant_id), await _staff(conn, tenant_id))
    step = _Progress(progress, sheet.total_rows)
    writer = _Writer(conn, tenant_id, actor, columns, now, effective_date, step)
    rejections: list[Rejection] = []
    writing: asyncio.Task[None] | None = None
    try:
        async for chunk in _validated(sheet, validator, rejections, step):
            if writing is not None:
                await writing
            writing = asyncio.create_task(writer.write(chunk), name="customers-import-write")
    finally:
        if writing is not None:
            await writing
    rejections += writer.rejections
    rejected_rows = len({r.row_number for r in rejections})
    await _record_rejections(conn, import_id, rejections)
    unchanged = writer.good - writer.created - writer.updated
    finished = now + dt.timedelta(seconds=time.monotonic() - started)
    await conn.execute(
        "UPDATE customer_imports SET finished_at = %s, rows_total = %s, rows_created = %s,"
        " rows_updated = %s, rows_unchanged = %s, rows_rejected = %s WHERE id = %s",
        (finished, step.read, writer.created, writer.updated, unchanged, rejected_rows,
         import_id),
    )  # fmt: skip
    step.finish()
    return ImportReport(
        import_id=import_id,
        rows_total=step.read,
        rows_created=writer.created,
        rows_updated=writer.updated,
        rows_unchanged=unchanged,
        rows_rejected=rejected_rows,
        rejections=sorted(rejections, key=lambda r: r.row_number),
        ignored_headers=sheet.ignored_headers,
    )


async def _validated(
    sheet: Sheet, validator: _Validator, rejections: list[Rejection], step: _Progress
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The good rows as staged, ``CHUNK_ROWS`` at a time; the bad ones into ``rejections``."""
    chunk: list[tuple[Any, ...]] = []
    for row in sheet.rows:
        step.read += 1
        staged, rejected = validator.check(row)
        if staged is None:
            rejections += rejected
        else:
            chunk.append(staged)
        if step.read % _YIELD_ROWS == 0:
            await asyncio.sleep(0)  # the previous chunk's writing goes on in between
            if step.read % (8 * _YIELD_ROWS) == 0:
                step.report()
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    step.report()
    if chunk:
        yield chunk


async def _areas(conn: AsyncConnection[Any], tenant_id: int) -> dict[str, tuple[int, str]]:
    cursor = await conn.execute(
        "SELECT code, id, area_group FROM areas WHERE tenant_id = %s", (tenant_id,)
    )
    return {code: (int(i), group) for code, i, group in await cursor.fetchall()}


async def _staff(conn: AsyncConnection[Any], tenant_id: int) -> dict[str, int]:
    cursor = await conn.execute("SELECT code, id FROM staff WHERE tenant_id = %s", (tenant_id,))
    return {code: int(i) for code, i in await cursor.fetchall()}


class _Writer:
    """Writes validated rows chunk by chunk: stage, match, compare, create, update, audit."""

    def __init__(
        self,
        conn: AsyncConnection[Any],
        tenant_id: int,
        actor: audit.Actor,
        columns: frozenset[str],
        now: dt.datetime,
        effective: dt.date,
        step: _Progress,
    ) -> None:
        self.conn, self.tenant_id, self.actor, self.columns = conn, tenant_id, actor, columns
        self.now, self.effective, self.step = now, effective, step
        self.rejections: list[Rejection] = []
        self.created = self.updated = self.good = 0
        # A customer changed by its first row: its later rows count as updated too.
        self.changed_customers: set[int] = set()

    async def write(self, staged: Sequence[tuple[Any, ...]]) -> None:
        conn, tenant_id, columns = self.conn, self.tenant_id, self.columns
        await _stage(conn, staged)
        self.rejections += await _match(conn, tenant_id, columns)
        customers = await _customer_changes(conn, columns)
        points = await _point_changes(conn, columns, self.effective)
        changes = await _create(conn, tenant_id, self.effective)
        await _update_customers(conn, columns, self.now, customers)
        await _update_points(conn, tenant_id, columns, self.now, self.now.date(), points)
        # What points are found by: the staged text is right when the file has every column
        # of it; the points of a renamed customer that this chunk does not list, and new
        # points of a stored customer when the file lacks its name, phones or tax code, are
        # recomputed.
        refresh = {c.id for c in customers if c.changed.keys() & {"name", "phones", "tax_code"}}
        if not columns >= _SEARCHED:
            refresh |= await _existing_customers_with_new_points(conn)
        await _refresh_search_text(conn, tenant_id, refresh)
        self.changed_customers |= {c.id for c in customers}
        cursor = await conn.execute(
            "SELECT count(*) FILTER (WHERE point_id IS NULL),"
            " count(*) FILTER (WHERE point_id IN (SELECT unnest(%s::bigint[]))"
            "  OR point_id IS NOT NULL AND customer_id IN (SELECT unnest(%s::bigint[]))),"
            " count(*) FROM import_rows",
            ([p.id for p in points], sorted(self.changed_customers)),
        )
        counts = await cursor.fetchone()
        assert counts is not None
        self.created += int(counts[0])
        self.updated += int(counts[1])
        self.good += int(counts[2])
        changes += [c.audit() for c in customers]
        changes += [p.audit() for p in points]
        await audit.record_many(conn, tenant_id, self.actor, self.now, changes)
        self.step.written += len(staged)
        self.step.report()


async def _stage(conn: AsyncConnection[Any], staged: Sequence[tuple[Any, ...]]) -> None:
    """``import_raw``: the chunk's rows (COPY)."""
    await conn.execute("DROP TABLE IF EXISTS pg_temp.import_raw, pg_temp.import_rows")
    await conn.execute(
        "CREATE TEMP TABLE import_raw ("
        + ", ".join(f"{name} {kind}" for name, kind in _STAGE)
        + ") ON COMMIT DROP"
    )
    copy_sql = f"COPY import_raw ({', '.join(_STAGE_NAMES)}) FROM STDIN"
    async with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in staged:
            await copy.write_row(row)


async def _match(
    conn: AsyncConnection[Any], tenant_id: int, columns: frozenset[str]
) -> list[Rejection]:
    """``import_rows``: the staged rows with their stored customer and point, if any; rows
    that cannot be written are rejected and dropped."""
    select = ", ".join(f"r.{name}" for name in _STAGE_NAMES if name != "customer_class")
    await conn.execute(
        f"CREATE TEMP TABLE import_rows ON COMMIT DROP AS SELECT {select},"
        " coalesce(r.customer_class, c.kind) AS customer_class, c.id AS customer_id,"
        " p.id AS point_id, pc.code AS stored_customer_code"
        " FROM import_raw r"
        " LEFT JOIN customers c ON c.tenant_id = %(tenant)s AND c.code = r.customer_code"
        " LEFT JOIN service_points p ON p.tenant_id = %(tenant)s AND p.code = r.point_code"
        " LEFT JOIN customers pc ON pc.id = p.customer_id",
        {"tenant": tenant_id},
    )
    await conn.execute("DROP TABLE import_raw")
    rejections = []
    cursor = await conn.execute(
        "DELETE FROM import_rows WHERE stored_customer_code <> customer_code"
        " RETURNING row_number, point_code, stored_customer_code"
    )
    for number, code, owner in await cursor.fetchall():
        rejections.append(
            Rejection(number, "point_code", code, f"the point {code} belongs to customer {owner}")
        )
    for needed, where, what in (
        (("name", "kind"), "customer_id IS NULL", "a new customer"),
        (("lat", "lon"), "point_id IS NULL", "a new service point"),
    ):
        missing = [c for c in needed if c not in columns]
        if missing:
            cursor = await conn.execute(
                f"DELETE FROM import_rows WHERE {where} RETURNING row_number"
            )
            names = " and ".join(repr(HEADERS[c]) for c in missing)
            for (number,) in await cursor.fetchall():
                plural = "s" if len(missing) > 1 else ""
                reason = f"the file has no {names} column{plural}: {what} needs it"
                rejections.append(Rejection(number, missing[0], None, reason))
    await conn.execute("ANALYZE import_rows (customer_id, point_id)")
    return rejections


@dataclass
class _Changed:
    """A stored customer or point the file changes: field -> (before, after)."""

    entity: str
    id: int
    customer_id: int
    changed: dict[str, tuple[Any, Any]]
    # points only: the billing terms the file changes, from when, and what held then
    terms_changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    effective: dt.date | None = None
    terms_id: int | None = None  # the terms row in force on ``effective``; None: no terms yet
    basis: dict[str, Any] = field(default_factory=dict)
    area_group: str | None = None  # the file's area's group

    def audit(self) -> audit.Change:
        before = {k: b for k, (b, _) in self.changed.items()}
        after = {k: a for k, (_, a) in self.changed.items()}
        if self.terms_changed:
            before["effective_date"] = after["effective_date"] = self.effective
        return audit.Change(self.entity, self.id, "import_update", before, after, self.customer_id)


_FIRST_ROWS = (
    "(SELECT DISTINCT ON (customer_id) * FROM import_rows WHERE customer_id IS NOT NULL"
    " ORDER BY customer_id, row_number) s"
)


async def _customer_changes(conn: AsyncConnection[Any], columns: frozenset[str]) -> list[_Changed]:
    """Stored customers whose own fields the file changes, locked."""
    fields = [f for f in CUSTOMER_FIELDS if f in columns]
    if not fields:
        return []
    stored = ", ".join(f"c.{f}" for f in fields)
    staged = ", ".join(f"s.{f}" for f in fields)
    cursor = await conn.execute(
        f"SELECT c.id FROM {_FIRST_ROWS} JOIN customers c ON c.id = s.customer_id"
        f" WHERE ROW({stored}) IS DISTINCT FROM ROW({staged}) ORDER BY c.id"
        " FOR NO KEY UPDATE OF c"
    )
    ids = [int(r[0]) for r in await cursor.fetchall()]
    if not ids:
        return []
    # Read again under the lock: what is compared is what will be overwritten.
    cursor = await conn.execute(
        f"SELECT c.id, {stored}, {staged} FROM {_FIRST_ROWS}"
        " JOIN customers c ON c.id = s.customer_id WHERE c.id = ANY(%s)",
        (ids,),
    )
    changes = []
    for row in await cursor.fetchall():
        n = len(fields)
        before, after = row[1 : 1 + n], row[1 + n :]
        changed = {f: (b, a) for f, b, a in zip(fields, before, after, strict=True) if b != a}
        if changed:
            changes.append(_Changed("customer", int(row[0]), int(row[0]), changed))
    return changes


_BASIS_FIELDS = (*TERM_FIELDS, "area_group")
# The terms a point's row is compared with: those in force on the effective date, or (for
# a point whose terms start later) its first ones.
_TERMS_AT = (
    " LEFT JOIN LATERAL (SELECT * FROM service_point_terms t0 WHERE t0.service_point_id = p.id"
    " ORDER BY t0.valid_from > %(eff)s, abs(t0.valid_from - %(eff)s::date) LIMIT 1) t ON true"
)


def _basis(f: str) -> str:
    if f == "area_group":
        return "t.area_group"
    return f"CASE WHEN t.id IS NULL THEN p.{f} ELSE t.{f} END"


async def _point_changes(
    conn: AsyncConnection[Any], columns: frozenset[str], effective: dt.date
) -> list[_Changed]:
    """Stored points whose place, people or terms the file changes, locked."""
    place = [db for db, column in PLACE_FIELDS.items() if column in columns]
    term = [f for f in TERM_FIELDS if f in columns]
    group = "area_code" in columns
    differs = []
    if place:
        differs.append(
            f"ROW({', '.join(f'p.{f}' for f in place)})"
            f" IS DISTINCT FROM ROW({', '.join(f's.{f}' for f in place)})"
        )
    if term:
        differs.append(
            f"ROW({', '.join(_basis(f) for f in term)})"
            f" IS DISTINCT FROM ROW({', '.join(f's.{f}' for f in term)})"
        )
    if group:
        differs.append("(t.id IS NOT NULL AND s.area_group <> t.area_group)")
    if not differs:
        return []
    joins = " FROM import_rows s JOIN service_points p ON p.id = s.point_id" + _TERMS_AT
    cursor = await conn.execute(
        f"SELECT p.id {joins} WHERE {' OR '.join(differs)} ORDER BY p.id FOR NO KEY UPDATE OF p",
        {"eff": effective},
    )
    ids = [int(r[0]) for r in await cursor.fetchall()]
    if not ids:
        return []
    cursor = await conn.execute(
        "SELECT p.id, p.customer_id, t.id, t.valid_from, s.valid_from, s.area_group"
        + "".join(f", p.{f}, s.{f}" for f in place)
        + "".join(f", {_basis(f)}" for f in _BASIS_FIELDS)
        + "".join(f", s.{f}" for f in term)
        + joins
        + " WHERE p.id = ANY(%(ids)s)",
        {"eff": effective, "ids": ids},
    )
    changes = []
    for row in await cursor.fetchall():
        point_id, customer_id, terms_id, terms_from, valid_from, area_group = row[:6]
        at = 6
        changed: dict[str, tuple[Any, Any]] = {}
        for f in place:
            if row[at] != row[at + 1]:
                changed[f] = (row[at], row[at + 1])
            at += 2
        basis = dict(zip(_BASIS_FIELDS, row[at : at + len(_BASIS_FIELDS)], strict=True))
        at += len(_BASIS_FIELDS)
        terms_changed = {
            f: (basis[f], new)
            for f, new in zip(term, row[at : at + len(term)], strict=True)
            if basis[f] != new
        }
        if group and terms_id is not None and area_group not in (None, basis["area_group"]):
            terms_changed["area_group"] = (basis["area_group"], area_group)
        if not changed and not terms_changed:
            continue
        # A point whose terms start after the effective date changes from their start.
        starts = max(effective, terms_from) if terms_id is not None else valid_from or effective
        changes.append(
            _Changed(
                "service_point",
                int(point_id),
                int(customer_id),
                changed | terms_changed,
                terms_changed,
                starts,
                terms_id,
                basis,
                area_group,
            )
        )
    return changes


_POINT_RECORD = (
    "code", "address", "street", "ward", "area_id", "lat", "lon", "position_accuracy_m",
    "position_source", "customer_class", "category", "so_khau", "volume_m3_per_month",
    "weight_kg_per_month", "container_lifts_per_month", "contract_price_vnd", "services",
    "collector_staff_id", "cashier_staff_id", "route_code", "status", "status_from",
)  # fmt: skip
_CUSTOMER_RECORD = (
    "code",
    "name",
    "kind",
    "phones",
    "email",
    "tax_code",
    "billing_period",
    "status_from",
)


def _record(fields: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """What a created customer or point holds, for the audit log: empty fields left out
    (100,000s of entries are hashed one by one)."""
    return {f: v for f, v in zip(fields, values, strict=True) if v is not None and v != ""}


async def _create(
    conn: AsyncConnection[Any], tenant_id: int, effective: dt.date
) -> list[audit.Change]:
    """New customers, their points and the points' first terms; what to audit."""
    params = {"tenant": tenant_id, "eff": effective}
    cursor = await conn.execute(
        "INSERT INTO customers (tenant_id, code, name, kind, phones, email, tax_code,"
        " billing_period, status_from)"
        " SELECT DISTINCT ON (s.customer_code) %(tenant)s, s.customer_code, s.name, s.kind,"
        " coalesce(s.phones, '{}'), s.email, s.tax_code, coalesce(s.billing_period, 'monthly'),"
        " min(coalesce(s.valid_from, %(eff)s)) OVER (PARTITION BY s.customer_code)"
        " FROM import_rows s WHERE s.customer_id IS NULL ORDER BY s.customer_code, s.row_number"
        f" RETURNING id, {', '.join(_CUSTOMER_RECORD)}",
        params,
    )
    changes = [
        audit.Change(
            "customer",
            int(row[0]),
            "import_create",
            None,
            _record(_CUSTOMER_RECORD, row[1:]),
            int(row[0]),
        )
        for row in await cursor.fetchall()
    ]
    cursor = await conn.execute(
        "INSERT INTO service_points (tenant_id, customer_id, code, address, street, ward,"
        " area_id, lat, lon, position_accuracy_m, position_source, customer_class, category,"
        " so_khau, volume_m3_per_month, weight_kg_per_month, container_lifts_per_month,"
        " contract_price_vnd, services, collector_staff_id, cashier_staff_id, route_code,"
        " status, status_from, volume_m3_per_day, waste_kg_per_day, search_text)"
        " SELECT %(tenant)s, c.id, s.point_code, coalesce(s.address, ''),"
        " coalesce(s.street, ''), coalesce(s.ward, ''), s.area_id, s.lat, s.lon,"
        " s.position_accuracy_m, 'import', coalesce(s.customer_class, c.kind),"
        " coalesce(s.category, ''), s.so_khau, s.volume_m3_per_month, s.weight_kg_per_month,"
        " s.container_lifts_per_month, s.contract_price_vnd,"
        " coalesce(s.services, '{collection}'), s.collector_staff_id, s.cashier_staff_id,"
        " s.route_code, coalesce(s.status, 'active'), coalesce(s.valid_from, %(eff)s),"
        " round(s.volume_m3_per_month / 30, 3), coalesce(round(s.weight_kg_per_month / 30, 2), 0),"
        " s.search_text"
        " FROM import_rows s JOIN customers c ON c.tenant_id = %(tenant)s"
        " AND c.code = s.customer_code WHERE s.point_id IS NULL ORDER BY s.row_number"
        f" RETURNING id, customer_id, {', '.join(_POINT_RECORD)}",
        params,
    )
    for row in await cursor.fetchall():
        record = _record(_POINT_RECORD, row[2:])
        changes.append(
            audit.Change("service_point", int(row[0]), "import_create", None, record, int(row[1]))
        )
    await conn.execute(
        "INSERT INTO service_point_terms (tenant_id, service_point_id, valid_from, status,"
        " customer_class, area_group, so_khau, volume_m3_per_month, weight_kg_per_month,"
        " container_lifts_per_month, contract_price_vnd, services)"
        " SELECT %(tenant)s, p.id, p.status_from, p.status, p.customer_class,"
        " coalesce(s.area_group, 'urban'), p.so_khau, p.volume_m3_per_month,"
        " p.weight_kg_per_month, p.container_lifts_per_month, p.contract_price_vnd, p.services"
        " FROM import_rows s JOIN service_points p ON p.tenant_id = %(tenant)s"
        " AND p.code = s.point_code WHERE s.point_id IS NULL",
        params,
    )
    return changes


async def _update_customers(
    conn: AsyncConnection[Any],
    columns: frozenset[str],
    now: dt.datetime,
    customers: Sequence[_Changed],
) -> None:
    if not customers:
        return
    fields = [f for f in CUSTOMER_FIELDS if f in columns]
    await conn.execute(
        f"UPDATE customers c SET {', '.join(f'{f} = s.{f}' for f in fields)},"
        f" revision = c.revision + 1, updated_at = %s FROM {_FIRST_ROWS}"
        " WHERE s.customer_id = c.id AND c.id = ANY(%s)",
        (now, [c.id for c in customers]),
    )


_TERM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "text"),
    ("customer_class", "text"),
    ("so_khau", "integer"),
    ("volume_m3_per_month", "numeric(12, 3)"),
    ("weight_kg_per_month", "numeric(12, 2)"),
    ("container_lifts_per_month", "integer"),
    ("contract_price_vnd", "bigint"),
    ("services", "text[]"),
    ("area_group", "text"),
    ("exemption_pct", "smallint"),
    ("exemption_reason", "text"),
)
_TERMS_ROW = ("id", "service_point_id", "valid_from", "valid_to", *(c for c, _ in _TERM_COLUMNS))


def changed_terms(
    rows: Sequence[dict[str, Any]], effective: dt.date, changes: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``customers.terms.change_terms_from`` on one point's terms rows held in memory (the
    row in force on ``effective`` and the later ones, oldest first): the rows to insert and
    the stored rows to rewrite. The row in force is split at ``effective``; from there each
    changed field takes its new value up to the first row that had set it itself."""
    current, *later = [dict(r) for r in rows]
    before = {f: current[f] for f in changes}
    inserts: list[dict[str, Any]] = []
    rewrites: dict[int, dict[str, Any]] = {}
    if current["valid_from"] < effective:
        split = current | {"id": None, "valid_from": effective}
        current["valid_to"] = effective
        rewrites[current["id"]] = current
        inserts.append(split)
        following = [split, *later]
    else:
        following = [current, *later]
    for f, value in changes.items():
        for row in following:
            if row[f] != before[f]:
                break
            row[f] = value
            if row["id"] is not None:
                rewrites[row["id"]] = row
    return inserts, list(rewrites.values())


async def _update_points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    columns: frozenset[str],
    now: dt.datetime,
    today: dt.date,
    points: Sequence[_Changed],
) -> None:
    """One UPDATE per chunk: the file's place and people, the terms in force today (the
    ``customers.terms.sync_current`` mirror; for a point whose terms have not started, its
    first ones, as when it was created), the planner's daily estimates and the search text,
    on every changed point."""
    if not points:
        return
    await _write_terms(conn, tenant_id, [p for p in points if p.terms_changed])
    place = [db for db, column in PLACE_FIELDS.items() if column in columns]
    sets = [f"{f} = s.{f}" for f in place]
    position = [f for f in ("lat", "lon", "position_accuracy_m") if f in place]
    if position:
        moved = (
            f"ROW({', '.join(f'p.{f}' for f in position)})"
            f" IS DISTINCT FROM ROW({', '.join(f's.{f}' for f in position)})"
        )
        sets.append(f"position_source = CASE WHEN {moved} THEN 'import' ELSE p.position_source END")
        sets.append(f"position_needs_fix = p.position_needs_fix AND NOT ({moved})")
    sets += [f"{f} = CASE WHEN t.id IS NULL THEN p.{f} ELSE t.{f} END" for f in TERM_FIELDS]
    sets.append(
        "status_from = CASE WHEN t.status IS DISTINCT FROM p.status AND t.id IS NOT NULL"
        " THEN t.valid_from ELSE p.status_from END"
    )
    for daily, monthly, places in (
        ("volume_m3_per_day", "volume_m3_per_month", 3),
        ("waste_kg_per_day", "weight_kg_per_month", 2),
    ):
        sets.append(
            f"{daily} = CASE WHEN t.{monthly} IS NOT NULL AND t.{monthly} IS DISTINCT FROM"
            f" p.{monthly} THEN round(t.{monthly} / 30, {places}) ELSE p.{daily} END"
        )
    ids = [p.id for p in points]
    if columns >= _SEARCHED:  # the staged text is the point's
        texts = " FROM import_rows s"
        sets.append("search_text = s.search_text")
    else:
        texts = " FROM import_rows s JOIN unnest(%(ids)s::bigint[], %(texts)s::text[]) u(id, text)"
        texts += " ON u.id = s.point_id"
        sets.append("search_text = u.text")
    await conn.execute(
        f"UPDATE service_points p SET {', '.join(sets)}, revision = p.revision + 1,"
        f" updated_at = %(now)s {texts} LEFT JOIN LATERAL (SELECT * FROM service_point_terms"
        " t0 WHERE t0.service_point_id = s.point_id AND (t0.valid_to IS NULL"
        " OR t0.valid_to > %(today)s) ORDER BY t0.valid_from LIMIT 1) t ON true"
        " WHERE s.point_id = p.id AND p.id = ANY(%(ids)s)",
        {
            "now": now,
            "today": today,
            "ids": ids,
            "texts": [] if columns >= _SEARCHED else await _search_texts(conn, ids),
        },
    )


async def _search_texts(conn: AsyncConnection[Any], ids: Sequence[int]) -> list[str]:
    """What the points ``ids`` will be found by, for a file that lacks some of the columns
    that make it: the file's values where it has them (the customers are written already),
    the stored ones elsewhere."""
    cursor = await conn.execute(
        "SELECT c.code, p.code, c.name, c.phones, coalesce(s.address, p.address),"
        " coalesce(s.street, p.street), coalesce(s.ward, p.ward), c.tax_code"
        " FROM unnest(%s::bigint[]) WITH ORDINALITY AS i(id, n)"
        " JOIN service_points p ON p.id = i.id JOIN customers c ON c.id = p.customer_id"
        " JOIN import_rows s ON s.point_id = p.id ORDER BY i.n",
        (list(ids),),
    )
    return [_search_text_of(parts) for parts in await cursor.fetchall()]


# The columns a point's search text is made of: with all of them, the staged text is right.
_SEARCHED = frozenset({"name", "phones", "tax_code", "address", "street", "ward"})


async def _write_terms(
    conn: AsyncConnection[Any], tenant_id: int, points: Sequence[_Changed]
) -> None:
    """The changed billing terms of ``points``, computed by ``changed_terms`` and written
    with one INSERT and one UPDATE."""
    if not points:
        return
    cursor = await conn.execute(
        f"SELECT {', '.join(_TERMS_ROW)} FROM service_point_terms"
        " WHERE service_point_id = ANY(%s) AND (valid_to IS NULL OR valid_to > %s)"
        " ORDER BY service_point_id, valid_from",
        ([p.id for p in points if p.terms_id is not None], min(_effective(p) for p in points)),
    )
    stored: dict[int, list[dict[str, Any]]] = {}
    for row in await cursor.fetchall():
        stored.setdefault(row[1], []).append(dict(zip(_TERMS_ROW, row, strict=True)))
    inserts: list[dict[str, Any]] = []
    rewrites: list[dict[str, Any]] = []
    for p in points:
        new = {f: after for f, (_, after) in p.terms_changed.items()}
        if p.terms_id is None:  # a point from before terms were kept: its first ones
            first = dict(p.basis) | new | {"exemption_pct": 0, "exemption_reason": ""}
            first["area_group"] = p.area_group or "urban"
            inserts.append(first | {"service_point_id": p.id, "valid_from": p.effective})
            continue
        rows = [r for r in stored[p.id] if r["valid_from"] >= _start(stored[p.id], p)]
        assert p.effective is not None
        added, changed = changed_terms(rows, p.effective, new)
        inserts += added
        rewrites += changed
    table = ", ".join(f"{name} {kind}" for name, kind in _TERM_COLUMNS)
    names = ", ".join(name for name, _ in _TERM_COLUMNS)
    await conn.execute("DROP TABLE IF EXISTS pg_temp.import_terms")
    await conn.execute(
        "CREATE TEMP TABLE import_terms (id bigint, service_point_id bigint, valid_from date,"
        f" valid_to date, {table}) ON COMMIT DROP"
    )
    async with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY import_terms ({', '.join(_TERMS_ROW)}) FROM STDIN") as copy,
    ):
        for row in (*rewrites, *inserts):
            await copy.write_row([row.get(name) for name in _TERMS_ROW])
    # Rewrites first: a split row's old end makes room for the new row starting there.
    await conn.execute(
        "UPDATE service_point_terms t SET valid_to = u.valid_to,"
        f" {', '.join(f'{n} = u.{n}' for n, _ in _TERM_COLUMNS)}"
        " FROM import_terms u WHERE u.id IS NOT NULL AND t.id = u.id"
    )
    await conn.execute(
        f"INSERT INTO service_point_terms (tenant_id, service_point_id, valid_from, valid_to,"
        f" {names}) SELECT %s, service_point_id, valid_from, valid_to, {names}"
        " FROM import_terms WHERE id IS NULL",
        (tenant_id,),
    )


def _effective(point: _Changed) -> dt.date:
    assert point.effective is not None
    return point.effective


def _start(rows: Sequence[dict[str, Any]], point: _Changed) -> dt.date:
    """The start of the row in force on the point's effective date."""
    assert point.effective is not None
    started: list[dt.date] = [r["valid_from"] for r in rows if r["valid_from"] <= point.effective]
    first: dt.date = rows[0]["valid_from"]
    return max(started) if started else first


async def _existing_customers_with_new_points(conn: AsyncConnection[Any]) -> set[int]:
    cursor = await conn.execute(
        "SELECT DISTINCT customer_id FROM import_rows"
        " WHERE point_id IS NULL AND customer_id IS NOT NULL"
    )
    return {int(r[0]) for r in await cursor.fetchall()}


async def _refresh_search_text(
    conn: AsyncConnection[Any], tenant_id: int, customer_ids: set[int]
) -> None:
    """What the customers' points are found by, where it no longer matches."""
    if not customer_ids:
        return
    cursor = await conn.execute(
        "SELECT p.id, c.code, p.code, c.name, c.phones, p.address, p.street, p.ward,"
        " c.tax_code, p.search_text FROM service_points p JOIN customers c ON c.id = p.customer_id"
        " WHERE p.tenant_id = %s AND p.customer_id = ANY(%s)",
        (tenant_id, sorted(customer_ids)),
    )
    ids, texts = [], []
    for point_id, *parts, old in await cursor.fetchall():
        new = _search_text_of(parts)
        if new != old:
            ids.append(point_id)
            texts.append(new)
    if ids:
        await conn.execute(
            "UPDATE service_points p SET search_text = u.text"
            " FROM unnest(%s::bigint[], %s::text[]) AS u(id, text) WHERE p.id = u.id",
            (ids, texts),
        )


def _search_text_of(parts: Sequence[Any]) -> str:
    """``point_search_text`` of (customer code, point code, name, phones, address, street,
    ward, tax code)."""
    customer_code, point_code, name, phones, address, street, ward, tax_code = parts
    return point_search_text(
        customer_code=customer_code, point_code=point_code, name=name, phones=phones,
        address=address, street=street, ward=ward, tax_code=tax_code,
    )  # fmt: skip


async def _record_rejections(
    conn: AsyncConnection[Any], import_id: int, rejections: Sequence[Rejection]
) -> None:
    seen: set[tuple[int, str]] = set()
    async with conn.cursor() as cursor:
        copy_sql = (
            "COPY customer_import_rejections (import_id, row_number, field, value, reason)"
            " FROM STDIN"
        )
        async with cursor.copy(copy_sql) as copy:
            for r in rejections:
                reason = r.reason
                if (r.row_number, reason) in seen:
                    reason = f"{reason} ({r.field})"
                seen.add((r.row_number, reason))
                await copy.write_row((import_id, r.row_number, r.field, r.value, reason))


# ---------------------------------------------------------------- export


_EXPORT = (
    ("customer_code", "c.code"),
    ("point_code", "p.code"),
    ("name", "c.name"),
    ("kind", "c.kind"),
    ("phones", "c.phones"),
    ("email", "c.email"),
    ("tax_code", "c.tax_code"),
    ("address", "p.address"),
    ("street", "p.street"),
    ("ward", "p.ward"),
    ("area_code", "a.code"),
    ("lat", "p.lat"),
    ("lon", "p.lon"),
    ("accuracy_m", "p.position_accuracy_m"),
    ("so_khau", "p.so_khau"),
    ("weight_kg_per_month", "p.weight_kg_per_month"),
    ("volume_m3_per_month", "p.volume_m3_per_month"),
    ("container_lifts_per_month", "p.container_lifts_per_month"),
    ("contract_price_vnd", "p.contract_price_vnd"),
    ("services", "p.services"),
    ("customer_class", "p.customer_class"),
    ("category", "p.category"),
    ("billing_period", "c.billing_period"),
    ("collector", "collector.code"),
    ("cashier", "cashier.code"),
    ("route_code", "p.route_code"),
    ("status", "p.status"),
    (
        "valid_from",
        "coalesce((SELECT min(t.valid_from) FROM service_point_terms t"
        " WHERE t.service_point_id = p.id), p.status_from)",
    ),
)


async def export_rows(
    conn: AsyncConnection[Any], tenant_id: int, *, batch_rows: int = 5_000
) -> AsyncIterator[dict[str, Any]]:
    """Every service point of the company as a spreadsheet row (column key -> value), by
    customer and point code: what ``customers.spreadsheets`` writes, and what imports back
    as unchanged. Billing terms are those in force today (the points' columns)."""
    query = (
        f"SELECT {', '.join(sql for _, sql in _EXPORT)}"
        " FROM service_points p JOIN customers c ON c.id = p.customer_id"
        " LEFT JOIN areas a ON a.id = p.area_id"
        " LEFT JOIN staff collector ON collector.id = p.collector_staff_id"
        " LEFT JOIN staff cashier ON cashier.id = p.cashier_staff_id"
        " WHERE p.tenant_id = %s ORDER BY c.code, p.code"
    )
    keys = [key for key, _ in _EXPORT]
    async with conn.cursor(name="customers_export") as cursor:
        cursor.itersize = batch_rows
        await cursor.execute(query, (tenant_id,))
        async for row in cursor:
            yield dict(zip(keys, row, strict=True))
