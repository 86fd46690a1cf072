"""Drill-down routes: a group's devices and message tail (asked of its agents), an agent's
ranges. Read-only; the agents answer over the control bus within a few seconds."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, Parameter

from agent import wire
from appliance import auth
from appliance.api import call
from appliance.contract.inspect import AgentRanges, GroupDevices, GroupTail
from appliance.inspect import service

Start = Annotated[int, Parameter(ge=0, le=10_000_000)]
Page = Annotated[int, Parameter(ge=1, le=service.MAX_PAGE)]
Tail = Annotated[int, Parameter(ge=1, le=service.MAX_TAIL)]


@get("/api/v1/groups/{name:str}/devices")
async def group_devices(
    caller: auth.CallerParam,
    name: FromPath[str],
    state: State,
    start: FromQuery[Start] = 0,
    limit: FromQuery[Page] = 100,
) -> GroupDevices:
    """Devices ``start`` .. ``start + limit`` of a running group: status, connection, last
    payload (asked of the agents that run them; ``unanswered`` lists those that did not)."""
    p = await call(service.placed, caller.org_id, name)
    replies: dict[str, wire.InspectReply | None] = {}
    if p.state == "running" and p.agents:
        replies = await state.bus.inspections.ask(
            p.agents,
            lambda rid: wire.InspectRequest(
                id=rid, group_id=p.group_id, run_id=p.run_id, devices_from=start, devices=limit
            ),
        )
    return service.devices_doc(p, start, replies)


@get("/api/v1/groups/{name:str}/tail")
async def group_tail(
    caller: auth.CallerParam, name: FromPath[str], state: State, limit: FromQuery[Tail] = 50
) -> GroupTail:
    """The last ``limit`` messages the group's mocks sent, oldest first. The agents keep them
    from the first request on, for a minute after the last one."""
    p = await call(service.placed, caller.org_id, name)
    replies: dict[str, wire.InspectReply | None] = {}
    if p.state == "running" and p.agents:
        replies = await state.bus.inspections.ask(
            p.agents,
            lambda rid: wire.InspectRequest(
                id=rid, group_id=p.group_id, run_id=p.run_id, messages=limit
            ),
        )
    return service.tail_doc(p, limit, replies)


@get("/api/v1/agents/{agent_id:str}/ranges")
async def agent_ranges(caller: auth.CallerParam, agent_id: FromPath[str]) -> AgentRanges:
    """The device ranges placed on an agent, with what it reported for each, and its errors."""
    return await call(service.agent_ranges, caller.org_id, agent_id)


ROUTES = [group_devices, group_tail, agent_ranges]
