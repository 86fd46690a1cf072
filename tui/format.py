"""Numbers for tables (pure): whole, with thousands separators, never shortened."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def count(n: int | float | None) -> str:
    """``10023`` → ``10,023``; ``None`` → ``-``."""
    return "-" if n is None else f"{int(n):,}"


def rate(x: float | None) -> str:
    """A per-second rate with one decimal: ``1,234.5``."""
    return "-" if x is None else f"{float(x):,.1f}"


def ms(x: float | None) -> str:
    return "-" if x is None else f"{float(x):,.1f}"


def percent(value: str | int | float | None) -> str:
    """A coupon's percent as the appliance stores it (``"1E+1"``) for people: ``10%``."""
    if value is None or value == "":
        return "-"
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return f"{value}%"
    text = f"{d:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"
