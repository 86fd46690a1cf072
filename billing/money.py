"""Currencies, integer minor units and the two roundings the rating contract uses.

Every amount is an ``int`` in the currency's minor unit (JPY: yen, USD: cents).
Fractions appear only inside a single computation (a price per minute, a
percentage) and are rounded exactly once, with exact rational arithmetic:
never a float, so 0.1 + 0.2 problems cannot reach an invoice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int
    """Digits of the minor unit: 0 for JPY (zero-decimal), 2 for USD."""
    minimum_charge: int
    """Smallest total worth charging, in minor units (card fees make less pointless)."""


JPY = Currency("JPY", exponent=0, minimum_charge=50)
USD = Currency("USD", exponent=2, minimum_charge=50)
CURRENCIES: dict[str, Currency] = {c.code: c for c in (JPY, USD)}


def currency(code: str) -> Currency:
    """The currency with this ISO code; KeyError for one we do not price in."""
    return CURRENCIES[code]


def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves toward +infinity (2.5 → 3); exact for any rational."""
    return math.floor(value + Fraction(1, 2))


def floor(value: Fraction) -> int:
    """Largest integer <= value (tax is floored so it never exceeds the legal amount)."""
    return math.floor(value)


def percent_of(amount: int, percent: Decimal) -> Fraction:
    """``amount * percent / 100`` exactly; ``percent`` may carry decimals (8.875)."""
    return Fraction(amount) * Fraction(percent) / 100


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` without exponent noise or a negative zero: 10.0 → 10, 8.8750 → 8.875.

    Used to echo a rate on the invoice in the form a person would write it.
    """
    normal = value.normalize() + 0  # "+ 0" turns -0 into 0
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def format_amount(amount: int, cur: Currency) -> str:
    """Human form for messages and screens: ``JPY 30,300``, ``USD 12.34``."""
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**cur.exponent)
    text = f"{major:,}" if cur.exponent == 0 else f"{major:,}.{minor:0{cur.exponent}d}"
    return f"{cur.code} {sign}{text}"
