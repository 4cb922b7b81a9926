"""Hà Nội's published sanitation fees (domain-billing.md's examples), as tariff versions
for the demo and the benchmarks. A company enters its own through the API; these only
make a fresh system bill something true to life.

Households pay per registered resident (6,000 VND a month in urban wards, 3,000 in rural
communes); business households, shops and restaurants 130,000 a month up to 1 m³, above
that 208,000 per m³; agencies the same. VAT is a setting for a tax adviser to decide: the
samples use "KCT" (not subject), which the office changes with a new version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from billing.tariffs import NewTariffVersion

HANOI_LEGAL_BASIS = "Nghị quyết HĐND TP Hà Nội về giá dịch vụ thu gom, vận chuyển rác thải"

_PER_PERSON_URBAN: dict[str, Any] = {"basis": "per_person", "price_per_person_vnd": 6_000}
_PER_PERSON_RURAL: dict[str, Any] = {"basis": "per_person", "price_per_person_vnd": 3_000}
_BY_VOLUME: dict[str, Any] = {
    "basis": "flat_up_to_threshold_then_per_unit",
    "unit": "m3",
    "threshold": 1,
    "flat_price_vnd": 130_000,
    "price_per_unit_vnd": 208_000,
    "per_unit_applies_to": "total",
}


def hanoi_tariffs(valid_from: dt.date, classes: tuple[str, ...] = ()) -> list[NewTariffVersion]:
    """Collection tariffs for households and for ``classes`` of businesses (besides
    business_household, business, agency and restaurant), urban and rural."""
    versions = []
    for group in ("urban", "rural"):
        versions.append(
            NewTariffVersion.model_validate(
                {
                    "code": f"HN-{group.upper()}-HOUSEHOLD",
                    "name": f"Hộ gia đình ({'nội thành' if group == 'urban' else 'ngoại thành'})",
                    "legal_basis": HANOI_LEGAL_BASIS,
                    "area_group": group,
                    "customer_class": "household",
                    "service": "collection",
                    "params": _PER_PERSON_URBAN if group == "urban" else _PER_PERSON_RURAL,
                    "vat_rate": "KCT",
                    "valid_from": valid_from,
                }
            )
        )
        for customer_class in (
            "business_household", "business", "agency", "restaurant", *classes,
        ):  # fmt: skip
            versions.append(
                NewTariffVersion.model_validate(
                    {
                        "code": f"HN-{group.upper()}-{customer_class.upper()}"[:40],
                        "name": f"Kinh doanh, dịch vụ: {customer_class}",
                        "legal_basis": HANOI_LEGAL_BASIS,
                        "area_group": group,
                        "customer_class": customer_class,
                        "service": "collection",
                        "params": _BY_VOLUME,
                        "vat_rate": "KCT",
                        "valid_from": valid_from,
                    }
                )
            )
    return versions
