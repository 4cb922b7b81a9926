"""Tariff versions and their prices: one parameter model per basis, and the monthly rate of
a service point's terms under them.

Prices are whole VND per month. Rates are computed exactly as integers in 1/``SCALE`` VND:
every quantity the terms hold (m³ to 3 decimals, kg to 2, tonnes = kg / 1000) times
``SCALE`` is a whole number, so no rate is ever rounded before the charge is.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

from billing.periods import FIRST_YEAR, LAST_YEAR
from customers.models import Service
from customers.terms import TermsPiece

SCALE = 100_000  # rates are integers in 1/SCALE VND
MAX_PRICE_VND = 10**10


class Basis(enum.StrEnum):
    PER_PERSON = "per_person"
    PER_HOUSEHOLD_FLAT = "per_household_flat"
    WEIGHT_BAND = "weight_band"
    FLAT_UP_TO_THRESHOLD_THEN_PER_UNIT = "flat_up_to_threshold_then_per_unit"
    PER_CONTAINER_LIFT = "per_container_lift"
    CONTRACT_PRICE = "contract_price"


class VatRate(enum.StrEnum):
    """KCT: not subject to VAT; otherwise a percentage. Which applies needs a tax adviser."""

    KCT = "KCT"
    ZERO = "0"
    FIVE = "5"
    EIGHT = "8"
    TEN = "10"


class QuantityUnit(enum.StrEnum):
    M3 = "m3"
    TONNE = "tonne"
    KG = "kg"


class PerUnitAppliesTo(enum.StrEnum):
    TOTAL = "total"  # above the threshold, every unit is priced (Hanoi businesses)
    EXCESS = "excess"  # the flat price, plus each unit above the threshold


Vnd = Annotated[int, Field(ge=0, le=MAX_PRICE_VND)]
Component = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]
ClassName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,32}$")]


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PerPerson(_Params):
    basis: Literal["per_person"] = "per_person"
    price_per_person_vnd: Vnd


class PerHouseholdFlat(_Params):
    basis: Literal["per_household_flat"] = "per_household_flat"
    price_vnd: Vnd


class WeightBandPrices(_Params):
    up_to_kg: Decimal = Field(gt=0, le=10**9, decimal_places=2)
    prices: dict[Component, Vnd] = Field(min_length=1, max_length=10)


class WeightBands(_Params):
    basis: Literal["weight_band"] = "weight_band"
    bands: list[WeightBandPrices] = Field(min_length=1, max_length=50)
    # per kg of the whole weight, above the last band; empty: such weights cannot be priced
    above_per_kg: dict[Component, Vnd] = Field(default_factory=dict, max_length=10)
    # the band a point of unknown weight is billed at (HCMC households: the first)
    unweighed_band: int = Field(0, ge=0, le=49)

    @model_validator(mode="after")
    def _consistent(self) -> WeightBands:
        components = list(self.bands[0].prices)
        for n, band in enumerate(self.bands[1:], start=1):
            below = self.bands[n - 1].up_to_kg
            if band.up_to_kg <= below:
                raise ValueError(
                    f"bands[{n}].up_to_kg: {band.up_to_kg} kg must be above the band before"
                    f" ({below} kg): bands ascend"
                )
            if set(band.prices) != set(components):
                raise ValueError(
                    f"bands[{n}].prices: components {sorted(band.prices)} must be those of"
                    f" bands[0] ({sorted(components)})"
                )
        if self.above_per_kg and set(self.above_per_kg) != set(components):
            raise ValueError(
                f"above_per_kg: components {sorted(self.above_per_kg)} must be those of the"
                f" bands ({sorted(components)})"
            )
        if self.unweighed_band >= len(self.bands):
            raise ValueError(
                f"unweighed_band: {self.unweighed_band} is not a band"
                f" (allowed: 0 to {len(self.bands) - 1})"
            )
        return self


class FlatThenPerUnit(_Params):
    basis: Literal["flat_up_to_threshold_then_per_unit"] = "flat_up_to_threshold_then_per_unit"
    unit: QuantityUnit
    threshold: Decimal = Field(ge=0, le=10**9, decimal_places=5)
    flat_price_vnd: Vnd
    price_per_unit_vnd: Vnd
    per_unit_applies_to: PerUnitAppliesTo = PerUnitAppliesTo.TOTAL


class PerContainerLift(_Params):
    basis: Literal["per_container_lift"] = "per_container_lift"
    price_per_lift_vnd: Vnd


class ContractPrice(_Params):
    basis: Literal["contract_price"] = "contract_price"


TariffParams = Annotated[
    PerPerson | PerHouseholdFlat | WeightBands | FlatThenPerUnit | PerContainerLift | ContractPrice,
    Field(discriminator="basis"),
]
PARAMS: TypeAdapter[TariffParams] = TypeAdapter(TariffParams)


def _check_year(field: str, day: dt.date | None) -> None:
    if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(
            f"{field}: {day.isoformat()} is outside the years {FIRST_YEAR} to {LAST_YEAR}"
        )


class NewTariffVersion(BaseModel):
    """The prices of one service for one area group and customer class, valid from
    ``valid_from`` (inclusive) to ``valid_to`` (exclusive; None: until replaced)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
    name: str = Field(min_length=1, max_length=200)
    legal_basis: str = Field(min_length=1, max_length=500)  # e.g. "QĐ 67/2025/QĐ-UBND"
    area_group: ClassName
    customer_class: ClassName
    service: Service
    params: TariffParams
    vat_rate: VatRate
    valid_from: dt.date
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _dates(self) -> NewTariffVersion:
        _check_year("valid_from", self.valid_from)
        _check_year("valid_to", self.valid_to)
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(
                f"valid_to: {self.valid_to.isoformat()} must be after valid_from"
                f" ({self.valid_from.isoformat()})"
            )
        return self

    @property
    def basis(self) -> Basis:
        return Basis(self.params.basis)


class TariffVersion(NewTariffVersion):
    id: int
    created_by: int | None = None
    created_at: dt.datetime | None = None


# ---------------------------------------------------------------- rates


class CannotPrice(Exception):
    """The terms lack what the basis needs (``so_khau`` for per_person...); the message says
    what, starting with the field."""


Quantity = int | Decimal
# What a piece of terms costs per month: (quantity, unit, ((component, rate in 1/SCALE VND),
# ...)). Plain tuples: the charge run prices 1,000,000 pieces.
Priced = tuple[Quantity, str, tuple[tuple[str, int], ...]]
RateFunction = Callable[[TermsPiece], Priced]


def _missing(field: str, basis: str, what: str) -> CannotPrice:
    return CannotPrice(f"{field}: missing; a {basis} tariff bills {what}")


def _per_person(params: PerPerson, service: str) -> RateFunction:
    price = params.price_per_person_vnd * SCALE

    def rate(piece: TermsPiece) -> Priced:
        so_khau = piece.so_khau
        if so_khau is None:
            raise _missing("so_khau", "per_person", "the registered members (số khẩu)")
        return so_khau, "person", ((service, price * so_khau),)

    return rate


def _constant(quantity: Quantity, unit: str, components: dict[str, int]) -> RateFunction:
    priced: Priced = (quantity, unit, tuple((c, p * SCALE) for c, p in components.items()))

    def rate(piece: TermsPiece) -> Priced:
        return priced

    return rate


def _weight_bands(params: WeightBands) -> RateFunction:
    components = list(params.bands[0].prices)
    bands = [
        (int(band.up_to_kg * SCALE), tuple((c, band.prices[c] * SCALE) for c in components))
        for band in params.bands
    ]
    above = tuple((c, params.above_per_kg[c]) for c in components) if params.above_per_kg else ()
    unweighed = params.bands[params.unweighed_band]
    unweighed_priced: Priced = (unweighed.up_to_kg, "kg", bands[params.unweighed_band][1])
    last_kg = params.bands[-1].up_to_kg

    def rate(piece: TermsPiece) -> Priced:
        weight_kg = piece.weight_kg_per_month
        if weight_kg is None:
            return unweighed_priced
        scaled = int(weight_kg * SCALE)
        for up_to, prices in bands:
            if scaled <= up_to:
                return weight_kg, "kg", prices
        if not above:
            raise CannotPrice(
                f"weight_kg_per_month: {weight_kg} kg is above the last band ({last_kg} kg)"
                " and the tariff has no above_per_kg price"
            )
        return weight_kg, "kg", tuple((c, price * scaled) for c, price in above)

    return rate


def _flat_then_per_unit(params: FlatThenPerUnit, service: str) -> RateFunction:
    threshold = int(params.threshold * SCALE)
    flat = params.flat_price_vnd * SCALE
    flat_priced = ((service, flat),)
    per_unit = params.price_per_unit_vnd
    excess_only = params.per_unit_applies_to is PerUnitAppliesTo.EXCESS
    unit = str(params.unit)
    by_volume = params.unit is QuantityUnit.M3
    # quantity * SCALE from the stored figure: m³ as is, kg as is, tonnes = kg / 1000
    multiplier = SCALE if params.unit is not QuantityUnit.TONNE else SCALE // 1000
    field = "volume_m3_per_month" if by_volume else "weight_kg_per_month"

    def rate(piece: TermsPiece) -> Priced:
        stored = piece.volume_m3_per_month if by_volume else piece.weight_kg_per_month
        if stored is None:
            raise _missing(field, "flat_up_to_threshold_then_per_unit", f"{unit} per month")
        scaled = int(stored * multiplier)
        quantity = stored if multiplier == SCALE else stored / 1000
        if scaled <= threshold:
            return quantity, unit, flat_priced
        if excess_only:
            return quantity, unit, ((service, flat + per_unit * (scaled - threshold)),)
        return quantity, unit, ((service, per_unit * scaled),)

    return rate


def _per_container_lift(params: PerContainerLift, service: str) -> RateFunction:
    price = params.price_per_lift_vnd * SCALE

    def rate(piece: TermsPiece) -> Priced:
        lifts = piece.container_lifts_per_month
        if lifts is None:
            raise _missing("container_lifts_per_month", "per_container_lift", "container lifts")
        return lifts, "lift", ((service, price * lifts),)

    return rate


def _contract_price(service: str) -> RateFunction:
    def rate(piece: TermsPiece) -> Priced:
        price = piece.contract_price_vnd
        if price is None:
            raise _missing("contract_price_vnd", "contract_price", "the point's contract price")
        return 1, "contract", ((service, price * SCALE),)

    return rate


def _with_contract_override(by_tariff: RateFunction) -> RateFunction:
    """A point's contract price replaces its collection rate, whatever the basis."""

    def rate(piece: TermsPiece) -> Priced:
        price = piece.contract_price_vnd
        if price is not None:
            return 1, "contract", (("collection", price * SCALE),)
        return by_tariff(piece)

    return rate


def compile_rate(params: TariffParams, service: str) -> RateFunction:
    """The monthly rate of a piece of terms under ``params`` for ``service``, as a function
    built once per tariff version. Raises CannotPrice when the piece lacks what it needs.
    Single-price bases bill one component named after the service; weight bands bill one
    per component of their prices (collection, transport)."""
    rate: RateFunction
    if isinstance(params, PerPerson):
        rate = _per_person(params, service)
    elif isinstance(params, PerHouseholdFlat):
        rate = _constant(1, "household", {service: params.price_vnd})
    elif isinstance(params, WeightBands):
        rate = _weight_bands(params)
    elif isinstance(params, FlatThenPerUnit):
        rate = _flat_then_per_unit(params, service)
    elif isinstance(params, PerContainerLift):
        rate = _per_container_lift(params, service)
    else:
        return _contract_price(service)
    return _with_contract_override(rate) if service == Service.COLLECTION else rate


def exact_vnd(scaled: int) -> int | Fraction:
    """A rate in 1/SCALE VND as VND: an int when whole."""
    whole, rest = divmod(scaled, SCALE)
    return whole if rest == 0 else Fraction(scaled, SCALE)


def rate(
    params: TariffParams, piece: TermsPiece, service: str = Service.COLLECTION
) -> dict[str, int | Fraction]:
    """The monthly rate per component of ``piece`` under ``params``, exactly."""
    _, _, components = compile_rate(params, str(service))(piece)
    return {component: exact_vnd(scaled) for component, scaled in components}
