"""The dated terms a service point is billed on, and the point's "today" columns.

``service_point_terms`` holds, per point, rows ``[valid_from, valid_to)`` that never overlap
and leave no gap from the first one on. A change from a date closes the row in force at
that date and opens one with the change; later rows that carried the old value of a
changed field take the new one, and rows that had set the field themselves keep theirs
(a change already scheduled for later stays scheduled). Every change is made under the
point's row lock.

The point's own columns (status, so_khau, quantities, services...) mirror the row in force
today: written at once for a change that is already in force, and by ``sync_current`` (a
daily sweep) when a future row's day comes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from psycopg import AsyncConnection

from customers.errors import InvalidValue, NotFound
from customers.models import PointTermsFields, Service, Status, Terms

# The columns a change may set, in table order.
TERM_FIELDS = (
    "status",
    "customer_class",
    "area_group",
    "so_khau",
    "volume_m3_per_month",
    "weight_kg_per_month",
    "container_lifts_per_month",
    "contract_price_vnd",
    "services",
    "exemption_pct",
    "exemption_reason",
)
# Mirrored on service_points (area_group lives on the area; exemptions only in terms).
_MIRRORED = (
    "status",
    "customer_class",
    "so_khau",
    "volume_m3_per_month",
    "weight_kg_per_month",
    "container_lifts_per_month",
    "contract_price_vnd",
    "services",
)
_SELECT = (
    "SELECT id, service_point_id, valid_from, valid_to, "
    + ", ".join(TERM_FIELDS)
    + ", change_request_id FROM service_point_terms"
)


def _terms(row: tuple[Any, ...]) -> Terms:
    values = dict(
        zip(
            ("id", "service_point_id", "valid_from", "valid_to", *TERM_FIELDS, "change_request_id"),
            row,
            strict=True,
        )
    )
    values["services"] = tuple(Service(s) for s in values["services"])
    return Terms.model_validate(values)


def _db_value(field: str, value: Any) -> Any:
    if field == "status":
        return str(Status(value))
    if field == "services":
        return sorted({str(Service(s)) for s in value})
    return value


async def terms_of(conn: AsyncConnection[Any], tenant_id: int, point_id: int) -> list[Terms]:
    """A point's terms, oldest first."""
    cursor = await conn.execute(
        _SELECT + " WHERE tenant_id = %s AND service_point_id = %s ORDER BY valid_from",
        (tenant_id, point_id),
    )
    return [_terms(row) for row in await cursor.fetchall()]


async def open_terms(
    conn: AsyncConnection[Any],
    tenant_id: int,
    point_id: int,
    valid_from: dt.date,
    fields: PointTermsFields,
    area_group: str,
) -> None:
    """The first terms of a new point, from ``valid_from`` until further notice."""
    values = fields.model_dump()
    values["area_group"] = area_group
    await conn.execute(
        "INSERT INTO service_point_terms (tenant_id, service_point_id, valid_from, "
        + ", ".join(TERM_FIELDS)
        + ") VALUES (%s, %s, %s, "
        + ", ".join(["%s"] * len(TERM_FIELDS))
        + ")",
        (tenant_id, point_id, valid_from, *(_db_value(f, values[f]) for f in TERM_FIELDS)),
    )


async def change_terms_from(
    conn: AsyncConnection[Any],
    tenant_id: int,
    point_id: int,
    effective: dt.date,
    changes: Mapping[str, Any],
    *,
    today: dt.date,
    change_request_id: int | None = None,
) -> bool:
    """Apply ``changes`` (term field -> new value) from ``effective`` on; True when anything
    changed. Raises InvalidValue for an unknown field or a date before the point's first
    terms."""
    unknown = sorted(set(changes) - set(TERM_FIELDS))
    if unknown:
        raise InvalidValue(f"{unknown[0]}: not a billing term (one of {', '.join(TERM_FIELDS)})")
    if not changes:
        return False
    locked = await conn.execute(
        "SELECT id FROM service_points WHERE tenant_id = %s AND id = %s FOR UPDATE",
        (tenant_id, point_id),
    )
    if await locked.fetchone() is None:
        raise NotFound(f"service point {point_id} not found")
    rows = await terms_of(conn, tenant_id, point_id)
    if not rows or effective < rows[0].valid_from:
        first = rows[0].valid_from.isoformat() if rows else "none"
        raise InvalidValue(
            f"effective_date: {effective.isoformat()} is before the point's first terms ({first})"
        )
    new = {f: _db_value(f, v) for f, v in changes.items()}
    current = next(r for r in reversed(rows) if r.valid_from <= effective)
    before = {f: _db_value(f, getattr(current, f)) for f in new}
    if before == new:
        return False
    if current.valid_from < effective:
        # Split: the row in force keeps the days before the change.
        await conn.execute(
            "UPDATE service_point_terms SET valid_to = %s WHERE id = %s", (effective, current.id)
        )
        copied = {f: _db_value(f, getattr(current, f)) for f in TERM_FIELDS}
        await conn.execute(
            "INSERT INTO service_point_terms (tenant_id, service_point_id, valid_from, valid_to,"
            " change_request_id, "
            + ", ".join(TERM_FIELDS)
            + ") VALUES (%s, %s, %s, %s, %s, "
            + ", ".join(["%s"] * len(TERM_FIELDS))
            + ")",
            (tenant_id, point_id, effective, current.valid_to, change_request_id, *copied.values()),
        )
        rows = await terms_of(conn, tenant_id, point_id)
    # From the row starting at `effective` on, each changed field takes its new value until a
    # row that had set that field itself.
    following = [r for r in rows if r.valid_from >= effective]
    for field, value in new.items():
        for row in following:
            if _db_value(field, getattr(row, field)) != before[field]:
                break
            await conn.execute(
                f"UPDATE service_point_terms SET {field} = %s,"
                " change_request_id = coalesce(%s, change_request_id) WHERE id = %s",
                (value, change_request_id if row.valid_from == effective else None, row.id),
            )
    if effective <= today:
        await sync_current(conn, tenant_id, today, point_ids=[point_id])
    return True


async def sync_current(
    conn: AsyncConnection[Any],
    tenant_id: int,
    today: dt.date,
    *,
    point_ids: Sequence[int] | None = None,
) -> int:
    """Copy the terms in force ``today`` onto their points where they differ; how many
    points changed. The daily sweep runs it for every point."""
    columns = ", ".join(f"{c} = t.{c}" for c in _MIRRORED)
    differs = " OR ".join(f"p.{c} IS DISTINCT FROM t.{c}" for c in _MIRRORED)
    only = " AND p.id = ANY(%(ids)s)" if point_ids is not None else ""
    cursor = await conn.execute(
        f"UPDATE service_points p SET {columns},"
        " status_from = CASE WHEN p.status IS DISTINCT FROM t.status THEN t.valid_from"
        " ELSE p.status_from END, revision = p.revision + 1, updated_at = now()"
        " FROM service_point_terms t"
        " WHERE t.service_point_id = p.id AND t.tenant_id = %(tenant)s"
        " AND t.valid_from <= %(today)s AND (t.valid_to IS NULL OR t.valid_to > %(today)s)"
        f" AND p.tenant_id = %(tenant)s{only} AND ({differs})",
        {"tenant": tenant_id, "today": today, "ids": list(point_ids or [])},
    )
    return cursor.rowcount


async def count_period_points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    start: dt.date,
    end: dt.date,
    *,
    point_ids: Sequence[int] | None = None,
    billing_period: str | None = None,
) -> int:
    """How many points ``period_terms`` yields for the same arguments (for progress)."""
    cursor = await conn.execute(
        "SELECT count(DISTINCT t.service_point_id) FROM service_point_terms t"
        " JOIN service_points p ON p.id = t.service_point_id"
        " JOIN customers c ON c.id = p.customer_id"
        " WHERE t.tenant_id = %(tenant)s AND t.valid_from < %(end)s"
        " AND (t.valid_to IS NULL OR t.valid_to > %(start)s)"
        " AND (%(all)s OR t.service_point_id = ANY(%(ids)s))"
        " AND (%(period)s::text IS NULL OR c.billing_period = %(period)s)",
        {
            "tenant": tenant_id,
            "start": start,
            "end": end,
            "all": point_ids is None,
            "ids": list(point_ids or []),
            "period": billing_period,
        },
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


class TermsPiece(NamedTuple):
    """One terms row clipped to a period, with the customer's billing period: what the
    charge computation reads for 1,000,000 points, so a plain tuple."""

    service_point_id: int
    customer_id: int
    billing_period: str
    valid_from: dt.date  # clipped to the period's start
    valid_to: dt.date  # clipped to the period's end (exclusive)
    status: str
    customer_class: str
    area_group: str
    so_khau: int | None
    volume_m3_per_month: Decimal | None
    weight_kg_per_month: Decimal | None
    container_lifts_per_month: int | None
    contract_price_vnd: int | None
    services: list[str]
    exemption_pct: int


async def period_terms(
    conn: AsyncConnection[Any],
    tenant_id: int,
    start: dt.date,
    end: dt.date,
    *,
    point_ids: Sequence[int] | None = None,
    billing_period: str | None = None,
    batch_rows: int = 20_000,
) -> AsyncIterator[list[TermsPiece]]:
    """The terms rows overlapping ``[start, end)``, clipped to it, in batches ordered by
    point then date (a point's rows never straddle two batches)."""
    where = [
        "t.tenant_id = %(tenant)s",
        "t.valid_from < %(end)s",
        "(t.valid_to IS NULL OR t.valid_to > %(start)s)",
    ]
    if point_ids is not None:
        where.append("t.service_point_id = ANY(%(ids)s)")
    if billing_period is not None:
        where.append("c.billing_period = %(period)s")
    query = (
        "SELECT t.service_point_id, p.customer_id, c.billing_period,"
        " greatest(t.valid_from, %(start)s), least(coalesce(t.valid_to, %(end)s), %(end)s),"
        " t.status, t.customer_class, t.area_group, t.so_khau, t.volume_m3_per_month,"
        " t.weight_kg_per_month, t.container_lifts_per_month, t.contract_price_vnd, t.services,"
        " t.exemption_pct"
        " FROM service_point_terms t JOIN service_points p ON p.id = t.service_point_id"
        " JOIN customers c ON c.id = p.customer_id"
        f" WHERE {' AND '.join(where)} ORDER BY t.service_point_id, t.valid_from"
    )
    params = {
        "tenant": tenant_id,
        "start": start,
        "end": end,
        "ids": list(point_ids or []),
        "period": billing_period,
    }
    batch: list[TermsPiece] = []
    async with conn.cursor(name="period_terms") as cursor:
        cursor.itersize = batch_rows
        await cursor.execute(query, params)
        async for row in cursor:
            piece = TermsPiece(*row)
            if len(batch) >= batch_rows and batch[-1].service_point_id != piece.service_point_id:
                yield batch
                batch = []
            batch.append(piece)
    if batch:
        yield batch
