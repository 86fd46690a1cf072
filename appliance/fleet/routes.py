"""Agents and enrollment."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, Parameter

from appliance import auth
from appliance.api import call
from appliance.contract.fleet import Agent, Enrolled, EnrollmentToken, EnrollRequest
from appliance.fleet import credentials, service
from appliance.tls import agent_ca_pem


@get("/api/v1/agents")
async def list_agents(caller: auth.CallerParam) -> list[Agent]:
    return await call(service.list_agents, caller.org_id)


@post("/api/v1/enrollment-tokens", status_code=201)
async def create_enrollment_token(
    caller: auth.CallerParam,
    state: State,
    request: Request[Any, Any, Any],
    ttl_seconds: Annotated[int, Parameter(ge=60, le=30 * 86400)] = 3600,
) -> EnrollmentToken:
    """A one-time token (shown once, valid ``ttl_seconds``) and the command for the board.

    ``command`` installs the agent from this appliance and enrolls it;
    ``enroll_command`` enrolls a board that already has the agent. ``warning`` says
    when ``url`` is a guess or not reachable from other machines.
    """
    caller.require("admin")
    token, expires = await call(service.create_enrollment_token, caller.org_id, ttl_seconds)
    board = credentials.board_url(
        state.settings, host_header=request.headers.get("host", ""), scheme=request.url.scheme
    )
    return EnrollmentToken(
        token=token,
        expires_at=expires.isoformat() + "Z",
        url=board.url,
        command=credentials.install_command(board.url, token),
        enroll_command=f"mockmock-agent enroll {board.url} {token}",
        warning=board.warning or "",
    )


@post("/api/v1/agents/enroll", status_code=201)
async def enroll(
    data: JSONBody[EnrollRequest], state: State, request: Request[Any, Any, Any]
) -> Enrolled:
    """Trade a one-time enrollment token for an agent id and MQTT credentials."""
    mqtt_url = credentials.board_mqtt_url(
        state.settings,
        host_header=request.headers.get("host", ""),
        client_host=request.client.host if request.client else "",
    )
    # The CA of an mqtts:// bus, so a board trusts its broker without a system store;
    # read before the one-time token is spent.
    ca = await call(agent_ca_pem, state.settings)
    enrolled = await call(
        service.enroll,
        data.token,
        capacity=data.capacity,
        hostname=data.hostname,
        arch=data.arch,
        mqtt_url=mqtt_url,
    )
    await call(credentials.refresh_mosquitto_files, state.settings)
    if ca and enrolled.mqtt_url.startswith("mqtts://"):
        enrolled.mqtt_ca = ca
    return enrolled


ROUTES = [list_agents, create_enrollment_token, enroll]
