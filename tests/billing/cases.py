"""Tariffs and terms of the domain's examples, written by hand for the billing tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import billing
from customers.terms import TermsPiece

D = dt.date
JUNE_START, JULY_START = D(2026, 6, 1), D(2026, 7, 1)
LONG_AGO = D(2020, 1, 1)

HANOI_URBAN = {"basis": "per_person", "price_per_person_vnd": 6_000}
HANOI_RURAL = {"basis": "per_person", "price_per_person_vnd": 3_000}
HANOI_DRAFT = {"basis": "per_person", "price_per_person_vnd": 21_000}
HCMC_2025: dict[str, Any] = {
    "basis": "weight_band",
    "bands": [
        {"up_to_kg": 126, "prices": {"collection": 61_000, "transport": 23_000}},
        {"up_to_kg": 250, "prices": {"collection": 91_000, "transport": 34_000}},
        {"up_to_kg": 420, "prices": {"collection": 163_000, "transport": 60_000}},
    ],
    "above_per_kg": {"collection": 485, "transport": 180},
    "unweighed_band": 0,
}
HANOI_BUSINESS = {
    "basis": "flat_up_to_threshold_then_per_unit",
    "unit": "m3",
    "threshold": 1,
    "flat_price_vnd": 130_000,
    "price_per_unit_vnd": 208_000,
    "per_unit_applies_to": "total",
}
HAI_PHONG = {"basis": "per_household_flat", "price_vnd": 40_000}


def piece(
    valid_from: dt.date = JUNE_START,
    valid_to: dt.date = JULY_START,
    *,
    point: int = 1,
    customer: int | None = None,
    status: str = "active",
    customer_class: str = "household",
    area_group: str = "urban",
    so_khau: int | None = None,
    volume: Decimal | None = None,
    weight: Decimal | None = None,
    lifts: int | None = None,
    contract: int | None = None,
    services: Sequence[str] = ("collection",),
    exemption: int = 0,
    billing_period: str = "monthly",
) -> TermsPiece:
    return TermsPiece(
        point,
        customer if customer is not None else 100 + point,
        billing_period,
        valid_from,
        valid_to,
        status,
        customer_class,
        area_group,
        so_khau,
        volume,
        weight,
        lifts,
        contract,
        list(services),
        exemption,
    )


def version(
    version_id: int,
    params: dict[str, Any],
    *,
    area_group: str = "urban",
    customer_class: str = "household",
    service: str = "collection",
    valid_from: dt.date = LONG_AGO,
    valid_to: dt.date | None = None,
    vat_rate: str = "KCT",
) -> billing.TariffVersion:
    return billing.TariffVersion.model_validate(
        {
            "id": version_id,
            "code": f"T{version_id}",
            "name": f"Tariff {version_id}",
            "legal_basis": "test",
            "area_group": area_group,
            "customer_class": customer_class,
            "service": service,
            "params": params,
            "vat_rate": vat_rate,
            "valid_from": valid_from,
            "valid_to": valid_to,
        }
    )
