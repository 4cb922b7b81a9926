"""The billing terms an import changes, written in bulk (step 4 of ``customers.importer``):
``customers.terms.change_terms_from`` for a whole chunk of points at once. Each point's
stored rows from the effective date on are changed in memory by ``changed_terms`` (the row
in force is split, later rows that carried the old value take the new one), then written
with one COPY, one UPDATE and one INSERT.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from customers.import_changes import Changed

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


async def write_terms(
    conn: AsyncConnection[Any], tenant_id: int, points: Sequence[Changed]
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


def _effective(point: Changed) -> dt.date:
    assert point.effective is not None
    return point.effective


def _start(rows: Sequence[dict[str, Any]], point: Changed) -> dt.date:
    """The start of the row in force on the point's effective date."""
    assert point.effective is not None
    started: list[dt.date] = [r["valid_from"] for r in rows if r["valid_from"] <= point.effective]
    first: dt.date = rows[0]["valid_from"]
    return max(started) if started else first
