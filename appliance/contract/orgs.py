"""Orgs (tenants): ``/api/v1/orgs``."""

from __future__ import annotations

import msgspec


class NewOrg(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    currency: str = "JPY"
    """JPY or USD: the org's invoices and prices, never converted."""
    timezone: str = "UTC"
    """IANA name; months close at 00:00 on the 1st in this zone."""
    admin: str = "admin"
    """Name of the org's first admin user."""


class Org(msgspec.Struct, kw_only=True):
    id: int
    name: str
    currency: str
    """JPY | USD"""
    timezone: str
    """IANA name."""
    registered_at: str
    """ISO 8601 in the org's time zone."""
    default_entitlement: str
    """``free``, ``on_demand:<tier>`` or ``flat:<plan>``."""
    stripe_mode: str


class OrgAdmin(msgspec.Struct, kw_only=True):
    user_id: int
    name: str
    token: str
    """The admin's first API token; shown in this answer only."""


class CreatedOrg(Org, kw_only=True):
    admin: OrgAdmin
