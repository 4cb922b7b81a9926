"""Billing periods ``[start, end)``: calendar months, quarters (starting in January, April,
July and October) and years."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from billing.errors import InvalidValue
from customers.models import BillingPeriod

MONTHS_PER_PERIOD = {
    BillingPeriod.MONTHLY: 1,
    BillingPeriod.QUARTERLY: 3,
    BillingPeriod.YEARLY: 12,
}
# Beyond these years nothing is billed, and date arithmetic near year 9999 overflows.
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True, slots=True)
class Period:
    """One billing period: ``start`` inclusive, ``end`` exclusive."""

    billing_period: BillingPeriod
    start: dt.date
    end: dt.date

    @property
    def months(self) -> int:
        return MONTHS_PER_PERIOD[self.billing_period]

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def next(self) -> Period:
        return period_containing(self.end, self.billing_period)


def months_in(billing_period: BillingPeriod | str) -> int:
    """1, 3 or 12."""
    return MONTHS_PER_PERIOD[BillingPeriod(billing_period)]


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _check_year(field: str, day: dt.date) -> None:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidValue(
            f"{field}: {day.isoformat()} is outside the years {FIRST_YEAR} to {LAST_YEAR}"
        )


def period_containing(day: dt.date, billing_period: BillingPeriod | str) -> Period:
    """The period of kind ``billing_period`` that ``day`` falls in."""
    _check_year("date", day)
    kind = BillingPeriod(billing_period)
    months = MONTHS_PER_PERIOD[kind]
    first_month = (day.month - 1) // months * months + 1
    start = dt.date(day.year, first_month, 1)
    return Period(kind, start, _add_months(start, months))


def is_period_start(day: dt.date, billing_period: BillingPeriod | str) -> bool:
    months = months_in(billing_period)
    return day.day == 1 and (day.month - 1) % months == 0


def period_starting(start: dt.date, billing_period: BillingPeriod | str) -> Period:
    """The period that starts on ``start``; InvalidValue when no period starts that day."""
    _check_year("period_start", start)
    kind = BillingPeriod(billing_period)
    if not is_period_start(start, kind):
        allowed = {
            BillingPeriod.MONTHLY: "the 1st of a month",
            BillingPeriod.QUARTERLY: "1 January, 1 April, 1 July or 1 October",
            BillingPeriod.YEARLY: "1 January",
        }[kind]
        raise InvalidValue(
            f"period_start: {start.isoformat()} does not start a {kind.value} period"
            f" (allowed: {allowed})"
        )
    return period_containing(start, kind)


def period_of(start: dt.date, end: dt.date) -> Period:
    """The period ``[start, end)`` as stored on a charge row; InvalidValue when it is none."""
    months = (end.year - start.year) * 12 + end.month - start.month
    for kind, length in MONTHS_PER_PERIOD.items():
        if length == months and is_period_start(start, kind) and end.day == 1:
            return Period(kind, start, end)
    raise InvalidValue(f"period: {start.isoformat()} to {end.isoformat()} is not a billing period")
