"""Finding service points: the office's search box.

Search folds the query like the stored ``search_text`` (no diacritics, no case) and asks
that every word occur in it, through the trigram index. Results come in code order, so a
broad query ("nguyen") walks the code index and stops at the page's end, and a narrow one
("0912345678") goes through the trigram index: PostgreSQL picks from its statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from customers.models import CustomerKind, ServicePoint, Status
from customers.service import SELECT_POINTS, point_from_row
from customers.text import like_pattern, search_terms


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
    """Points whose name, codes, phones, tax code or address have a word starting with each
    word of ``query`` (diacritics and case ignored; 4+ digits anywhere), in code order."""
    params: dict[str, Any] = {"tenant": tenant_id, "limit": limit, "offset": offset}
    where = ["p.tenant_id = %(tenant)s", *(filters or PointFilter()).where(params)]
    for n, word in enumerate(search_terms(query)[:8]):
        params[f"w{n}"] = like_pattern(word)  # folded: only [0-9a-z], no LIKE wildcards
        where.append(f"p.search_text LIKE %(w{n})s")
    cursor = await conn.execute(
        SELECT_POINTS + f" WHERE {' AND '.join(where)}"
        " ORDER BY p.code LIMIT %(limit)s OFFSET %(offset)s",
        params,
        # Planned for these words each time: a generic plan cannot know that "96" is rare
        # and "nguyen" is in a third of the book, and walks the whole book for the former.
        prepare=False,
    )
    return [point_from_row(row) for row in await cursor.fetchall()]
