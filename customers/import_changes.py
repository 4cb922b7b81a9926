"""Steps 3 and 4 of ``customers.importer``, on one chunk staged in ``import_rows``: each
matched row **compared** with what is stored (the point's place and people with its
columns, its billing terms with the terms in force on the effective date; only columns the
file has), and the book **written** set-based: new customers, points and their first terms;
changed customers; changed points, their columns synced to the terms in force today. The
changed terms themselves are written by ``customers.import_terms``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

import audit
from customers.import_search import SEARCHED, search_texts
from customers.import_validation import CUSTOMER_FIELDS

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
# The billing terms a row carries (columns of service_points and of service_point_terms)
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


@dataclass
class Changed:
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


async def customer_changes(conn: AsyncConnection[Any], columns: frozenset[str]) -> list[Changed]:
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
            changes.append(Changed("customer", int(row[0]), int(row[0]), changed))
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


async def point_changes(
    conn: AsyncConnection[Any], columns: frozenset[str], effective: dt.date
) -> list[Changed]:
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
            Changed(
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


async def create_new(
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


async def update_customers(
    conn: AsyncConnection[Any],
    columns: frozenset[str],
    now: dt.datetime,
    customers: Sequence[Changed],
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


async def update_points(
    conn: AsyncConnection[Any],
    columns: frozenset[str],
    now: dt.datetime,
    today: dt.date,
    points: Sequence[Changed],
) -> None:
    """One UPDATE per chunk: the file's place and people, the terms in force today (the
    ``customers.terms.sync_current`` mirror; for a point whose terms have not started, its
    first ones, as when it was created), the planner's daily estimates and the search text,
    on every changed point. Runs after ``customers.import_terms.write_terms``: the terms in
    force today may be the ones the file has just changed."""
    if not points:
        return
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
    if columns >= SEARCHED:  # the staged text is the point's
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
            "texts": [] if columns >= SEARCHED else await search_texts(conn, ids),
        },
    )
