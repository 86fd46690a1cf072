"""One read of the fleet's figures, shared by /metrics and the live feed.

A handful of grouped queries whatever the fleet's size (no query per group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import peewee as pw

from agent import wire
from appliance import models
from appliance.schedule import clock
from appliance.usage import service as usage


@dataclass(frozen=True)
class Counter:
    """One agent's latest report of a group's current run: the input of a send rate."""

    agent: int  # Agent row id
    at: float  # epoch seconds the report was stored
    sent: int
    online: bool


@dataclass
class GroupFigures:
    org: str
    name: str
    state: str
    count: int
    run_id: int
    running: int = 0  # mocks running in the current run
    sent: int = 0  # current run
    errors: int = 0  # current run
    sent_total: int = 0  # every run: a counter that never goes down
    errors_total: int = 0
    device_seconds: float = 0.0  # every run, from the billable usage records
    lateness: wire.Histogram = field(default_factory=wire.Histogram)
    id: int = 0
    counters: list[Counter] = field(default_factory=list)  # current run, one per agent


@dataclass
class Snapshot:
    at: str
    agents: list[dict[str, Any]]
    groups: list[GroupFigures]


def take(org_id: int | None) -> Snapshot:
    """Figures for one org, or for every org (``None``: an appliance superuser)."""
    agents_q = models.Agent.select(models.Agent, models.Org.name).join(models.Org)
    groups_q = models.Group.select(models.Group, models.Org.name).join(models.Org)
    if org_id is not None:
        agents_q = agents_q.where(models.Agent.org == org_id)
        groups_q = groups_q.where(models.Group.org == org_id)
    assigned: dict[int, int] = {
        agent: int(n or 0)
        for agent, n in models.Assignment.select(
            models.Assignment.agent,
            pw.fn.SUM(models.Assignment.index_end - models.Assignment.index_start),
        )
        .join(models.Group)
        .where(models.Group.state == "running")
        .group_by(models.Assignment.agent)
        .tuples()
    }
    agent_rows = list(agents_q.order_by(models.Agent.id))
    online = {a.id: bool(a.online) for a in agent_rows}
    agents = [
        {
            "agent_id": a.agent_id,
            "org": a.org.name,
            "hostname": a.hostname,
            "online": a.online,
            "capacity": a.capacity,
            "assigned": assigned.get(a.id, 0),
            "cpu_percent": a.cpu_percent,
            "rss_mb": a.rss_mb,
            "last_seen": None if a.last_seen is None else clock.aware(a.last_seen).isoformat(),
        }
        for a in agent_rows
    ]
    groups = {
        g.id: GroupFigures(
            org=g.org.name, name=g.name, state=g.state, count=g.count, run_id=g.run_id, id=g.id
        )
        for g in groups_q.order_by(models.Group.id)
    }
    if groups:
        ids = list(groups)
        stats = models.GroupStats.select(
            models.GroupStats.group,
            models.GroupStats.run_id,
            models.GroupStats.running,
            models.GroupStats.sent,
            models.GroupStats.errors,
            models.GroupStats.lateness,
            models.GroupStats.agent,
            models.GroupStats.updated_at,
        ).where(models.GroupStats.group.in_(ids))
        # An agent's processes (incarnations) add up to one counter per agent, the input
        # of its send rate: sent summed, at = its newest report.
        per_agent: dict[tuple[int, int], list[float]] = {}
        for s in stats:
            # Rows are per agent process: a restarted agent's counters add to the old ones.
            f = groups[s.group_id]
            f.sent_total += s.sent
            f.errors_total += s.errors
            if s.run_id == f.run_id:
                f.sent += s.sent
                f.errors += s.errors
                # the rule of appliance.groups.service.running_now
                if f.state == "running" and online.get(s.agent_id, False):
                    f.running += s.running
                f.lateness.merge(wire.decode(wire.Histogram, s.lateness))
                at = clock.aware(s.updated_at).timestamp()
                acc = per_agent.setdefault((s.group_id, s.agent_id), [0, 0.0])
                acc[0] += s.sent
                acc[1] = max(acc[1], at)
        for (gid, agent), (sent, at) in per_agent.items():
            groups[gid].counters.append(
                Counter(agent=agent, at=at, sent=int(sent), online=online.get(agent, False))
            )
        for gid, ms in usage.sum_ms_by_group(ids).items():
            groups[gid].device_seconds = ms / 1000
    return Snapshot(at=clock.now().isoformat(), agents=agents, groups=list(groups.values()))
