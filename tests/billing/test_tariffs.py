"""Tariff parameters validate themselves and name the field; rates are exact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

import billing
from tests.billing.cases import HCMC_2025, piece


def new_version(**changes: Any) -> billing.NewTariffVersion:
    values: dict[str, Any] = {
        "code": "HCM-HGD-2025",
        "name": "Hộ gia đình TP.HCM 2025",
        "legal_basis": "QĐ 67/2025/QĐ-UBND",
        "area_group": "hcm",
        "customer_class": "household",
        "service": "collection",
        "params": HCMC_2025,
        "vat_rate": "8",
        "valid_from": dt.date(2025, 6, 1),
    }
    return billing.NewTariffVersion.model_validate(values | changes)


def bands(*rows: tuple[float, dict[str, int]], **extra: Any) -> dict[str, Any]:
    return {
        "basis": "weight_band",
        "bands": [{"up_to_kg": kg, "prices": prices} for kg, prices in rows],
        **extra,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"params": bands((250, {"collection": 1}), (126, {"collection": 2}))},
            r"bands\[1\]\.up_to_kg: 126 kg must be above the band before \(250 kg\)",
        ),
        (
            {"params": bands((126, {"collection": 1}), (250, {"transport": 2}))},
            r"bands\[1\]\.prices: components \['transport'\] must be those of bands\[0\]",
        ),
        (
            {"params": bands((126, {"collection": 1}), above_per_kg={"transport": 5})},
            r"above_per_kg: components \['transport'\]",
        ),
        (
            {"params": bands((126, {"collection": 1}), unweighed_band=1)},
            r"unweighed_band: 1 is not a band \(allowed: 0 to 0\)",
        ),
        (
            {"params": {"basis": "per_person", "price_per_person_vnd": -1}},
            r"price_per_person_vnd\s+Input should be greater than or equal to 0",
        ),
        (
            {"params": {"basis": "per_person", "price_per_person_vnd": 10**11}},
            r"price_per_person_vnd\s+Input should be less than or equal to 10000000000",
        ),
        ({"params": {"basis": "per_square_metre"}}, r"params\s+Input tag 'per_square_metre'"),
        (
            {"params": {"basis": "per_person", "price_per_person_vnd": 6000, "extra": 1}},
            r"extra\s+Extra inputs are not permitted",
        ),
        (
            {"valid_to": dt.date(2025, 6, 1)},
            r"valid_to: 2025-06-01 must be after valid_from \(2025-06-01\)",
        ),
        ({"valid_from": dt.date(1999, 12, 1)}, r"valid_from: 1999-12-01 is outside the years"),
        ({"vat_rate": "7"}, r"vat_rate\s+Input should be 'KCT', '0', '5', '8' or '10'"),
        ({"service": "gold"}, r"service\s+Input should be 'collection'"),
        ({"code": "has space"}, r"code\s+String should match pattern"),
        ({"area_group": "Urban"}, r"area_group\s+String should match pattern"),
    ],
)
def test_bad_tariffs_name_the_field_and_range(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        new_version(**changes)


def test_a_version_keeps_its_basis() -> None:
    version = new_version()
    assert version.basis is billing.Basis.WEIGHT_BAND
    assert isinstance(version.params, billing.WeightBands)
    assert version.params.bands[1].up_to_kg == Decimal(250)


def test_rates_are_exact() -> None:
    hcmc = new_version().params
    assert billing.rate(hcmc, piece(weight=Decimal("126.00"))) == {
        "collection": 61_000,
        "transport": 23_000,
    }
    assert billing.rate(hcmc, piece(weight=None)) == {"collection": 61_000, "transport": 23_000}
    assert billing.rate(hcmc, piece(weight=Decimal("430.55"))) == {
        "collection": Fraction(20_881_675, 100),  # 485 × 430.55
        "transport": Fraction(7_749_900, 100),  # 180 × 430.55
    }
    per_person = billing.PerPerson(price_per_person_vnd=6_000)
    assert billing.rate(per_person, piece(so_khau=4)) == {"collection": 24_000}
    assert billing.rate(per_person, piece(so_khau=4), "recycling") == {"recycling": 24_000}
    # A contract price replaces the collection rate, whatever the basis; not other services'.
    assert billing.rate(per_person, piece(so_khau=4, contract=350_000)) == {"collection": 350_000}
    assert billing.rate(per_person, piece(so_khau=4, contract=350_000), "recycling") == {
        "recycling": 24_000
    }


def test_a_missing_quantity_cannot_be_priced() -> None:
    with pytest.raises(billing.CannotPrice, match=r"^so_khau: missing"):
        billing.rate(billing.PerPerson(price_per_person_vnd=6_000), piece(so_khau=None))
    no_above = billing.WeightBands.model_validate(bands((126, {"collection": 1})))
    with pytest.raises(billing.CannotPrice, match=r"^weight_kg_per_month: 127.00 kg is above"):
        billing.rate(no_above, piece(weight=Decimal("127.00")))
