"""Minor units and the contract's two roundings, on exact fractions."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from billing.money import JPY, USD, floor, format_amount, percent_of, plain_decimal, round_half_up


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Fraction(5, 2), 3),  # a half goes up (banker's rounding would give 2)
        (Fraction(3, 2), 2),
        (Fraction(149, 100), 1),
        (Fraction(1, 2), 1),
        (Fraction(499_999, 1_000_000), 0),
        (Fraction(7), 7),
    ],
)
def test_round_half_up(value: Fraction, rounded: int) -> None:
    assert round_half_up(value) == rounded


def test_percent_of_is_exact_with_decimal_rates() -> None:
    # 2002 * 8.875 / 100 = 177.6775 exactly; a float would give 177.67749999999998.
    assert percent_of(2002, Decimal("8.875")) == Fraction(1776775, 10000)
    assert floor(percent_of(2002, Decimal("8.875"))) == 177
    assert round_half_up(percent_of(30300, Decimal(10))) == 3030


def test_currencies_know_their_minor_units_and_minimum() -> None:
    assert (JPY.exponent, JPY.minimum_charge) == (0, 50)  # 50 yen
    assert (USD.exponent, USD.minimum_charge) == (2, 50)  # 50 cents
    # The same integer means 12,345 yen but 123.45 dollars: never scaled by 100.
    assert format_amount(12345, JPY) == "JPY 12,345"
    assert format_amount(12345, USD) == "USD 123.45"
    assert format_amount(5, USD) == "USD 0.05"


def test_plain_decimal_writes_rates_as_people_do() -> None:
    assert str(plain_decimal(Decimal("10.0"))) == "10"
    assert str(plain_decimal(Decimal("1E+1"))) == "10"
    assert str(plain_decimal(Decimal("8.8750"))) == "8.875"
    assert str(plain_decimal(Decimal("-0.0"))) == "0"
