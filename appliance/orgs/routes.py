"""Health, usage and orgs."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from appliance import __version__, auth, models
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


def _agents_online() -> int:
    return models.Agent.select().where(models.Agent.online == True).count()  # noqa: E712


@get("/api/v1/health")
async def health(state: State) -> dict[str, Any]:
    """Liveness and readiness: 200 once the database and the bus are up."""
    return {
        "status": "ok",
        "version": __version__,
        "database": state.settings.database_url.split(":", 1)[0],
        "bus_connected": state.bus.connected.is_set(),
        "agents_online": await call(_agents_online),
        # One leader among replicas runs the scheduler (appliance.leader).
        "scheduler": state.leadership.role if "leadership" in state else "standby",
    }


@get("/api/v1/usage")
async def get_usage(caller: auth.CallerParam) -> dict[str, Any]:
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


ROUTES = [health, get_usage, list_orgs, create_org]
