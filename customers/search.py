"""Finding service points: the office's search box.

Search folds the query like the stored ``search_text`` (no diacritics, no case). Its words
must be words of the point (the last one may be the start of a word: it may be half typed)
and go to the word index, where a common word ("nguyen", a third of the book) is skipped
through rather than read; digits of a phone number match anywhere, through trigrams.
Results come in code order, so a broad query walks the code index and stops at the page's
end, and a narrow one goes through the indexes: PostgreSQL picks from its statistics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import QueryCanceled

from customers.models import CustomerKind, ServicePoint, Status
from customers.service import SELECT_POINTS, point_from_row
from customers.text import is_phone_digits, search_terms, word_query


@dataclass(frozen=True, slots=True)
class PointFilter:
    area_id: int | None = None
    customer_class: str | None = None
    status: Status | None = None
    kind: CustomerKind | None = None
    collector_staff_id: int | None = None

    def where(self, params: dict[str, Any]) -> list[str]:
        clauses = []
        for name, column in (
            ("area_id", "p.area_id"),
            ("customer_class", "p.customer_class"),
            ("status", "p.status"),
            ("kind", "c.kind"),
            ("collector_staff_id", "p.collector_staff_id"),
        ):
            value = getattr(self, name)
            if value is not None:
                params[name] = str(value) if name in ("status", "kind") else value
                clauses.append(f"{column} = %({name})s")
        return clauses


async def search_points(
    conn: AsyncConnection[Any],
    tenant_id: int,
    query: str = "",
    *,
    filters: PointFilter | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ServicePoint]:
    """Points whose name, codes, phones, tax code or address hold every word of ``query``
    (diacritics and case ignored): whole words, the last one as a prefix, 4+ digits
    anywhere (a phone's last digits); in code order."""
    params: dict[str, Any] = {"tenant": tenant_id, "limit": limit, "offset": offset}
    where = ["p.tenant_id = %(tenant)s", *(filters or PointFilter()).where(params)]
    terms = list(dict.fromkeys(search_terms(query)))[:8]  # "Thuỳ Thuỷ": one word is enough
    digits = [w for w in terms if is_phone_digits(w)]
    for n, word in enumerate(digits):
        params[f"d{n}"] = f"%{word}%"  # folded: only [0-9a-z], no LIKE wildcards
        where.append(f"p.search_text LIKE %(d{n})s")
    words = word_query([w for w in terms if not is_phone_digits(w)])
    if words is not None:
        params["words"] = words
        where.append("p.search_words @@ to_tsquery('simple', %(words)s)")
    if not terms:
        return await _page(conn, where, params, "p.code")
    # Few matches: collect them through the indexes and sort them. Many: walk the code
    # index and check each point's stored words until the page is full. Left to itself, the
    # planner walks the code index for a LIMIT even when few match, and when those sit far
    # on (matches cluster: an area, a family) it reads half the book for one page; so the
    # walk gets a time limit, after which the matches are collected and sorted instead.
    if await _estimated_matches(conn, where, params) < ORDERED_SCAN_FROM_MATCHES:
        return await _page(conn, where, params, "p.code || ''")
    cursor = await conn.execute("SELECT current_setting('statement_timeout')")
    row = await cursor.fetchone()
    assert row is not None
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('statement_timeout', %s, true)", (str(ORDERED_SCAN_MAX_MS),)
            )
            found = await _page(conn, where, params, "p.code")
            await conn.execute("SELECT set_config('statement_timeout', %s, true)", (row[0],))
            return found
    except QueryCanceled:
        return await _page(conn, where, params, "p.code || ''")


# Above this many matches (the planner's estimate), a page is found by walking the code
# index and checking each point's stored words (for at most ORDERED_SCAN_MAX_MS); below
# it, by the word and trigram indexes. Measured on 1,000,000 points (bench/customers.py):
# 20,000 gave p99 56 ms, 2,000 gave 42-44 ms.
ORDERED_SCAN_FROM_MATCHES = 2_000
ORDERED_SCAN_MAX_MS = 150


async def _page(
    conn: AsyncConnection[Any], where: list[str], params: dict[str, Any], order: str
) -> list[ServicePoint]:
    cursor = await conn.execute(
        SELECT_POINTS + f" WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s",
        params,
        # Planned for these words each time: a generic plan cannot know that "96" is rare
        # and "nguyen" is in a third of the book.
        prepare=False,
    )
    return [point_from_row(row) for row in await cursor.fetchall()]


async def _estimated_matches(
    conn: AsyncConnection[Any], where: list[str], params: dict[str, Any]
) -> float:
    """How many points the planner expects to match (from its statistics: no rows read)."""
    source = "service_points p JOIN customers c ON c.id = p.customer_id"
    cursor = await conn.execute(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {source} WHERE {' AND '.join(where)}",
        params,
        prepare=False,
    )
    row = await cursor.fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return float(plan[0]["Plan"]["Plan Rows"])
