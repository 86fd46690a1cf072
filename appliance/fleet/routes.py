"""Agents and enrollment."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.datastructures import State
from litestar.params import JSONBody, Parameter

from agent.limits import MAX_COUNT
from appliance import auth
from appliance.api import call
from appliance.fleet import service


class EnrollRequest(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    hostname: Annotated[str, msgspec.Meta(max_length=253)] = ""
    arch: Annotated[str, msgspec.Meta(max_length=32)] = ""
    capacity: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)] = 1000


@get("/api/v1/agents")
async def list_agents(caller: auth.CallerParam) -> list[dict[str, Any]]:
    return await call(service.list_agents, caller.org_id)


@post("/api/v1/enrollment-tokens", status_code=201)
async def create_enrollment_token(
    caller: auth.CallerParam,
    state: State,
    ttl_seconds: Annotated[int, Parameter(ge=60, le=30 * 86400)] = 3600,
) -> dict[str, Any]:
    """A one-time token (shown once, valid ``ttl_seconds``) and the command for the board."""
    caller.require("admin")
    token, expires = await call(service.create_enrollment_token, caller.org_id, ttl_seconds)
    return {
        "token": token,
        "expires_at": expires.isoformat() + "Z",
        "command": f"mockmock-agent enroll {state.settings.url} {token}",
    }


@post("/api/v1/agents/enroll", status_code=201)
async def enroll(data: JSONBody[EnrollRequest], state: State) -> dict[str, Any]:
    """Trade a one-time enrollment token for an agent id and MQTT credentials."""
    s = state.settings
    enrolled = await call(
        service.enroll,
        data.token,
        capacity=data.capacity,
        hostname=data.hostname,
        arch=data.arch,
        mqtt_url=s.agent_mqtt_url or s.bus_url,
    )
    return msgspec.to_builtins(enrolled)


ROUTES = [list_agents, create_enrollment_token, enroll]
