"""Invoice series: the only code that writes ``invoice_series``.

A series is a template digit and a six-character symbol carrying the year (1C26TAA).
Numbers are given out by ``take_numbers`` under a lock on the series row, in the issuing
transaction: no gaps (a rolled-back issue gives its numbers back with it), no duplicates.
A used series cannot be edited, only retired; the first issue in a new year moves to the
next year's series (1C27TAA), made on the spot.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from psycopg import AsyncConnection, errors
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

import audit
from billing.errors import Conflict, InvalidValue, NotFound
from billing.invoice_models import Series, Template

MAX_NUMBER = 99_999_999
SYMBOL = re.compile(r"^[CK][0-9]{2}[TDLMNBGH][A-Z]{2}$")
_COLUMNS = (
    "id, template, symbol, year, name, next_number, last_issued_at, active, rolled_from_id,"
    " created_at"
)

Symbol = Annotated[str, StringConstraints(pattern=SYMBOL.pattern)]


class NewSeries(BaseModel):
    """``symbol``: C (with the tax authority's code) or K (without), the year's last two
    digits, the kind letter (T: registered by an enterprise) and two letters the seller
    chooses, e.g. C26TAA."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: Template = Template.VAT_INVOICE
    symbol: Symbol
    name: str = Field(default="", max_length=200)

    @property
    def year(self) -> int:
        return 2000 + int(self.symbol[1:3])


class SeriesChanges(BaseModel):
    """What may change. template, symbol and name only while nothing was issued on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: Template | None = None
    symbol: Symbol | None = None
    name: str | None = Field(default=None, max_length=200)
    active: bool | None = None


def _series(row: tuple[Any, ...]) -> Series:
    return Series(*row)


def _audited(series: Series) -> dict[str, Any]:
    return {
        "template": series.template,
        "symbol": series.symbol,
        "year": series.year,
        "name": series.name,
        "active": series.active,
        "next_number": series.next_number,
    }


async def get_series(
    conn: AsyncConnection[Any], tenant_id: int, series_id: int, *, for_update: bool = False
) -> Series:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM invoice_series WHERE tenant_id = %s AND id = %s"
        + (" FOR UPDATE" if for_update else ""),
        (tenant_id, series_id),
    )
    row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"invoice series {series_id} does not exist")
    return _series(row)


async def list_series(conn: AsyncConnection[Any], tenant_id: int) -> list[Series]:
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM invoice_series WHERE tenant_id = %s"
        " ORDER BY year DESC, template, symbol",
        (tenant_id,),
    )
    return [_series(row) for row in await cursor.fetchall()]


async def _insert(
    conn: AsyncConnection[Any],
    tenant_id: int,
    now: dt.datetime,
    template: str,
    symbol: str,
    name: str,
    *,
    created_by: int | None,
    rolled_from: int | None = None,
) -> Series:
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO invoice_series (tenant_id, template, symbol, year, name,"
                " rolled_from_id, created_by, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (
                    tenant_id,
                    template,
                    symbol,
                    2000 + int(symbol[1:3]),
                    name,
                    rolled_from,
                    created_by,
                    now,
                ),
            )
    except errors.UniqueViolation as exc:
        raise Conflict(f"symbol: series {template}{symbol} already exists") from exc
    row = await cursor.fetchone()
    assert row is not None
    return _series(row)


async def create_series(
    conn: AsyncConnection[Any], tenant_id: int, actor: audit.Actor, now: dt.datetime, new: NewSeries
) -> Series:
    series = await _insert(
        conn, tenant_id, now, new.template, new.symbol, new.name, created_by=actor.user_id
    )
    await audit.record(
        conn,
        tenant_id,
        actor,
        now,
        audit.Change("invoice_series", series.id, "create", None, _audited(series)),
    )
    return series


async def update_series(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    now: dt.datetime,
    series_id: int,
    changes: SeriesChanges,
) -> Series:
    """Change a series. Conflict when it is used and the change touches its template,
    symbol or name: what was issued on it must keep meaning what it meant."""
    before = await get_series(conn, tenant_id, series_id, for_update=True)
    identity = {
        field: value
        for field, value in (
            ("template", changes.template),
            ("symbol", changes.symbol),
            ("name", changes.name),
        )
        if value is not None and value != getattr(before, field)
    }
    if identity and before.used:
        raise Conflict(
            f"{next(iter(identity))}: series {before.code} is used"
            f" ({before.next_number - 1} invoices issued) and cannot be edited;"
            " retire it and create a new series"
        )
    template = identity.get("template", before.template)
    symbol = identity.get("symbol", before.symbol)
    active = before.active if changes.active is None else changes.active
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "UPDATE invoice_series SET template = %s, symbol = %s, year = %s, name = %s,"
                f" active = %s WHERE id = %s RETURNING {_COLUMNS}",
                (
                    template,
                    symbol,
                    2000 + int(symbol[1:3]),
                    identity.get("name", before.name),
                    active,
                    series_id,
                ),
            )
    except errors.UniqueViolation as exc:
        raise Conflict(f"symbol: series {template}{symbol} already exists") from exc
    row = await cursor.fetchone()
    assert row is not None
    after = _series(row)
    await audit.record(
        conn,
        tenant_id,
        actor,
        now,
        audit.Change("invoice_series", series_id, "update", _audited(before), _audited(after)),
    )
    return after


async def _series_for_year(
    conn: AsyncConnection[Any], tenant_id: int, series: Series, year: int, now: dt.datetime
) -> Series:
    """The series that continues ``series`` in ``year``, locked; made when missing."""
    if year < series.year:
        raise InvalidValue(
            f"issue_date: the year {year} is before series {series.code}'s year {series.year}"
        )
    if year == series.year:
        return series
    if year > 2099:
        raise InvalidValue(f"issue_date: the year {year} is beyond what a symbol can carry")
    symbol = f"{series.symbol[0]}{year % 100:02d}{series.symbol[3:]}"
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM invoice_series WHERE tenant_id = %s AND template = %s"
        " AND symbol = %s FOR UPDATE",
        (tenant_id, series.template, symbol),
    )
    row = await cursor.fetchone()
    if row is not None:
        return _series(row)
    await conn.execute(
        "INSERT INTO invoice_series (tenant_id, template, symbol, year, name, rolled_from_id,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant_id, series.template, symbol, year, series.name, series.id, now),
    )
    cursor = await conn.execute(
        f"SELECT {_COLUMNS} FROM invoice_series WHERE tenant_id = %s AND template = %s"
        " AND symbol = %s FOR UPDATE",
        (tenant_id, series.template, symbol),
    )
    row = await cursor.fetchone()
    assert row is not None
    return _series(row)


async def take_numbers(
    conn: AsyncConnection[Any],
    tenant_id: int,
    series_id: int,
    count: int,
    issue_date: dt.date,
    now: dt.datetime,
) -> tuple[Series, int, dt.datetime]:
    """Lock the series (or, in a later year, its successor) and take ``count`` numbers:
    the series they come from, the first number and the issue time to stamp them with
    (never before the series' last issue, so numbers ascend with issue time). The caller's
    transaction holds the lock until it commits or rolls back."""
    series = await get_series(conn, tenant_id, series_id, for_update=True)
    series = await _series_for_year(conn, tenant_id, series, issue_date.year, now)
    if not series.active:
        raise Conflict(f"series_id: series {series.code} is retired")
    first = series.next_number
    if first + count - 1 > MAX_NUMBER:
        raise Conflict(
            f"series_id: series {series.code} has {MAX_NUMBER - first + 1} numbers left,"
            f" {count} asked for"
        )
    issued_at = max(now, series.last_issued_at) if series.last_issued_at else now
    await conn.execute(
        "UPDATE invoice_series SET next_number = %s, last_issued_at = %s WHERE id = %s",
        (first + count, issued_at, series.id),
    )
    return series, first, issued_at
