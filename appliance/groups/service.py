"""Templates and groups: validate, place on agents, start, stop, report."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec

from agent import wire
from agent.errors import ScenarioError
from agent.template import parse_template
from appliance import models
from appliance.db import database
from appliance.entitlements import catalog
from appliance.errors import ApplianceError, Conflict, NotFound
from appliance.usage.service import group_device_ms


def put_template(org_id: int, name: str, raw: dict[str, Any]) -> tuple[models.Template, bool]:
    """Create or update a template; a changed body gets a new version."""
    try:
        tpl = parse_template(name, raw)
    except ScenarioError as e:
        raise ApplianceError(str(e)) from None
    # Key order is kept: payload fields go on the wire in the order the user wrote them.
    body = json.dumps(tpl.to_dict())
    with database.atomic():
        row = models.Template.get_or_none(
            models.Template.org == org_id, models.Template.name == name
        )
        if row is None:
            return models.Template.create(org=org_id, name=name, body=body), True
        if row.body != body:
            row.body, row.version, row.updated_at = body, row.version + 1, models.utcnow()
            row.save()
        return row, False


def template_doc(t: models.Template) -> dict[str, Any]:
    return {
        "name": t.name,
        "version": t.version,
        "spec": json.loads(t.body),
        "updated_at": t.updated_at.isoformat() + "Z",
    }


def get_template(org_id: int, name: str) -> models.Template:
    row = models.Template.get_or_none(models.Template.org == org_id, models.Template.name == name)
    if row is None:
        raise NotFound(f"template {name!r} not found")
    return row


class GroupSpec(msgspec.Struct, forbid_unknown_fields=True):
    template: str
    count: int
    seed: int | None = None
    entitlement: str | None = None


def put_group(org_id: int, name: str, spec: GroupSpec) -> tuple[models.Group, bool]:
    if spec.count < 1:
        raise ApplianceError("count: must be >= 1")
    if spec.entitlement:
        catalog.capacity(spec.entitlement)  # validates the name
    tpl = get_template(org_id, spec.template)
    with database.atomic():
        row = models.Group.get_or_none(models.Group.org == org_id, models.Group.name == name)
        if row is None:
            row = models.Group.create(
                org=org_id,
                name=name,
                template=tpl,
                count=spec.count,
                seed=spec.seed,
                entitlement=spec.entitlement or "",
            )
            return row, True
        if row.state == "running" and (row.count != spec.count or row.template_id != tpl.id):
            raise Conflict(f"group {name!r} is running; stop it before changing it")
        row.template, row.count, row.seed = tpl, spec.count, spec.seed
        row.entitlement = spec.entitlement or ""
        row.save()
        return row, False


def get_group(org_id: int, name: str) -> models.Group:
    row = models.Group.get_or_none(models.Group.org == org_id, models.Group.name == name)
    if row is None:
        raise NotFound(f"group {name!r} not found")
    return row


def _entitlement(group: models.Group) -> str:
    return group.entitlement or group.org.default_entitlement


def _check_capacity(group: models.Group) -> None:
    ent = _entitlement(group)
    cap = catalog.capacity(ent)
    running = [
        g
        for g in models.Group.select().where(
            models.Group.org == group.org_id,
            models.Group.state == "running",
            models.Group.id != group.id,
        )
        if _entitlement(g) == ent
    ]
    used = sum(g.count for g in running)
    if used + group.count > cap:
        raise Conflict(
            f"group {group.name!r}: {group.count} mocks do not fit entitlement {ent} "
            f"(capacity {cap}, {used} already running)"
        )


def _place(group: models.Group, lease_until: float) -> set[str]:
    """Split the group's index range over online agents by free capacity."""
    agents = list(
        models.Agent.select()
        .where(models.Agent.org == group.org_id, models.Agent.online == True)  # noqa: E712
        .order_by(models.Agent.id)
    )
    if not agents:
        raise Conflict(f"group {group.name!r}: no agent of this org is online")
    free = []
    for a in agents:
        used = sum(
            x.index_end - x.index_start
            for x in a.assignments.join(models.Group).where(
                models.Group.state == "running", models.Group.id != group.id
            )
        )
        free.append(max(0, a.capacity - used))
    if sum(free) < group.count:
        raise Conflict(
            f"group {group.name!r}: {group.count} mocks exceed the free capacity of the "
            f"online agents ({sum(free)})"
        )
    total_free, start, touched = sum(free), 0, set()
    remaining = group.count
    for i, (a, f) in enumerate(zip(agents, free, strict=True)):
        if remaining == 0 or f == 0:
            continue
        # Proportional to free capacity; the last agent with room takes the rest.
        share = (
            remaining
            if i == len(agents) - 1
            else min(f, remaining, -(-group.count * f // total_free))
        )
        if share <= 0:
            continue
        models.Assignment.create(
            group=group,
            agent=a,
            run_id=group.run_id,
            index_start=start,
            index_end=start + share,
            lease_until=lease_until,
        )
        start += share
        remaining -= share
        touched.add(a.agent_id)
    if remaining:
        raise Conflict(f"group {group.name!r}: could not place {remaining} mocks")
    return touched


def start_group(org_id: int, name: str, lease_s: int) -> tuple[models.Group, set[str]]:
    """Start a run; returns the agents whose desired state changed."""
    with database.atomic():
        group = get_group(org_id, name)
        if group.state == "running":
            return group, set()
        _check_capacity(group)
        group.run_id += 1
        group.state = "running"
        group.started_at, group.stopped_at = models.utcnow(), None
        group.save()
        models.Assignment.delete().where(models.Assignment.group == group.id).execute()
        touched = _place(group, time.time() + lease_s)
    return group, touched


def stop_group(org_id: int, name: str) -> tuple[models.Group, set[str]]:
    with database.atomic():
        group = get_group(org_id, name)
        touched = {
            a.agent.agent_id
            for a in models.Assignment.select(models.Assignment, models.Agent)
            .join(models.Agent)
            .where(models.Assignment.group == group.id)
        }
        if group.state == "running":
            group.state, group.stopped_at = "stopped", models.utcnow()
            group.save()
        models.Assignment.delete().where(models.Assignment.group == group.id).execute()
    return group, touched


def renew_leases(lease_s: int) -> set[str]:
    """Extend every running assignment's lease; the agents to republish to."""
    until = time.time() + lease_s
    with database.atomic():
        rows = list(
            models.Assignment.select(models.Assignment, models.Agent)
            .join(models.Agent)
            .switch(models.Assignment)
            .join(models.Group)
            .where(models.Group.state == "running")
        )
        if rows:
            models.Assignment.update(lease_until=until).where(
                models.Assignment.id.in_([r.id for r in rows])
            ).execute()
    return {r.agent.agent_id for r in rows}


def group_doc(group: models.Group) -> dict[str, Any]:
    stats = list(
        models.GroupStats.select().where(
            models.GroupStats.group == group.id, models.GroupStats.run_id == group.run_id
        )
    )
    hist = wire.Histogram()
    for s in stats:
        hist.merge(wire.decode(wire.Histogram, s.lateness))
    placement = [
        {
            "agent_id": a.agent.agent_id,
            "index_start": a.index_start,
            "index_end": a.index_end,
            "lease_until": a.lease_until,
        }
        for a in models.Assignment.select(models.Assignment, models.Agent)
        .join(models.Agent)
        .where(models.Assignment.group == group.id)
        .order_by(models.Assignment.index_start)
    ]
    return {
        "name": group.name,
        "template": group.template.name,
        "count": group.count,
        "seed": group.seed,
        "entitlement": _entitlement(group),
        "state": group.state,
        "run_id": group.run_id,
        "running": sum(s.running for s in stats),
        "sent": sum(s.sent for s in stats),
        "errors": sum(s.errors for s in stats),
        "lateness_ms": {
            "p50": hist.percentile_ms(50),
            "p99": hist.percentile_ms(99),
            "max": round(hist.max_us / 1000, 3),
        },
        "agents_reporting": len(stats),
        "agents_stopped": sum(1 for s in stats if s.state == "stopped"),
        "last_errors": [s.last_error for s in stats if s.last_error],
        "device_seconds": group_device_ms(group.id, group.run_id) / 1000,
        "placement": placement,
    }
