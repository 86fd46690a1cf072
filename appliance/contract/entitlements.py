"""Entitlements: what an org holds, the catalog it buys from, and what billing rates.

Entitlement names: ``on_demand:cnN``, ``free``, ``flat:<plan>``. Prices are integers in
the org's currency's minor unit; times are ISO 8601 in the org's billing time zone.
"""

from __future__ import annotations

import msgspec


class FreeTier(msgspec.Struct, kw_only=True):
    capacity: int
    until: str | None
    active: bool


class FlatWindow(msgspec.Struct, kw_only=True):
    """A bought Flat Plan window: ``capacity`` mocks from ``start`` for ``days``."""

    id: int
    plan: str
    capacity: int
    days: int
    price: int
    currency: str
    start: str | None
    end: str | None
    state: str
    """scheduled, active, ended or cancelled."""


class InUse(msgspec.Struct, kw_only=True):
    capacity: int
    running: int
    """Mocks running under this entitlement now."""
    note: str | None = None
    """Why it admits nothing (a free tier that ended, no active window)."""


class Entitlements(msgspec.Struct, kw_only=True):
    currency: str
    timezone: str
    default: str
    """What groups without their own entitlement run under."""
    free_tier: FreeTier
    flat: list[FlatWindow]
    in_use: dict[str, InUse]
    """Per entitlement name: its capacity and what runs under it."""


class Tier(msgspec.Struct, kw_only=True):
    capacity: int
    hourly: int


class Plan(msgspec.Struct, kw_only=True):
    capacity: int
    days: int
    price: int


class FreeTierTerms(msgspec.Struct, kw_only=True):
    capacity: int
    days: int


class Catalog(msgspec.Struct, kw_only=True):
    currency: str
    on_demand: dict[str, Tier]
    flat: dict[str, Plan]
    free_tier: FreeTierTerms


class OnDemandInterval(msgspec.Struct, kw_only=True):
    tier: str
    start: str
    end: str
    """Exclusive."""


class FlatStart(msgspec.Struct, kw_only=True):
    plan: str
    start: str


class Intervals(msgspec.Struct, kw_only=True):
    """What billing rates for a span: On-Demand intervals and flat window starts."""

    on_demand: list[OnDemandInterval]
    flat: list[FlatStart]
