"""Importing a customer spreadsheet into the book.

The flow, in order:

1. **validate** each row on its own (``customers.import_validation``): a bad row is
   rejected with its row number, field, value and reason; the good ones go on. Codes of
   areas and staff are looked up; a point code seen before in the file rejects the later
   row; the rows of one customer must agree on the customer's own fields.
2. **stage** the good rows in a temporary table (COPY) and match them to the stored
   customers and points; a point stored under another customer rejects its row.
3. **compare** each matched row with what is stored (``customers.import_changes``): the
   point's place and people with its columns, its billing terms with the terms in force on
   the effective date. Only columns the file has are compared and written; a column it
   lacks is left as it is.
4. **write** set-based: new customers, points and their first terms; changed customers;
   changed terms from the effective date (``customers.import_terms``, with
   ``customers.terms`` semantics: the row in force is split, later rows that carried the
   old value take the new one); changed points, their columns synced to the terms in force
   today; what the points are found by (``customers.import_search``).
5. **audit** every created or changed customer and point, and record the import with its
   rejections.

Steps 2-5 run per chunk of ``CHUNK_ROWS`` good rows while the next chunk is validated, so
PostgreSQL writes on one core while Python reads on the other (100,000 new rows from a CSV:
about 25 s on two cores). Re-importing a file changes nothing (every row
counts as unchanged). Everything happens in the caller's transaction, under a per-company
lock so two imports do not interleave.

Exporting is ``customers.export`` (``export_rows``): every point as a row of the same
columns, so that an export imports back as all unchanged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

import audit

# The names imported ``as`` themselves are this module's too: the CLI, the benchmarks and
# the tests import them from here.
from customers.export import export_rows as export_rows
from customers.import_changes import PLACE_FIELDS as PLACE_FIELDS
from customers.import_changes import TERM_FIELDS as TERM_FIELDS
from customers.import_changes import (
    create_new,
    customer_changes,
    point_changes,
    update_customers,
    update_points,
)
from customers.import_search import (
    SEARCHED,
    existing_customers_with_new_points,
    refresh_search_text,
)
from customers.import_search import point_search_text as point_search_text
from customers.import_terms import changed_terms as changed_terms
from customers.import_terms import write_terms
from customers.import_validation import CUSTOMER_FIELDS as CUSTOMER_FIELDS
from customers.import_validation import STAGE, STAGE_NAMES, Validator
from customers.import_validation import ImportRow as ImportRow
from customers.import_validation import Rejection as Rejection
from customers.spreadsheets import HEADERS, Format, Sheet

Progress = Callable[[int, int], None]


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
    validator = Validator(columns, await _areas(conn, tenant_id), await _staff(conn, tenant_id))
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
    sheet: Sheet, validator: Validator, rejections: list[Rejection], step: _Progress
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
        customers = await customer_changes(conn, columns)
        points = await point_changes(conn, columns, self.effective)
        changes = await create_new(conn, tenant_id, self.effective)
        await update_customers(conn, columns, self.now, customers)
        await write_terms(conn, tenant_id, [p for p in points if p.terms_changed])
        await update_points(conn, columns, self.now, self.now.date(), points)
        # What points are found by: the staged text is right when the file has every column
        # of it; the points of a renamed customer that this chunk does not list, and new
        # points of a stored customer when the file lacks its name, phones or tax code, are
        # recomputed.
        refresh = {c.id for c in customers if c.changed.keys() & {"name", "phones", "tax_code"}}
        if not columns >= SEARCHED:
            refresh |= await existing_customers_with_new_points(conn)
        await refresh_search_text(conn, tenant_id, refresh)
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
        + ", ".join(f"{name} {kind}" for name, kind in STAGE)
        + ") ON COMMIT DROP"
    )
    copy_sql = f"COPY import_raw ({', '.join(STAGE_NAMES)}) FROM STDIN"
    async with conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in staged:
            await copy.write_row(row)


async def _match(
    conn: AsyncConnection[Any], tenant_id: int, columns: frozenset[str]
) -> list[Rejection]:
    """``import_rows``: the staged rows with their stored customer and point, if any; rows
    that cannot be written are rejected and dropped."""
    select = ", ".join(f"r.{name}" for name in STAGE_NAMES if name != "customer_class")
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
