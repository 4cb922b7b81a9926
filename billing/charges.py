"""What one billing period's terms cost: pure, no I/O, fast enough for 1,000,000 points.

For each service point, each of its services and each day of the period on which the point
is ``active`` and one tariff version applies, the day's share of the monthly rate is added
up exactly, per (service, component):

    amount = round_half_up(Σ rate × months × days / period_days × (100 − exemption_pct) / 100)

Pieces of terms are split where a tariff version ends and the next begins. Rates are
integers in 1/``SCALE`` VND, so the sum is an integer numerator over one denominator and
is rounded once. Suspended and terminated days are not billed.

A service that cannot be priced on some active day (no tariff version, or a quantity its
basis needs is missing) gives a ``ChargeProblem`` and no row: a charge for part of the
days would look right and be wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import NamedTuple

from billing.periods import Period
from billing.tariffs import SCALE, CannotPrice, Quantity, RateFunction, TariffVersion, compile_rate
from customers.terms import TermsPiece

_OPEN = dt.date.max
# Above this a charge is surely a wrong quantity or price (and near bigint's end).
MAX_AMOUNT_VND = 10**15


class DetailPiece(NamedTuple):
    """Days ``[valid_from, valid_to)`` of a charge at one monthly rate."""

    valid_from: dt.date
    valid_to: dt.date
    days: int
    quantity: Quantity
    rate_scaled: int  # the monthly rate in 1/SCALE VND
    tariff_version_id: int
    exemption_pct: int

    @property
    def rate_vnd(self) -> int | Fraction:
        whole, rest = divmod(self.rate_scaled, SCALE)
        return whole if rest == 0 else Fraction(self.rate_scaled, SCALE)


class ChargeRow(NamedTuple):
    """What a point owes for one service component in the period. ``quantity`` and ``unit``
    are those of the last active piece; ``tariff_version_id`` and ``vat_rate`` are the last
    tariff version's."""

    customer_id: int
    service_point_id: int
    service: str
    component: str
    tariff_version_id: int
    quantity: Quantity
    unit: str
    amount_vnd: int
    vat_rate: str
    detail: list[DetailPiece]


class ChargeProblem(NamedTuple):
    point_id: int
    service: str
    reason: str


class Priced(NamedTuple):
    rows: list[ChargeRow]
    problems: list[ChargeProblem]
    point_ids: list[int]  # every point priced, whether it gave rows, problems or neither


class _Version:
    """A tariff version ready to price pieces: its rate function built once."""

    __slots__ = ("code", "id", "rate", "valid_from", "valid_to", "vat_rate")

    def __init__(self, version: TariffVersion) -> None:
        self.id = version.id
        self.code = version.code
        self.valid_from = version.valid_from
        self.valid_to = version.valid_to or _OPEN
        self.vat_rate = str(version.vat_rate)
        self.rate: RateFunction = compile_rate(version.params, str(version.service))


class TariffBook:
    """The tariff versions of a tenant by (area_group, customer_class, service), oldest
    first: what ``price_pieces`` looks prices up in."""

    def __init__(self, versions: Iterable[TariffVersion]) -> None:
        found: dict[tuple[str, str, str], list[_Version]] = {}
        for version in versions:
            key = (version.area_group, version.customer_class, str(version.service))
            found.setdefault(key, []).append(_Version(version))
        self.by_key = {
            key: tuple(sorted(listed, key=lambda v: v.valid_from)) for key, listed in found.items()
        }

    def versions(self, area_group: str, customer_class: str, service: str) -> tuple[_Version, ...]:
        return self.by_key.get((area_group, customer_class, service), ())


# NamedTuple's own __new__ is a Python function; tuple.__new__ builds the same tuple without
# that frame, on the hot path (a million rows per run).
_new = tuple.__new__


def price_pieces(pieces: Sequence[TermsPiece], period: Period, book: TariffBook) -> Priced:
    """The charge rows and problems of ``pieces``: terms rows clipped to ``period``, ordered
    by service point then date (as ``customers.terms.period_terms`` yields them)."""
    rows: list[ChargeRow] = []
    problems: list[ChargeProblem] = []
    point_ids: list[int] = []
    start = 0
    count = len(pieces)
    months = period.months
    denominator = SCALE * period.days * 100
    lookup = book.by_key
    while start < count:
        point_id = pieces[start].service_point_id
        end = start + 1
        while end < count and pieces[end].service_point_id == point_id:
            end += 1
        if end - start > 1 or not _price_alone(pieces[start], lookup, months, denominator, rows):
            _price_point(pieces[start:end], book, months, denominator, rows, problems)
        point_ids.append(point_id)
        start = end
    return Priced(rows, problems, point_ids)


def _price_alone(
    piece: TermsPiece,
    lookup: dict[tuple[str, str, str], tuple[_Version, ...]],
    months: int,
    denominator: int,
    rows: list[ChargeRow],
) -> bool:
    """Most points: one piece of terms, each service under one tariff version all along.
    Priced here without running sums; False, having added nothing, for any other case
    (``_price_point`` then prices it, with the same result)."""
    point_id, customer_id, _, first_day, end_day, status, customer_class, area_group = piece[:8]
    if status != "active":
        return True  # nothing owed, nothing to report
    exemption = piece.exemption_pct
    days = (end_day - first_day).days
    weight = 2 * months * days * (100 - exemption)
    twice = 2 * denominator
    found: list[ChargeRow] = []
    for service in piece.services:
        versions = lookup.get((area_group, customer_class, service))
        if versions is None or len(versions) != 1:
            return False
        version = versions[0]
        if version.valid_from > first_day or version.valid_to < end_day:
            return False
        try:
            quantity, unit, components = version.rate(piece)
        except CannotPrice:
            return False
        for component, rate_scaled in components:
            amount = (rate_scaled * weight + denominator) // twice  # half up
            if amount > MAX_AMOUNT_VND:
                return False
            detail = _new(
                DetailPiece,
                (first_day, end_day, days, quantity, rate_scaled, version.id, exemption),
            )
            found.append(
                _new(
                    ChargeRow,
                    (
                        customer_id,
                        point_id,
                        service,
                        component,
                        version.id,
                        quantity,
                        unit,
                        amount,
                        version.vat_rate,
                        [detail],
                    ),
                )
            )
    rows.extend(found)
    return True


class _Sum:
    """A (service, component)'s running sum in one point's period."""

    __slots__ = ("detail", "numerator", "quantity", "unit", "vat_rate", "version_id")

    def __init__(
        self, numerator: int, quantity: Quantity, unit: str, version: _Version, first: DetailPiece
    ) -> None:
        self.numerator = numerator  # in 1/SCALE VND · days · percent kept
        self.quantity = quantity
        self.unit = unit
        self.version_id = version.id
        self.vat_rate = version.vat_rate
        self.detail = [first]

    def add(
        self, numerator: int, quantity: Quantity, unit: str, version: _Version, piece: DetailPiece
    ) -> None:
        self.numerator += numerator
        self.quantity = quantity
        self.unit = unit
        self.version_id = version.id
        self.vat_rate = version.vat_rate
        last = self.detail[-1]
        if (
            last.valid_to == piece.valid_from
            and last.rate_scaled == piece.rate_scaled
            and last.quantity == piece.quantity
            and last.tariff_version_id == piece.tariff_version_id
            and last.exemption_pct == piece.exemption_pct
        ):
            # The same rate on: one piece (a change of another service split the terms).
            self.detail[-1] = last._replace(valid_to=piece.valid_to, days=last.days + piece.days)
        else:
            self.detail.append(piece)


def _price_point(
    pieces: Sequence[TermsPiece],
    book: TariffBook,
    months: int,
    denominator: int,
    rows: list[ChargeRow],
    problems: list[ChargeProblem],
) -> None:
    sums: dict[tuple[str, str], _Sum] = {}
    failed: dict[str, str] = {}  # service -> why it could not be priced
    lookup = book.by_key
    point_id = pieces[0].service_point_id
    customer_id = pieces[0].customer_id
    for piece in pieces:
        first_day, end_day, status, customer_class, area_group = piece[3:8]
        if status != "active":
            continue
        exemption = piece.exemption_pct
        kept = 100 - exemption
        for service in piece.services:
            if service in failed:
                continue
            day = first_day
            for version in lookup.get((area_group, customer_class, service), ()):
                if version.valid_to <= day:
                    continue
                if version.valid_from > day:
                    break  # a gap before this version: reported below
                until = version.valid_to if version.valid_to < end_day else end_day
                try:
                    quantity, unit, components = version.rate(piece)
                except CannotPrice as unpriced:
                    failed[service] = f"{unpriced} (tariff version {version.code})"
                    break
                days = (until - day).days
                weight = days * kept
                for component, rate_scaled in components:
                    key = (service, component)
                    detail = DetailPiece(
                        day, until, days, quantity, rate_scaled, version.id, exemption
                    )
                    found = sums.get(key)
                    if found is None:
                        sums[key] = _Sum(rate_scaled * weight, quantity, unit, version, detail)
                    else:
                        found.add(rate_scaled * weight, quantity, unit, version, detail)
                day = until
                if day >= end_day:
                    break
            if day < end_day and service not in failed:
                failed[service] = (
                    f"no tariff version for area_group {area_group}, customer_class"
                    f" {customer_class}, service {service} on {day.isoformat()}"
                )
    twice = 2 * denominator
    priced = [
        (service, component, found, (2 * months * found.numerator + denominator) // twice)
        for (service, component), found in sums.items()  # rounded half up, once
        if service not in failed
    ]
    for service, component, found, amount in priced:
        if amount > MAX_AMOUNT_VND and service not in failed:
            failed[service] = (
                f"amount_vnd: {amount} for {component} is above {MAX_AMOUNT_VND}: check the"
                f" quantity ({found.quantity} {found.unit}) and the tariff"
            )
    for service, reason in failed.items():
        problems.append(ChargeProblem(point_id, service, reason))
    for service, component, found, amount in priced:
        if service not in failed:
            rows.append(
                ChargeRow(
                    customer_id,
                    point_id,
                    service,
                    component,
                    found.version_id,
                    found.quantity,
                    found.unit,
                    amount,
                    found.vat_rate,
                    found.detail,
                )
            )


def number_text(value: Quantity | Fraction) -> str:
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Fraction):  # a denominator dividing SCALE: a finite decimal
        whole, rest = divmod(value.numerator * SCALE // value.denominator, SCALE)
        return f"{whole}.{rest:05d}".rstrip("0")
    return format(value, "f")


def detail_json(detail: Sequence[DetailPiece], day_text: dict[dt.date, str] | None = None) -> str:
    """The ``detail`` column: ``[{"from", "to", "days", "quantity", "rate_vnd",
    "tariff_version_id", "exemption_pct"}...]``, rate_vnd exact (decimals when the monthly
    rate is not whole VND). ``day_text``: a cache of dates as text, kept by the caller."""
    days = {} if day_text is None else day_text
    parts = []
    for valid_from, valid_to, length, quantity, rate_scaled, version_id, exemption in detail:
        first = days.get(valid_from)
        if first is None:
            first = days[valid_from] = valid_from.isoformat()
        last = days.get(valid_to)
        if last is None:
            last = days[valid_to] = valid_to.isoformat()
        whole, rest = divmod(rate_scaled, SCALE)
        rate = str(whole) if rest == 0 else f"{whole}.{rest:05d}".rstrip("0")
        amount = str(quantity) if type(quantity) is int else number_text(quantity)
        parts.append(
            f'{{"from":"{first}","to":"{last}","days":{length},"quantity":{amount},'
            f'"rate_vnd":{rate},"tariff_version_id":{version_id},"exemption_pct":{exemption}}}'
        )
    return "[" + ",".join(parts) + "]"
