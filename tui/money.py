"""Amounts as the API gives them (integers in the currency's minor unit), for people."""

from __future__ import annotations

MINOR_DIGITS = {"JPY": 0, "USD": 2}


def fmt(amount: int | None, currency: str) -> str:
    """``fmt(396, "JPY")`` → ``JPY 396``; ``fmt(1999, "USD")`` → ``USD 19.99``."""
    if amount is None:
        return "-"
    digits = MINOR_DIGITS.get(currency.upper(), 2)
    sign = "-" if amount < 0 else ""
    whole, minor = divmod(abs(int(amount)), 10**digits)
    text = f"{whole:,}" + (f".{minor:0{digits}d}" if digits else "")
    return f"{currency.upper()} {sign}{text}"


def parse(text: str, currency: str) -> int:
    """What an admin typed (``12.50`` USD, ``500`` JPY) in minor units; ValueError if not."""
    digits = MINOR_DIGITS.get(currency.upper(), 2)
    text = text.strip().replace(",", "")
    whole, _, frac = text.partition(".")
    if not whole.lstrip("-").isdigit() or (frac and not frac.isdigit()) or len(frac) > digits:
        raise ValueError(f"not an amount in {currency} ({digits} decimals at most): {text!r}")
    negative = whole.startswith("-")
    value = int(whole.lstrip("-")) * 10**digits + int((frac or "0").ljust(digits, "0") or 0)
    return -value if negative else value
