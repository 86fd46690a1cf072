"""Health, usage and orgs."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, post
from litestar.params import JSONBody

from appliance import auth
from appliance.api import call
from appliance.orgs import service
from appliance.usage import service as usage


class NewOrg(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    currency: str = "JPY"
    """JPY or USD: the org's invoices and prices, never converted."""
    timezone: str = "UTC"
    """IANA name; months close at 00:00 on the 1st in this zone."""
    admin: str = "admin"
    """Name of the org's first admin user."""


@get("/api/v1/usage")
async def get_usage(caller: auth.CallerParam) -> usage.Usage:
    """Device-seconds per group and for the caller's org."""
    return await call(usage.summary, caller.org_id)


@get("/api/v1/orgs")
async def list_orgs(caller: auth.CallerParam) -> list[dict[str, Any]]:
    """Every org for an appliance superuser; the caller's own org otherwise."""
    return await call(service.list_orgs, caller)


@post("/api/v1/orgs", status_code=201, opt={"role": "admin", "superuser": True, "audited": True})
async def create_org(caller: auth.CallerParam, data: JSONBody[NewOrg]) -> dict[str, Any]:
    """Create an org and its first admin; the admin's token is in this answer only."""
    return await call(
        service.create_org, caller, data.name, data.currency, data.timezone, data.admin
    )


ROUTES = [get_usage, list_orgs, create_org]
