"""Amounts in Vietnamese words, and VAT per line, checked by hand and by hypothesis."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from billing import NewLine
from billing.amount_words import amount_in_words, number_in_words
from billing.invoice_models import vat_of

DIGITS = {
    "không": 0, "một": 1, "mốt": 1, "hai": 2, "ba": 3, "bốn": 4, "tư": 4, "năm": 5,
    "lăm": 5, "sáu": 6, "bảy": 7, "tám": 8, "chín": 9,
}  # fmt: skip


def read_back(words: str) -> int:
    """An independent reader of what number_in_words writes (below a million billion)."""
    total = below_billion = group = pending = 0
    tokens = words.split()
    sign = -1 if tokens[:1] == ["âm"] else 1
    for token in tokens[1:] if sign < 0 else tokens:
        if token in DIGITS:
            pending = DIGITS[token]
        elif token == "trăm":
            group, pending = group + pending * 100, 0
        elif token == "mươi":
            group, pending = group + pending * 10, 0
        elif token == "mười":
            group += 10
        elif token == "linh":
            continue
        elif token == "nghìn":
            below_billion, group, pending = below_billion + (group + pending) * 1000, 0, 0
        elif token == "triệu":
            below_billion, group, pending = below_billion + (group + pending) * 10**6, 0, 0
        elif token == "tỷ":
            total, below_billion, group, pending = (
                total + (below_billion + group + pending) * 10**9, 0, 0, 0
            )  # fmt: skip
        else:
            raise AssertionError(f"unknown word {token!r} in {words!r}")
    return sign * (total + below_billion + group + pending)


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (0, "Không đồng"),
        (15, "Mười lăm đồng"),
        (21, "Hai mươi mốt đồng"),
        (105, "Một trăm linh năm đồng"),
        (130_000, "Một trăm ba mươi nghìn đồng"),
        (1_205_000, "Một triệu hai trăm linh năm nghìn đồng"),
        (2_000_015, "Hai triệu không trăm mười lăm đồng"),
        (5_000_000_000, "Năm tỷ đồng"),
        (-6_480, "Âm sáu nghìn bốn trăm tám mươi đồng"),
    ],
)
def test_amounts_read_as_an_invoice_prints_them(amount: int, words: str) -> None:
    assert amount_in_words(amount) == words


@given(st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1))
def test_every_amount_reads_back_to_itself(amount: int) -> None:
    assert read_back(number_in_words(amount)) == amount


@given(
    st.integers(min_value=-(10**11), max_value=10**11),
    st.sampled_from(["KCT", "0", "5", "8", "10"]),
)
def test_vat_is_the_exact_share_rounded_half_away_from_zero(amount: int, rate: str) -> None:
    vat = vat_of(amount, rate)
    exact = Decimal(0) if rate == "KCT" else Decimal(amount) * Decimal(rate) / 100
    assert abs(Decimal(vat) - exact) <= Decimal("0.5")
    assert vat_of(-amount, rate) == -vat  # a reduction reduces VAT by as much


@given(
    st.dictionaries(
        st.sampled_from(
            ["service", "description", "quantity", "unit_price_vnd", "amount_vnd", "vat_rate",
             "period_start", "period_end", "service_point_id"]
        ),
        st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(allow_nan=True),
                  st.dates().map(str)),
    )
)  # fmt: skip
def test_hostile_lines_are_refused_with_the_field_or_accepted_whole(values: dict) -> None:  # type: ignore[type-arg]
    errors = _errors(values)
    if errors is not None:
        for error in errors:
            # a field's own check names it in loc; the line's checks start with the field
            named = error["loc"] or str(error["msg"]).split(": ", 1)[-1].split(":")[0] in (
                "amount_vnd", "period_end",
            )  # fmt: skip
            assert named, error
        return
    line = NewLine.model_validate(values)
    assert isinstance(line.amount, int)
    if line.amount_vnd is None:
        assert line.unit_price_vnd is not None
        assert abs(Decimal(line.amount) - line.quantity * line.unit_price_vnd) <= Decimal("0.5")


def _errors(values: dict) -> list | None:  # type: ignore[type-arg]
    try:
        NewLine.model_validate(values)
    except ValidationError as exc:
        return exc.errors()
    return None
