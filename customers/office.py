"""Office utilities: moving customers between areas or collectors in bulk, and the order of
a collector's book (the order the collector walks and the printed book lists)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

import audit
from customers import terms
from customers.errors import InvalidValue
from customers.models import ServicePoint
from customers.service import SELECT_POINTS, get_area, point_from_row, require_staff

MAX_BULK = 100_000


async def move_points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    point_ids: Sequence[int],
    *,
    area_id: int | None = None,
    collector_staff_id: int | None = None,
    cashier_staff_id: int | None = None,
    today: dt.date | None = None,
) -> int:
    """Move points to another area and/or collector and/or cashier; how many changed.

    Every point must belong to the tenant (else nothing moves). A new area whose tariff
    group differs changes the points' terms from ``today`` (the company's date; default: the
    date of ``at``). A point moved to another collector
    goes to the end of that collector's book. One audit entry per point.
    """
    if area_id is None and collector_staff_id is None and cashier_staff_id is None:
        raise InvalidValue("area_id: say where to move the points (area, collector or cashier)")
    ids = sorted(set(point_ids))
    if not ids or len(ids) > MAX_BULK:
        raise InvalidValue(f"point_ids: between 1 and {MAX_BULK} points")
    group = (await get_area(conn, tenant_id, area_id)).area_group if area_id else None
    for staff_id in (collector_staff_id, cashier_staff_id):
        if staff_id is not None:
            await require_staff(conn, tenant_id, "staff_id", staff_id)
    cursor = await conn.execute(
        "SELECT id, customer_id, area_id, collector_staff_id, cashier_staff_id, book_order"
        " FROM service_points WHERE tenant_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE",
        (tenant_id, ids),
    )
    rows = await cursor.fetchall()
    if len(rows) != len(ids):
        missing = sorted(set(ids) - {r[0] for r in rows})
        raise InvalidValue(f"point_ids: no service point {missing[0]} in this company")
    wanted = {
        "area_id": area_id,
        "collector_staff_id": collector_staff_id,
        "cashier_staff_id": cashier_staff_id,
    }
    wanted = {k: v for k, v in wanted.items() if v is not None}
    changes: list[audit.Change] = []
    moved_area: list[int] = []
    for point_id, customer_id, old_area, old_collector, old_cashier, _ in rows:
        old = {
            "area_id": old_area,
            "collector_staff_id": old_collector,
            "cashier_staff_id": old_cashier,
        }
        diff = {k: v for k, v in wanted.items() if old[k] != v}
        if not diff:
            continue
        if "area_id" in diff:
            moved_area.append(point_id)
        changes.append(
            audit.Change(
                "service_point", point_id, "move", {k: old[k] for k in diff}, diff, customer_id
            )
        )
    changed_ids = [c.entity_id for c in changes]
    if not changed_ids:
        return 0
    assignments = ", ".join(f"{k} = %({k})s" for k in wanted)
    await conn.execute(
        f"UPDATE service_points SET {assignments},"
        " book_order = CASE WHEN %(collector_staff_id)s::bigint IS NOT NULL"
        "   AND collector_staff_id IS DISTINCT FROM %(collector_staff_id)s::bigint"
        "   THEN NULL ELSE book_order END,"
        " revision = revision + 1, updated_at = %(at)s WHERE id = ANY(%(ids)s)",
        {**wanted, "collector_staff_id": collector_staff_id, "at": at, "ids": changed_ids},
    )
    if group is not None:
        for point_id in moved_area:
            await terms.change_terms_from(
                conn,
                tenant_id,
                point_id,
                today or at.date(),
                {"area_group": group},
                today=today or at.date(),
            )
    await audit.record_many(conn, tenant_id, actor, at, changes)
    return len(changed_ids)


async def set_book_order(
    conn: AsyncConnection[Any],
    tenant_id: int,
    actor: audit.Actor,
    at: dt.datetime,
    collector_staff_id: int,
    point_ids: Sequence[int],
) -> None:
    """Number the collector's points 1, 2, 3... in the order given; every point of the
    collector's book must be listed exactly once."""
    await require_staff(conn, tenant_id, "staff_id", collector_staff_id)
    if len(set(point_ids)) != len(point_ids):
        raise InvalidValue("point_ids: a point is listed twice")
    cursor = await conn.execute(
        "SELECT id, book_order, customer_id FROM service_points"
        " WHERE tenant_id = %s AND collector_staff_id = %s ORDER BY id FOR UPDATE",
        (tenant_id, collector_staff_id),
    )
    current = {int(r[0]): (r[1], r[2]) for r in await cursor.fetchall()}
    if set(point_ids) != set(current):
        extra = sorted(set(point_ids) - set(current))
        missing = sorted(set(current) - set(point_ids))
        reason = (
            f"service point {extra[0]} is not in this collector's book"
            if extra
            else f"service point {missing[0]} of this collector's book is not listed"
        )
        raise InvalidValue(f"point_ids: {reason}")
    await conn.execute(
        "UPDATE service_points p SET book_order = o.n, updated_at = %s"
        " FROM unnest(%s::bigint[]) WITH ORDINALITY AS o(id, n)"
        " WHERE p.id = o.id AND p.book_order IS DISTINCT FROM o.n",
        (at, list(point_ids)),
    )
    await audit.record(
        conn,
        tenant_id,
        actor,
        at,
        audit.Change(
            "collector_book",
            collector_staff_id,
            "reorder",
            {"order": [pid for pid, _ in sorted(current.items(), key=_book_key)]},
            {"order": list(point_ids)},
        ),
    )


def _book_key(item: tuple[int, tuple[int | None, int]]) -> tuple[int, int]:
    point_id, (order, _) = item
    return (order if order is not None else 2**31, point_id)


async def collector_book(
    conn: AsyncConnection[Any], tenant_id: int, collector_staff_id: int
) -> list[ServicePoint]:
    """The collector's points in book order (unordered ones last, by address)."""
    cursor = await conn.execute(
        SELECT_POINTS + " WHERE p.tenant_id = %s AND p.collector_staff_id = %s"
        " ORDER BY p.book_order NULLS LAST, p.street, p.address, p.code",
        (tenant_id, collector_staff_id),
    )
    return [point_from_row(row) for row in await cursor.fetchall()]
