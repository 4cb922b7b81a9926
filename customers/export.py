"""Exporting the book as a customer spreadsheet: every service point as a row of the
columns ``customers.importer`` reads, so that an export imports back as all unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from psycopg import AsyncConnection

_EXPORT = (
    ("customer_code", "c.code"),
    ("point_code", "p.code"),
    ("name", "c.name"),
    ("kind", "c.kind"),
    ("phones", "c.phones"),
    ("email", "c.email"),
    ("tax_code", "c.tax_code"),
    ("address", "p.address"),
    ("street", "p.street"),
    ("ward", "p.ward"),
    ("area_code", "a.code"),
    ("lat", "p.lat"),
    ("lon", "p.lon"),
    ("accuracy_m", "p.position_accuracy_m"),
    ("so_khau", "p.so_khau"),
    ("weight_kg_per_month", "p.weight_kg_per_month"),
    ("volume_m3_per_month", "p.volume_m3_per_month"),
    ("container_lifts_per_month", "p.container_lifts_per_month"),
    ("contract_price_vnd", "p.contract_price_vnd"),
    ("services", "p.services"),
    ("customer_class", "p.customer_class"),
    ("category", "p.category"),
    ("billing_period", "c.billing_period"),
    ("collector", "collector.code"),
    ("cashier", "cashier.code"),
    ("route_code", "p.route_code"),
    ("status", "p.status"),
    (
        "valid_from",
        "coalesce((SELECT min(t.valid_from) FROM service_point_terms t"
        " WHERE t.service_point_id = p.id), p.status_from)",
    ),
)


async def export_rows(
    conn: AsyncConnection[Any], tenant_id: int, *, batch_rows: int = 5_000
) -> AsyncIterator[dict[str, Any]]:
    """Every service point of the company as a spreadsheet row (column key -> value), by
    customer and point code: what ``customers.spreadsheets`` writes, and what imports back
    as unchanged. Billing terms are those in force today (the points' columns)."""
    query = (
        f"SELECT {', '.join(sql for _, sql in _EXPORT)}"
        " FROM service_points p JOIN customers c ON c.id = p.customer_id"
        " LEFT JOIN areas a ON a.id = p.area_id"
        " LEFT JOIN staff collector ON collector.id = p.collector_staff_id"
        " LEFT JOIN staff cashier ON cashier.id = p.cashier_staff_id"
        " WHERE p.tenant_id = %s ORDER BY c.code, p.code"
    )
    keys = [key for key, _ in _EXPORT]
    async with conn.cursor(name="customers_export") as cursor:
        cursor.itersize = batch_rows
        await cursor.execute(query, (tenant_id,))
        async for row in cursor:
            yield dict(zip(keys, row, strict=True))
