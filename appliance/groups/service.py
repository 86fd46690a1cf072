"""Templates and groups: validate, place on agents, start, stop, report."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, NamedTuple, TypeVar

import msgspec
import peewee as pw

from agent import wire
from agent.errors import ScenarioError
from agent.report import behaviour, latency_ms
from agent.template import parse_template
from appliance import models
from appliance.audit import service as audit
from appliance.contract.groups import (
    Commands,
    Group,
    GroupSpec,
    LatenessMax,
    Placed,
    StatusFigures,
    Template,
    Transitions,
    Verify,
)
from appliance.db import database
from appliance.entitlements import catalog
from appliance.entitlements import service as entitlements
from appliance.errors import ApplianceError, Conflict, NotFound
from appliance.fleet import history, placement
from appliance.schedule import clock
from appliance.targets import service as targets
from appliance.targets.policy import Rules
from appliance.usage.service import group_device_ms, sum_device_ms

log = logging.getLogger(__name__)


def put_template(
    org_id: int, name: str, raw: dict[str, Any], rules: Rules
) -> tuple[models.Template, bool]:
    """Create or update a template; a changed body gets a new version."""
    try:
        tpl = parse_template(name, raw)
    except ScenarioError as e:
        raise ApplianceError(str(e)) from None
    targets.check_template(org_id, raw, f"templates.{name}", rules)
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


def list_templates(org_id: int) -> list[Template]:
    """An org's templates, by name, as their API documents."""
    rows = models.Template.select().where(models.Template.org == org_id)
    return [template_doc(r) for r in rows.order_by(models.Template.name)]


def template_doc(t: models.Template) -> Template:
    return Template(
        name=t.name,
        version=t.version,
        spec=json.loads(t.body),
        updated_at=t.updated_at.isoformat() + "Z",
    )


def get_template(org_id: int, name: str) -> models.Template:
    row = models.Template.get_or_none(models.Template.org == org_id, models.Template.name == name)
    if row is None:
        raise NotFound(f"template {name!r} not found")
    return row


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


def apply_group(
    org_id: int, name: str, spec: GroupSpec, lease_s: int
) -> tuple[models.Group, bool, set[str]]:
    """PUT semantics: create or update; a new count on a running group rescales it."""
    touched: set[str] = set()
    row = models.Group.get_or_none(models.Group.org == org_id, models.Group.name == name)
    if row is not None and row.state == "running" and row.count != spec.count:
        if spec.template != row.template.name:
            raise Conflict(f"group {name!r} is running; stop it before changing its template")
        row, touched = scale_group(org_id, name, spec.count, lease_s)
    row, created = put_group(org_id, name, spec)
    return row, created, touched


def scale_group(org_id: int, name: str, count: int, lease_s: int) -> tuple[models.Group, set[str]]:
    """Change the device count; a running group keeps every range that stays.

    Growing places only the new top indices; shrinking trims the top ranges. Other
    ranges keep their agent, run and devices (no restart).
    """
    if count < 1:
        raise ApplianceError("count: must be >= 1")
    with database.atomic():
        placement.lock_org(org_id)  # one placing transaction of this org at a time
        group = get_group(org_id, name)
        old = group.count
        if count == old:
            return group, set()
        group.count = count
        if group.state != "running":
            group.save()
            return group, set()
        if count > old:
            _check_capacity(group)
        group.save()
        touched = placement.rescale(group, old, count, clock.system_seconds() + lease_s)
    return group, touched


def get_group(org_id: int, name: str) -> models.Group:
    row = models.Group.get_or_none(models.Group.org == org_id, models.Group.name == name)
    if row is None:
        raise NotFound(f"group {name!r} not found")
    return row


def _entitlement(group: models.Group) -> str:
    return group.entitlement or group.org.default_entitlement


def _check_capacity(group: models.Group) -> None:
    """409 unless ``group.count`` mocks fit its entitlement now (free tier, flat window, tier)."""
    entitlements.check_capacity(group)


def _place(group: models.Group, lease_until: float) -> set[str]:
    """Split the group's index range over online agents by free capacity."""
    return placement.place(group, 0, group.count, lease_until)


def start_group(
    org_id: int, name: str, lease_s: int, rules: Rules
) -> tuple[models.Group, set[str]]:
    """Start a run; returns the agents whose desired state changed."""
    # Targets again: a grant or proof may be gone, a name may point elsewhere now.
    # Outside the transaction: resolving names must not hold the write lock.
    tpl = get_group(org_id, name).template
    targets.check_template(org_id, json.loads(tpl.body), f"templates.{tpl.name}", rules)
    with database.atomic():
        placement.lock_org(org_id)  # one placing transaction of this org at a time
        group = get_group(org_id, name)
        if group.state == "running":
            return group, set()
        _check_capacity(group)
        group.run_id += 1
        group.state = "running"
        group.started_at, group.stopped_at = models.utcnow(), None
        group.save()
        entitlements.run_started(group)  # the interval billing rates
        history.group_ended(group.id)
        models.Assignment.delete().where(models.Assignment.group == group.id).execute()
        touched = _place(group, clock.system_seconds() + lease_s)
    return group, touched


def stop_group(org_id: int, name: str) -> tuple[models.Group, set[str]]:
    with database.atomic():
        placement.lock_org(org_id)  # one placing transaction of this org at a time
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
            entitlements.run_stopped(group)
        history.group_ended(group.id)
        models.Assignment.delete().where(models.Assignment.group == group.id).execute()
    return group, touched


def stop_over_capacity(now: dt.datetime | None = None) -> set[str]:
    """Stop the groups their entitlement no longer admits; the agents to republish to."""
    touched: set[str] = set()
    for over in entitlements.over_capacity(now):
        _, agents = stop_group(over.org_id, over.group)
        touched |= agents
        audit.record(
            "group.stop",
            actor=audit.SCHEDULER,
            org_id=over.org_id,
            target=f"group:{over.group}",
            before={"state": "running", "entitlement": over.entitlement, "count": over.count},
            after={"state": "stopped", "reason": over.reason},
        )
        log.warning("stopped group %s of org %s: %s", over.group, over.org_name, over.reason)
    return touched


def renew_leases(lease_s: int) -> set[str]:
    """Extend every running assignment's lease; the agents to republish to."""
    until = clock.system_seconds() + lease_s
    a = models.Assignment
    with database.atomic():
        rows = list(
            a.select(a.id, models.Agent.agent_id)
            .join(models.Agent)
            .switch(a)
            .join(models.Group)
            .where(models.Group.state == "running", a.run_id == models.Group.run_id)
            .tuples()
        )
        ids = [pk for pk, _ in rows]
        for i in range(0, len(ids), 500):  # IN lists SQLite takes, however big the fleet
            a.update(lease_until=until).where(a.id.in_(ids[i : i + 500])).execute()
    return {agent_id for _, agent_id in rows}


T = TypeVar("T", "Figures", "Range")


class Figures(NamedTuple):
    """What a group's document needs of one counters row (``GroupStats`` and its agent)."""

    group_id: int
    run_id: int
    agent_pk: int
    online: bool
    running: int
    state: str
    sent: int
    errors: int
    lateness: str
    report: str
    last_error: str


class Range(NamedTuple):
    """What a group's document needs of one assignment and its agent."""

    group_id: int
    agent_id: str
    online: bool
    index_start: int
    index_end: int
    lease_until: float


# Plain tuples of the columns used: a thousand agents' rows as models (every column of
# the counters and of their agent) cost most of GET /groups.
def _figures() -> pw.ModelSelect:
    gs, a = models.GroupStats, models.Agent
    return gs.select(
        gs.group,
        gs.run_id,
        gs.agent,
        a.online,
        gs.running,
        gs.state,
        gs.sent,
        gs.errors,
        gs.lateness,
        gs.report,
        gs.last_error,
    ).join(a)


def _ranges() -> pw.ModelSelect:
    asg, a = models.Assignment, models.Agent
    return (
        asg.select(asg.group, a.agent_id, a.online, asg.index_start, asg.index_end, asg.lease_until)
        .join(a)
        .order_by(asg.index_start)
    )


def _rows(query: pw.ModelSelect, kind: type[T]) -> list[T]:
    """Rows of :func:`_figures` or :func:`_ranges` straight from the driver: peewee's
    conversion of each value was a third of GET /groups. SQLite's flags come as 0/1."""
    flag = kind._fields.index("online")
    rows = database.execute(query).fetchall()
    return [kind(*row[:flag], bool(row[flag]), *row[flag + 1 :]) for row in rows]


def running_now(group: models.Group, stats: list[Figures]) -> int:
    """Mocks running in the group's current run: none once it is stopped, none on an
    agent that went offline, whatever they last reported."""
    if group.state != "running":
        return 0
    return sum(s.running for s in stats if s.run_id == group.run_id and s.online)


def list_groups(org_id: int) -> list[Group]:
    """An org's groups by name, as their API documents: four queries, whatever their number.

    The TUI polls this every few seconds; one query per group and figure would
    grow with the fleet (see tests/integration/test_list_queries.py).
    """
    g = models.Group
    rows = list(
        g.select(g, models.Template, models.Org)
        .join(models.Template)
        .switch(g)
        .join(models.Org)
        .where(g.org == org_id)
        .order_by(g.name)
    )
    stats: dict[int, list[Figures]] = {r.id: [] for r in rows}
    placed: dict[int, list[Range]] = {r.id: [] for r in rows}
    device_ms: dict[int, int] = {}
    if rows:
        gs = models.GroupStats
        current_run = (gs.group == g.id) & (gs.run_id == g.run_id)
        for f in _rows(
            _figures().switch(gs).join(g, on=current_run).where(g.org == org_id), Figures
        ):
            stats[f.group_id].append(f)
        a = models.Assignment
        for r in _rows(_ranges().switch(a).join(g).where(g.org == org_id), Range):
            placed[r.group_id].append(r)
        u = models.Usage
        device_ms = dict(
            u.select(u.group, sum_device_ms())
            .join(g, on=(u.group == g.id) & (u.run_id == g.run_id))
            .where(g.org == org_id)
            .group_by(u.group)
            .tuples()
        )
    return [
        group_doc(
            r, stats=stats[r.id], assignments=placed[r.id], device_ms=int(device_ms.get(r.id) or 0)
        )
        for r in rows
    ]


def group_doc(
    group: models.Group,
    *,
    stats: list[Figures] | None = None,
    assignments: list[Range] | None = None,
    device_ms: int | None = None,
) -> Group:
    """The API document of one group; the keywords take what :func:`list_groups` read."""
    if stats is None:
        gs = models.GroupStats
        stats = _rows(_figures().where(gs.group == group.id, gs.run_id == group.run_id), Figures)
    if assignments is None:
        assignments = _rows(_ranges().where(models.Assignment.group == group.id), Range)
    if device_ms is None:
        device_ms = group_device_ms(group.id, group.run_id)
    hist = wire.Histogram()
    merged = wire.GroupReport(group_id=group.id, run_id=group.run_id, running=0)
    for s in stats:
        hist.merge(wire.decode(wire.Histogram, s.lateness))
        if s.report:
            merged.merge_behaviour(wire.decode(wire.GroupReport, s.report))
    placed = [
        Placed(
            agent_id=a.agent_id,
            agent_online=a.online,
            index_start=a.index_start,
            index_end=a.index_end,
            lease_until=a.lease_until,
        )
        for a in assignments
    ]
    # One row per agent process (incarnation): counters add up across restarts; an
    # agent is done with the run when every process of it says stopped.
    per_agent: dict[int, list[Figures]] = {}
    for s in stats:
        per_agent.setdefault(s.agent_pk, []).append(s)
    # Merged across agents: faults, statuses, transitions, commands, verify.
    done = behaviour(merged)
    return Group(
        name=group.name,
        template=group.template.name,
        count=group.count,
        seed=group.seed,
        entitlement=_entitlement(group),
        state=group.state,
        run_id=group.run_id,
        running=running_now(group, stats),
        sent=sum(s.sent for s in stats),
        errors=sum(s.errors for s in stats),
        lateness_ms=msgspec.convert(latency_ms(hist), LatenessMax),
        agents_reporting=len(per_agent),
        agents_stopped=sum(
            1 for rows in per_agent.values() if all(s.state == "stopped" for s in rows)
        ),
        last_errors=[s.last_error for s in stats if s.last_error],
        device_seconds=int(device_ms) / 1000,
        placement=placed,
        faults=done["faults"],
        statuses=msgspec.convert(done["statuses"], dict[str, StatusFigures]),
        transitions=msgspec.convert(done["transitions"], Transitions),
        commands=msgspec.convert(done["commands"], Commands),
        reconnects=done["reconnects"],
        skipped=done["skipped"],
        verify=msgspec.convert(done["verify"], Verify | None),
        ready=merged.ready,
    )
