"""What imported service points are found by (``search_text``), computed from the file
as each row is checked, and recomputed from the book where the file cannot give it: a file
without every column the text is made of, a renamed customer whose other points the file
does not list. The functions that read the chunk's rows read the ``import_rows`` table
that ``customers.importer`` stages them in.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from customers.text import fold, phone_digits

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
    """``customers.text.search_text`` with every fold remembered: an import folds 100,000s
    of rows whose names, streets, wards and addresses repeat (about three times as fast
    as ``search_text`` on them). The tests keep the two equal."""
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


def _search_text_of(parts: Sequence[Any]) -> str:
    """``point_search_text`` of (customer code, point code, name, phones, address, street,
    ward, tax code)."""
    customer_code, point_code, name, phones, address, street, ward, tax_code = parts
    return point_search_text(
        customer_code=customer_code, point_code=point_code, name=name, phones=phones,
        address=address, street=street, ward=ward, tax_code=tax_code,
    )  # fmt: skip


# The columns a point's search text is made of: with all of them, the staged text is right.
SEARCHED = frozenset({"name", "phones", "tax_code", "address", "street", "ward"})


async def search_texts(conn: AsyncConnection[Any], ids: Sequence[int]) -> list[str]:
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


async def existing_customers_with_new_points(conn: AsyncConnection[Any]) -> set[int]:
    cursor = await conn.execute(
        "SELECT DISTINCT customer_id FROM import_rows"
        " WHERE point_id IS NULL AND customer_id IS NOT NULL"
    )
    return {int(r[0]) for r in await cursor.fetchall()}


async def refresh_search_text(
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
