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
    order = "p.code"
    if terms and await _estimated_matches(conn, where, params) < ORDERED_SCAN_FROM_MATCHES:
        # Few matches: collect them through the indexes and sort them. Left to itself, the
        # planner would walk the code index expecting a match every few hundred rows, and
        # when the matches sit further on (they cluster: an area, a family) it reads half
        # the book for one page.
        order = "p.code || ''"
    cursor = await conn.execute(
        SELECT_POINTS + f" WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s",
        params,
        # Planned for these words each time: a generic plan cannot know that "96" is rare
        # and "nguyen" is in a third of the book.
        prepare=False,
    )
    return [point_from_row(row) for row in await cursor.fetchall()]


# Above this many matches (the planner's estimate), a page is found by walking the code
# index and checking each point's stored words; below it, by the word and trigram indexes.
ORDERED_SCAN_FROM_MATCHES = 20_000


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
