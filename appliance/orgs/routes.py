"""Health, usage and orgs."""

from __future__ import annotations

from litestar import get, post
from litestar.params import JSONBody

from appliance import auth
from appliance.api import call
from appliance.contract.orgs import CreatedOrg, NewOrg, Org
from appliance.orgs import service
from appliance.usage import service as usage


@get("/api/v1/usage")
async def get_usage(caller: auth.CallerParam) -> usage.Usage:
    """Device-seconds per group and for the caller's org."""
    return await call(usage.summary, caller.org_id)


@get("/api/v1/orgs")
async def list_orgs(caller: auth.CallerParam) -> list[Org]:
    """Every org for an appliance superuser; the caller's own org otherwise."""
    return await call(service.list_orgs, caller)


@post("/api/v1/orgs", status_code=201, opt={"role": "admin", "superuser": True, "audited": True})
async def create_org(caller: auth.CallerParam, data: JSONBody[NewOrg]) -> CreatedOrg:
    """Create an org and its first admin; the admin's token is in this answer only."""
    return await call(
        service.create_org, caller, data.name, data.currency, data.timezone, data.admin
    )


ROUTES = [get_usage, list_orgs, create_org]
