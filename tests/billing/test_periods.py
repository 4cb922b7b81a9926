"""Billing periods: calendar months, quarters from January/April/July/October, years."""

from __future__ import annotations

import datetime as dt

import pytest

import billing
from customers.models import BillingPeriod

D = dt.date


@pytest.mark.parametrize(
    ("day", "kind", "start", "end", "months", "days"),
    [
        (D(2026, 6, 16), BillingPeriod.MONTHLY, D(2026, 6, 1), D(2026, 7, 1), 1, 30),
        (D(2024, 2, 29), BillingPeriod.MONTHLY, D(2024, 2, 1), D(2024, 3, 1), 1, 29),
        (D(2026, 12, 31), BillingPeriod.MONTHLY, D(2026, 12, 1), D(2027, 1, 1), 1, 31),
        (D(2026, 2, 15), BillingPeriod.QUARTERLY, D(2026, 1, 1), D(2026, 4, 1), 3, 90),
        (D(2026, 8, 1), BillingPeriod.QUARTERLY, D(2026, 7, 1), D(2026, 10, 1), 3, 92),
        (D(2026, 12, 31), BillingPeriod.QUARTERLY, D(2026, 10, 1), D(2027, 1, 1), 3, 92),
        (D(2026, 6, 30), BillingPeriod.YEARLY, D(2026, 1, 1), D(2027, 1, 1), 12, 365),
        (D(2028, 1, 1), BillingPeriod.YEARLY, D(2028, 1, 1), D(2029, 1, 1), 12, 366),
    ],
)
def test_period_containing(
    day: dt.date, kind: BillingPeriod, start: dt.date, end: dt.date, months: int, days: int
) -> None:
    period = billing.period_containing(day, kind)
    assert (period.start, period.end, period.months, period.days) == (start, end, months, days)
    assert billing.period_starting(start, kind) == period
    assert billing.period_of(start, end) == period
    assert billing.months_in(kind) == months


def test_next_period_follows_on() -> None:
    period = billing.period_containing(D(2026, 11, 5), "quarterly")
    assert period.next().start == period.end == D(2027, 1, 1)


@pytest.mark.parametrize(
    ("start", "kind", "allowed"),
    [
        (D(2026, 6, 15), "monthly", "the 1st of a month"),
        (D(2026, 2, 1), "quarterly", "1 January, 1 April, 1 July or 1 October"),
        (D(2026, 4, 1), "yearly", "1 January"),
    ],
)
def test_a_start_that_starts_no_period_is_refused(start: dt.date, kind: str, allowed: str) -> None:
    with pytest.raises(billing.InvalidValue, match=f"^period_start: .*{allowed}"):
        billing.period_starting(start, kind)
    assert not billing.is_period_start(start, kind)


def test_years_outside_the_range_are_refused() -> None:
    with pytest.raises(billing.InvalidValue, match=r"^period_start: .*2000 to 2100"):
        billing.period_starting(D(9999, 12, 1), "monthly")


def test_a_stored_span_that_is_no_period_is_refused() -> None:
    with pytest.raises(billing.InvalidValue, match=r"^period: "):
        billing.period_of(D(2026, 1, 1), D(2026, 3, 1))
