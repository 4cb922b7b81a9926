"""The charge computation on hand-written terms, with the domain's tariffs."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

import billing
from billing.charges import ChargeRow, _price_point
from billing.tariffs import SCALE
from customers.terms import TermsPiece
from tests.billing.cases import (
    HAI_PHONG,
    HANOI_BUSINESS,
    HANOI_DRAFT,
    HANOI_RURAL,
    HANOI_URBAN,
    HCMC_2025,
    D,
    piece,
    version,
)

JUNE = billing.period_starting(D(2026, 6, 1), "monthly")  # 30 days
JANUARY = billing.period_starting(D(2026, 1, 1), "monthly")  # 31 days
Q1 = billing.period_starting(D(2026, 1, 1), "quarterly")  # 90 days
YEAR = billing.period_starting(D(2026, 1, 1), "yearly")  # 365 days

BOOK = billing.TariffBook(
    [
        version(1, HANOI_URBAN),
        version(2, HANOI_RURAL, area_group="rural"),
        version(3, HCMC_2025, area_group="hcm", vat_rate="8"),
        version(4, HANOI_BUSINESS, customer_class="business"),
        version(5, HAI_PHONG, area_group="hai_phong"),
        version(6, HANOI_URBAN, service="recycling"),
        version(7, {"basis": "contract_price"}, customer_class="hotel"),
        version(
            8,
            {"basis": "per_container_lift", "price_per_lift_vnd": 150_000},
            service="container_rental",
            customer_class="business",
        ),
    ]
)


def amounts(
    pieces: Sequence[TermsPiece], period: billing.Period = JUNE, book: billing.TariffBook = BOOK
) -> dict[tuple[int, str, str], int]:
    priced = billing.price_pieces(pieces, period, book)
    assert not priced.problems, priced.problems
    return {(r.service_point_id, r.service, r.component): r.amount_vnd for r in priced.rows}


def only_row(pieces: Sequence[TermsPiece], period: billing.Period = JUNE) -> ChargeRow:
    priced = billing.price_pieces(pieces, period, BOOK)
    assert not priced.problems, priced.problems
    assert len(priced.rows) == 1, priced.rows
    return priced.rows[0]


def test_hanoi_per_person_urban_and_rural() -> None:
    assert amounts(
        [
            piece(JANUARY.start, JANUARY.end, point=1, so_khau=4),
            piece(JANUARY.start, JANUARY.end, point=2, so_khau=4, area_group="rural"),
        ],
        JANUARY,
    ) == {(1, "collection", "collection"): 24_000, (2, "collection", "collection"): 12_000}


def test_a_change_of_so_khau_mid_month_is_prorated_by_day() -> None:
    # 4 × 6,000 × 15/30 + 5 × 6,000 × 15/30
    row = only_row(
        [piece(JUNE.start, D(2026, 6, 16), so_khau=4), piece(D(2026, 6, 16), JUNE.end, so_khau=5)]
    )
    assert row.amount_vnd == 27_000
    assert (row.quantity, row.unit, row.tariff_version_id) == (5, "person", 1)
    assert [(p.valid_from, p.valid_to, p.days, p.quantity, p.rate_vnd) for p in row.detail] == [
        (D(2026, 6, 1), D(2026, 6, 16), 15, 4, 24_000),
        (D(2026, 6, 16), D(2026, 7, 1), 15, 5, 30_000),
    ]
    assert json.loads(billing.detail_json(row.detail)) == [
        {
            "from": "2026-06-01",
            "to": "2026-06-16",
            "days": 15,
            "quantity": 4,
            "rate_vnd": 24_000,
            "tariff_version_id": 1,
            "exemption_pct": 0,
        },
        {
            "from": "2026-06-16",
            "to": "2026-07-01",
            "days": 15,
            "quantity": 5,
            "rate_vnd": 30_000,
            "tariff_version_id": 1,
            "exemption_pct": 0,
        },
    ]


def test_hcmc_weight_bands_bill_collection_and_transport_apart() -> None:
    cases = {
        Decimal("100.00"): (61_000, 23_000),
        Decimal("126.00"): (61_000, 23_000),  # the band's limit belongs to the band
        Decimal("126.01"): (91_000, 34_000),
        Decimal("250.00"): (91_000, 34_000),
        Decimal("300.00"): (163_000, 60_000),
        Decimal("420.00"): (163_000, 60_000),
        Decimal("500.00"): (242_500, 90_000),  # 485 and 180 per kg of the whole weight
        Decimal("430.55"): (208_817, 77_499),  # 208,816.75 and 77,499.00
        None: (61_000, 23_000),  # households are billed at the first band unweighed
    }
    for point, (weight, (collection, transport)) in enumerate(cases.items(), start=1):
        priced = billing.price_pieces(
            [piece(point=point, area_group="hcm", weight=weight)], JUNE, BOOK
        )
        by_component = {r.component: r for r in priced.rows}
        assert by_component["collection"].amount_vnd == collection, weight
        assert by_component["transport"].amount_vnd == transport, weight
        assert by_component["collection"].vat_rate == "8"
        assert by_component["collection"].unit == "kg"
    unweighed = billing.price_pieces([piece(area_group="hcm")], JUNE, BOOK).rows[0]
    assert unweighed.quantity == Decimal(126)
    above = billing.price_pieces([piece(area_group="hcm", weight=Decimal("430.55"))], JUNE, BOOK)
    assert above.rows[0].detail[0].rate_vnd == Fraction(20_881_675, 100)
    assert json.loads(billing.detail_json(above.rows[0].detail))[0]["rate_vnd"] == 208_816.75


def test_hanoi_business_flat_up_to_one_m3_then_per_m3_of_the_total() -> None:
    rows = amounts(
        [
            piece(point=1, customer_class="business", volume=Decimal("0.800")),
            piece(point=2, customer_class="business", volume=Decimal("1.000")),
            piece(point=3, customer_class="business", volume=Decimal("2.500")),
        ]
    )
    assert rows == {
        (1, "collection", "collection"): 130_000,
        (2, "collection", "collection"): 130_000,
        (3, "collection", "collection"): 520_000,  # 208,000 × 2.5
    }


def test_per_unit_on_the_excess_and_in_tonnes() -> None:
    excess = billing.TariffBook([version(1, HANOI_BUSINESS | {"per_unit_applies_to": "excess"})])
    assert amounts([piece(volume=Decimal("2.500"))], book=excess) == {
        (1, "collection", "collection"): 442_000  # 130,000 + 208,000 × 1.5
    }
    tonnes = billing.TariffBook(
        [version(1, HANOI_BUSINESS | {"unit": "tonne", "price_per_unit_vnd": 500_000})]
    )
    priced = billing.price_pieces([piece(weight=Decimal("1500.00"))], JUNE, tonnes)
    row = priced.rows[0]
    assert (row.amount_vnd, row.quantity, row.unit) == (750_000, Decimal("1.5"), "tonne")
    assert (
        billing.price_pieces([piece(weight=Decimal("999.99"))], JUNE, tonnes).rows[0].amount_vnd
        == 130_000
    )


def test_hai_phong_flat_per_household() -> None:
    row = only_row([piece(area_group="hai_phong")])
    assert (row.amount_vnd, row.quantity, row.unit) == (40_000, 1, "household")


def test_container_lifts_and_contract_prices() -> None:
    lifts = only_row([piece(customer_class="business", services=["container_rental"], lifts=8)])
    assert (lifts.amount_vnd, lifts.unit) == (1_200_000, "lift")
    hotel = only_row([piece(customer_class="hotel", contract=2_500_000)])
    assert (hotel.amount_vnd, hotel.unit) == (2_500_000, "contract")
    # A contract price overrides the collection rate of any basis: both HCMC components go.
    override = billing.price_pieces(
        [piece(area_group="hcm", weight=Decimal("300.00"), contract=180_000)], JUNE, BOOK
    )
    assert [(r.component, r.amount_vnd, r.vat_rate) for r in override.rows] == [
        ("collection", 180_000, "8")
    ]


def test_quarterly_period_prorates_over_its_days() -> None:
    assert amounts([piece(Q1.start, Q1.end, so_khau=4)], Q1) == {
        (1, "collection", "collection"): 72_000
    }
    # From 15 February: 45 of the quarter's 90 days at 4 people, 45 at 5.
    split = [piece(Q1.start, D(2026, 2, 15), so_khau=4), piece(D(2026, 2, 15), Q1.end, so_khau=5)]
    assert amounts(split, Q1) == {(1, "collection", "collection"): 81_000}
    assert amounts([piece(YEAR.start, YEAR.end, so_khau=4)], YEAR) == {
        (1, "collection", "collection"): 288_000
    }


def test_exemptions_reduce_the_share_of_their_days() -> None:
    assert amounts([piece(so_khau=4, exemption=50)]) == {(1, "collection", "collection"): 12_000}
    # Exempt (poor household, 100 %) from the 16th: a row of the days before.
    row = only_row(
        [
            piece(JUNE.start, D(2026, 6, 16), so_khau=4),
            piece(D(2026, 6, 16), JUNE.end, so_khau=4, exemption=100),
        ]
    )
    assert row.amount_vnd == 12_000
    assert [p.exemption_pct for p in row.detail] == [0, 100]
    assert amounts([piece(so_khau=4, exemption=100)]) == {(1, "collection", "collection"): 0}


def test_suspended_and_terminated_days_are_not_billed() -> None:
    pieces = [
        piece(JUNE.start, D(2026, 6, 11), so_khau=4),
        piece(D(2026, 6, 11), D(2026, 6, 21), so_khau=4, status="suspended"),
        piece(D(2026, 6, 21), JUNE.end, so_khau=4, status="terminated"),
    ]
    assert amounts(pieces) == {(1, "collection", "collection"): 8_000}
    assert billing.price_pieces(
        [piece(so_khau=4, status="suspended")], JUNE, BOOK
    ) == billing.Priced([], [], [1])


def test_a_tariff_change_mid_period_splits_the_piece() -> None:
    book = billing.TariffBook(
        [
            version(1, HANOI_URBAN, valid_to=D(2026, 6, 16), vat_rate="KCT"),
            version(9, HANOI_DRAFT, valid_from=D(2026, 6, 16), vat_rate="8"),
        ]
    )
    priced = billing.price_pieces([piece(so_khau=4)], JUNE, book)
    (row,) = priced.rows
    assert row.amount_vnd == 54_000  # 4 × 6,000 × 15/30 + 4 × 21,000 × 15/30
    assert (row.tariff_version_id, row.vat_rate) == (9, "8")  # the last version's
    assert [(p.days, p.rate_vnd, p.tariff_version_id) for p in row.detail] == [
        (15, 24_000, 1),
        (15, 84_000, 9),
    ]


def test_pieces_with_the_same_rate_merge_in_the_detail() -> None:
    # The terms split for recycling only: collection's detail stays one piece.
    row_pieces = [
        piece(JUNE.start, D(2026, 6, 10), so_khau=4),
        piece(D(2026, 6, 10), JUNE.end, so_khau=4, services=["collection", "recycling"]),
    ]
    priced = billing.price_pieces(row_pieces, JUNE, BOOK)
    collection = next(r for r in priced.rows if r.service == "collection")
    recycling = next(r for r in priced.rows if r.service == "recycling")
    assert [(p.valid_from, p.valid_to, p.days) for p in collection.detail] == [
        (JUNE.start, JUNE.end, 30)
    ]
    assert (collection.amount_vnd, recycling.amount_vnd) == (24_000, 16_800)  # 21 of 30 days


def test_rounding_is_half_up_once_over_the_exact_sum() -> None:
    book = billing.TariffBook([version(1, {"basis": "per_person", "price_per_person_vnd": 3})])
    # 3 VND × 15/30 = 1.5 -> 2
    assert amounts([piece(JUNE.start, D(2026, 6, 16), so_khau=1)], book=book) == {
        (1, "collection", "collection"): 2
    }
    # 0.5 + 1.0 + 0.5 = 2; rounding each piece would give 3
    pieces = [
        piece(D(2026, 6, 1), D(2026, 6, 6), so_khau=1),
        piece(D(2026, 6, 6), D(2026, 6, 11), so_khau=2),
        piece(D(2026, 6, 11), D(2026, 6, 16), so_khau=1),
        piece(D(2026, 6, 16), JUNE.end, so_khau=1, status="suspended"),
    ]
    assert amounts(pieces, book=book) == {(1, "collection", "collection"): 2}


def test_problems_are_reported_not_raised() -> None:
    priced = billing.price_pieces(
        [
            piece(point=1, so_khau=None),  # per_person without so_khau
            piece(point=2, area_group="da_nang", so_khau=3),  # no tariff for the area
            piece(point=3, so_khau=2, services=["collection", "hazardous"]),  # none for hazardous
            piece(point=4, customer_class="hotel"),  # a contract tariff, no contract price
            piece(point=5, so_khau=2),
        ],
        JUNE,
        BOOK,
    )
    reasons = {(p.point_id, p.service): p.reason for p in priced.problems}
    assert reasons[1, "collection"].startswith("so_khau: missing; a per_person tariff")
    assert "(tariff version T1)" in reasons[1, "collection"]
    assert reasons[2, "collection"] == (
        "no tariff version for area_group da_nang, customer_class household, service"
        " collection on 2026-06-01"
    )
    assert (3, "hazardous") in reasons
    assert reasons[4, "collection"].startswith("contract_price_vnd: missing")
    assert {(r.service_point_id, r.service) for r in priced.rows} == {
        (3, "collection"),
        (5, "collection"),
    }
    assert priced.point_ids == [1, 2, 3, 4, 5]


def test_a_gap_in_tariff_validity_is_a_problem_and_no_row() -> None:
    book = billing.TariffBook([version(1, HANOI_URBAN, valid_to=D(2026, 6, 20))])
    priced = billing.price_pieces([piece(so_khau=4)], JUNE, book)
    assert priced.rows == []
    assert priced.problems == [
        billing.ChargeProblem(
            1,
            "collection",
            "no tariff version for area_group urban, customer_class household, service"
            " collection on 2026-06-20",
        )
    ]
    # A suspension over the gap leaves nothing to price there.
    covered = [
        piece(JUNE.start, D(2026, 6, 20), so_khau=4),
        piece(D(2026, 6, 20), JUNE.end, so_khau=4, status="suspended"),
    ]
    assert billing.price_pieces(covered, JUNE, book).problems == []


# ---------------------------------------------------------------- properties

KINDS = st.sampled_from(["monthly", "quarterly", "yearly"])


@st.composite
def split_terms(draw: st.DrawFn) -> tuple[billing.Period, list[TermsPiece], int, int, int]:
    kind = draw(KINDS)
    month = draw(st.integers(1, 12))
    period = billing.period_containing(D(draw(st.integers(2000, 2100)), month, 1), kind)
    price = draw(st.integers(0, 10**7))
    so_khau = draw(st.integers(1, 100))
    exemption = draw(st.integers(0, 100))
    cuts = sorted(set(draw(st.lists(st.integers(1, period.days - 1), max_size=6))))
    days = [period.start, *(period.start + dt.timedelta(d) for d in cuts), period.end]
    pieces = [
        piece(a, b, so_khau=so_khau, exemption=exemption, billing_period=kind)
        for a, b in itertools.pairwise(days)
    ]
    return period, pieces, price, so_khau, exemption


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


@given(split_terms())
def test_one_rate_over_the_whole_period_is_the_unprorated_rate(
    case: tuple[billing.Period, list[TermsPiece], int, int, int],
) -> None:
    period, pieces, price, so_khau, exemption = case
    book = billing.TariffBook(
        [
            version(
                1, {"basis": "per_person", "price_per_person_vnd": price}, valid_from=D(2000, 1, 1)
            )
        ]
    )
    expected = _half_up(price * so_khau * period.months * (100 - exemption), 100)
    assert amounts(pieces, period, book) == {(1, "collection", "collection"): expected}
    assert amounts(pieces[:1], period, book)[1, "collection", "collection"] >= 0


@given(
    KINDS,
    st.lists(
        st.tuples(
            st.integers(1, 40),
            st.sampled_from(["active", "suspended", "terminated"]),
            st.one_of(st.none(), st.decimals(0, 10_000, places=2)),
            st.integers(0, 100),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_amounts_are_never_negative(
    kind: str, spans: list[tuple[int, str, Decimal | None, int]]
) -> None:
    period = billing.period_containing(D(2026, 2, 1), kind)
    day, pieces = period.start, []
    for length, status, weight, exemption in spans:
        end = min(day + dt.timedelta(length), period.end)
        if day < end:
            pieces.append(
                piece(day, end, status=status, area_group="hcm", weight=weight, exemption=exemption)
            )
        day = end
    priced = billing.price_pieces(pieces, period, BOOK)
    assert all(r.amount_vnd >= 0 for r in priced.rows)
    assert not priced.problems
    for row in priced.rows:
        active_days = sum(p.days for p in row.detail)
        assert active_days <= period.days


def test_an_absurd_amount_is_a_problem_not_a_row() -> None:
    book = billing.TariffBook(
        [version(1, HCMC_2025 | {"above_per_kg": {"collection": 10**10, "transport": 1}})]
    )
    priced = billing.price_pieces([piece(weight=Decimal("9999999.99"))], JUNE, book)
    assert priced.rows == []  # not even transport: the service is not billed in part
    (problem,) = priced.problems
    assert problem.reason.startswith("amount_vnd: 99999999900000000 for collection is above")


@given(
    st.sampled_from(["urban", "rural", "hcm", "hai_phong", "da_nang"]),
    st.sampled_from(["household", "business", "hotel"]),
    st.lists(st.sampled_from(["collection", "recycling", "container_rental"]), unique=True),
    st.sampled_from(["active", "suspended"]),
    st.one_of(st.none(), st.integers(1, 100)),
    st.one_of(st.none(), st.decimals(0, 100, places=3)),
    st.one_of(st.none(), st.decimals(0, 1000, places=2)),
    st.one_of(st.none(), st.integers(0, 50)),
    st.one_of(st.none(), st.integers(0, 10**7)),
    st.integers(0, 100),
    st.integers(0, 29),
)
def test_a_lone_piece_is_priced_as_the_general_case_prices_it(
    area_group: str,
    customer_class: str,
    services: list[str],
    status: str,
    so_khau: int | None,
    volume: Decimal | None,
    weight: Decimal | None,
    lifts: int | None,
    contract: int | None,
    exemption: int,
    first_day: int,
) -> None:
    lone = piece(
        JUNE.start + dt.timedelta(first_day),
        JUNE.end,
        status=status,
        area_group=area_group,
        customer_class=customer_class,
        services=services,
        so_khau=so_khau,
        volume=volume,
        weight=weight,
        lifts=lifts,
        contract=contract,
        exemption=exemption,
    )
    rows: list[ChargeRow] = []
    problems: list[billing.ChargeProblem] = []
    _price_point([lone], BOOK, JUNE.months, SCALE * JUNE.days * 100, rows, problems)
    assert billing.price_pieces([lone], JUNE, BOOK) == billing.Priced(rows, problems, [1])
