"""The database half of the drill-down: which agents run a group, an agent's ranges."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agent import wire
from appliance import models
from appliance.contract.inspect import (
    AgentRange,
    AgentRanges,
    DeviceRow,
    GroupDevices,
    GroupTail,
    TailLine,
)
from appliance.errors import NotFound
from appliance.groups.service import get_group

MAX_PAGE = 500
MAX_TAIL = 200


@dataclass(frozen=True)
class Placed:
    group_id: int
    name: str
    state: str
    run_id: int
    count: int
    agents: list[str]  # agent ids of the current run's ranges (online or not)
    last_errors: list[str]


def placed(org_id: int, name: str) -> Placed:
    group = get_group(org_id, name)
    agents = [
        a.agent.agent_id
        for a in models.Assignment.select(models.Assignment, models.Agent)
        .join(models.Agent)
        .where(models.Assignment.group == group.id, models.Assignment.run_id == group.run_id)
        .order_by(models.Assignment.index_start)
    ]
    errors = [
        s.last_error
        for s in models.GroupStats.select(models.GroupStats.last_error).where(
            models.GroupStats.group == group.id, models.GroupStats.run_id == group.run_id
        )
        if s.last_error
    ]
    return Placed(
        group.id, group.name, group.state, group.run_id, group.count, sorted(set(agents)), errors
    )


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


def _since(replies: dict[str, wire.InspectReply | None]) -> str | None:
    times = [r.watching_since for r in replies.values() if r and r.watching_since is not None]
    return iso(min(times)) if times else None


def devices_doc(
    p: Placed, start: int, replies: dict[str, wire.InspectReply | None]
) -> GroupDevices:
    rows = [
        DeviceRow(
            index=d.index,
            device_id=d.device_id,
            agent_id=agent_id,
            status=d.status,
            connected=d.connected,
            sending=d.sending,
            last_at=iso(d.last_at),
            last_payload=d.last_payload,
        )
        for agent_id, r in replies.items()
        if r is not None
        for d in r.devices
    ]
    rows.sort(key=lambda d: d.index)
    return GroupDevices(
        group=p.name,
        state=p.state,
        run_id=p.run_id,
        count=p.count,
        start=start,
        devices=rows,
        unanswered=sorted(a for a, r in replies.items() if r is None),
        watching_since=_since(replies),
        last_errors=p.last_errors + [r.last_error for r in replies.values() if r and r.last_error],
    )


def tail_doc(p: Placed, limit: int, replies: dict[str, wire.InspectReply | None]) -> GroupTail:
    lines = [
        TailLine(
            agent_id=agent_id,
            n=m.n,
            at=iso(m.at) or "",
            device_id=m.device_id,
            topic=m.topic,
            status=m.status,
            payload=m.payload,
            truncated=m.truncated,
        )
        for agent_id, r in replies.items()
        if r is not None
        for m in r.messages
    ]
    lines.sort(key=lambda m: (m.at, m.agent_id, m.n))
    return GroupTail(
        group=p.name,
        state=p.state,
        run_id=p.run_id,
        messages=lines[-limit:],
        unanswered=sorted(a for a, r in replies.items() if r is None),
        watching_since=_since(replies),
    )


def agent_ranges(org_id: int, agent_id: str) -> AgentRanges:
    agent = models.Agent.get_or_none(models.Agent.agent_id == agent_id, models.Agent.org == org_id)
    if agent is None:
        raise NotFound(f"agent {agent_id!r} not found")
    stats = {
        (s.group_id, s.run_id): s
        for s in models.GroupStats.select().where(models.GroupStats.agent == agent.id)
    }
    ranges = []
    for a in (
        models.Assignment.select(models.Assignment, models.Group)
        .join(models.Group)
        .where(models.Assignment.agent == agent.id)
        .order_by(models.Group.name, models.Assignment.index_start)
    ):
        s = stats.get((a.group_id, a.run_id))
        ranges.append(
            AgentRange(
                group=a.group.name,
                run_id=a.run_id,
                index_start=a.index_start,
                index_end=a.index_end,
                lease_until=iso(a.lease_until) or "",
                state=s.state if s else "",
                running=s.running if s else 0,
                sent=s.sent if s else 0,
                errors=s.errors if s else 0,
                last_error=s.last_error if s else "",
            )
        )
    return AgentRanges(
        agent_id=agent.agent_id,
        online=bool(agent.online),
        ranges=ranges,
        errors=[e for e in agent.last_errors.split("\n") if e],
    )
