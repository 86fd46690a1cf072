"""Health and usage endpoints."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.datastructures import State

from appliance import __version__, auth, models
from appliance.api import call
from appliance.usage import service as usage


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
    }


@get("/api/v1/usage")
async def get_usage(caller: auth.Caller) -> dict[str, Any]:
    """Device-seconds per group and for the caller's org."""
    return await call(usage.summary, caller.org_id)


ROUTES = [health, get_usage]
