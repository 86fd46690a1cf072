"""The price list: what each entitlement admits, and what it costs per currency.

Entitlement names: ``on_demand:cnN`` (N mocks at once; the tier's hours accrue
while mocks run under it), ``free`` (F mocks for the first 365 days after the
org registered), ``flat:<plan>`` (a bought window of C mocks for D days).

Prices are integers in the currency's minor unit (JPY yen, USD cents), set per
currency and never converted. :func:`for_currency` gives the catalog in the
shape billing rates with (DESIGN §4.1): ``on_demand {tier: {capacity, hourly}}``,
``flat {plan: {capacity, days, price}}``, ``free_tier {capacity, days}``.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from appliance.errors import ApplianceError

CURRENCIES = ("JPY", "USD")

# tier: (capacity, hourly JPY, hourly USD cents)
_ON_DEMAND: dict[str, tuple[int, int, int]] = {
    "cn10": (10, 120, 100),
    "cn20": (20, 200, 170),
    "cn50": (50, 400, 350),
    "cn100": (100, 700, 600),
    "cn200": (200, 1_200, 1_000),
    "cn500": (500, 2_500, 2_100),
    "cn1000": (1_000, 4_500, 3_800),
    "cn2000": (2_000, 8_000, 6_700),
    "cn5000": (5_000, 18_000, 15_000),
    "cn10000": (10_000, 32_000, 27_000),
    "cn20000": (20_000, 60_000, 50_000),
    # Fleets of a scaled-out appliance (a hundred thousand mocks under one control plane).
    "cn50000": (50_000, 140_000, 118_000),
    "cn100000": (100_000, 260_000, 220_000),
}

# plan: (capacity, days, price JPY, price USD cents)
_FLAT: dict[str, tuple[int, int, int, int]] = {
    "flat10-30d": (10, 30, 30_000, 25_000),
    "flat100-30d": (100, 30, 200_000, 170_000),
    "flat1000-30d": (1_000, 30, 1_500_000, 1_250_000),
    "flat10000-7d": (10_000, 7, 3_000_000, 2_500_000),
}

FREE_TIER = {"capacity": 5, "days": 365}

ON_DEMAND_TIERS = {tier: cap for tier, (cap, _, _) in _ON_DEMAND.items()}
FLAT_PLANS = {plan: {"capacity": c, "days": d} for plan, (c, d, _, _) in _FLAT.items()}
FREE_CAPACITY = FREE_TIER["capacity"]

_CATALOG: dict[str, dict[str, Any]] = {
    currency: {
        "on_demand": {
            tier: {"capacity": cap, "hourly": (jpy if currency == "JPY" else usd)}
            for tier, (cap, jpy, usd) in _ON_DEMAND.items()
        },
        "flat": {
            plan: {"capacity": c, "days": d, "price": (jpy if currency == "JPY" else usd)}
            for plan, (c, d, jpy, usd) in _FLAT.items()
        },
        "free_tier": dict(FREE_TIER),
    }
    for currency in CURRENCIES
}

_NAME = re.compile(r"^(on_demand:cn\d+|free|flat:[A-Za-z0-9_.-]+)$")


def for_currency(currency: str) -> dict[str, Any]:
    """The catalog in ``currency`` (a copy: callers may keep or change it)."""
    if currency not in _CATALOG:
        raise ApplianceError(f"currency: must be one of {', '.join(CURRENCIES)}")
    return copy.deepcopy(_CATALOG[currency])


def parse(entitlement: str) -> tuple[str, str]:
    """``(kind, item)``: ("on_demand", "cn10"), ("flat", "flat10-30d") or ("free", "free")."""
    if not isinstance(entitlement, str) or not _NAME.fullmatch(entitlement):
        raise ApplianceError(
            f"entitlement: {entitlement!r} is not on_demand:<tier>, free or flat:<plan>"
        )
    if entitlement == "free":
        return "free", "free"
    kind, item = entitlement.split(":", 1)
    if kind == "on_demand" and item not in ON_DEMAND_TIERS:
        known = ", ".join(ON_DEMAND_TIERS)
        raise ApplianceError(f"entitlement: unknown On-Demand tier {item!r} (known: {known})")
    if kind == "flat" and item not in FLAT_PLANS:
        known = ", ".join(FLAT_PLANS)
        raise ApplianceError(f"entitlement: unknown flat plan {item!r} (known: {known})")
    return kind, item


def capacity(entitlement: str) -> int:
    """Mocks the entitlement admits at once by the catalog; raises for unknown names.

    Whether the org holds it now (an active flat window, a free tier still
    running) is :func:`appliance.entitlements.service.check_capacity`'s question.
    """
    kind, item = parse(entitlement)
    if kind == "free":
        return FREE_CAPACITY
    if kind == "on_demand":
        return ON_DEMAND_TIERS[item]
    return int(FLAT_PLANS[item]["capacity"])
