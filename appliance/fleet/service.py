"""Agents: enrollment, presence, reports, and the desired state each one gets."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from urllib.parse import urlsplit, urlunsplit

import peewee as pw

from agent import wire
from appliance import auth, models
from appliance.contract.fleet import Agent, Enrolled
from appliance.db import database
from appliance.errors import ApplianceError, Unauthorized
from appliance.fleet import acl
from appliance.schedule import clock


def create_enrollment_token(org_id: int, ttl_s: int = 3600) -> tuple[str, dt.datetime]:
    if not 60 <= ttl_s <= 30 * 86400:
        raise ApplianceError("ttl_seconds: must be between 60 and 2592000 (30 days)")
    token = auth.new_secret("mme")
    expires = models.utcnow() + dt.timedelta(seconds=ttl_s)
    models.EnrollmentToken.create(org=org_id, token_hash=auth.digest(token), expires_at=expires)
    return token, expires


def public_mqtt_url(url: str) -> str:
    """The bus URL without credentials: what an agent may be told."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _new_agent(org_id: int, capacity: int, hostname: str, arch: str) -> Enrolled:
    """A new agent and its bus account: username = agent id, only the hash is kept."""
    agent_id = "a" + secrets.token_hex(6)
    password = acl.new_password()
    models.Agent.create(
        agent_id=agent_id,
        org=org_id,
        mqtt_username=agent_id,
        mqtt_password_hash=acl.hash_password(password),
        capacity=capacity,
        hostname=hostname[:255],
        arch=arch[:255],
    )
    return Enrolled(agent_id=agent_id, mqtt_url="", username=agent_id, password=password)


def enroll(token: str, *, capacity: int, hostname: str, arch: str, mqtt_url: str) -> Enrolled:
    """Trade a one-time token for an agent id and MQTT credentials (shown once)."""
    if not 1 <= capacity <= 1_000_000:
        raise ApplianceError("capacity: must be between 1 and 1000000")
    with database.atomic():
        row = models.EnrollmentToken.get_or_none(
            models.EnrollmentToken.token_hash == auth.digest(token)
        )
        if row is None or row.used_at is not None:
            raise Unauthorized("enrollment token unknown or already used")
        if row.expires_at < models.utcnow():
            raise Unauthorized("enrollment token expired; ask an admin for a new one")
        # Single use even under concurrent enrollments: only one UPDATE wins.
        won = (
            models.EnrollmentToken.update(used_at=models.utcnow())
            .where(models.EnrollmentToken.id == row.id, models.EnrollmentToken.used_at.is_null())
            .execute()
        )
        if not won:
            raise Unauthorized("enrollment token unknown or already used")
        enrolled = _new_agent(row.org_id, capacity, hostname, arch)
    enrolled.mqtt_url = public_mqtt_url(mqtt_url)
    return enrolled


def local_agent(org_id: int, capacity: int, mqtt_url: str) -> Enrolled:
    """The agent inside ``mockmock up`` enrolls as a board does, with a one-time token."""
    token, _ = create_enrollment_token(org_id, ttl_s=60)
    return enroll(token, capacity=capacity, hostname="local", arch="", mqtt_url=mqtt_url)


def agent_by_id(agent_id: str) -> models.Agent | None:
    return models.Agent.get_or_none(models.Agent.agent_id == agent_id)


def on_presence(agent_id: str, p: wire.Presence) -> bool:
    """Record presence; True when the agent just came online."""
    agent = agent_by_id(agent_id)
    if agent is None:
        return False
    was = agent.online
    agent.online = p.status == "online"
    agent.last_seen = models.utcnow()
    if agent.online:
        agent.offline_since = None
    elif agent.offline_since is None:  # a replayed retained LWT keeps the first time
        agent.offline_since = agent.last_seen
    if p.status == "online":
        agent.version, agent.hostname, agent.arch = p.version, p.hostname, p.arch
        agent.cores, agent.mem_mb = p.cores, p.mem_mb
        if p.capacity:
            agent.capacity = p.capacity
    agent.save(only=agent.dirty_fields)  # never an ingest's acked_seq back
    if agent.online != was:  # a presence change is an audited agent event
        from appliance.audit import service as audit

        audit.record(
            f"agent.{p.status}",
            actor=f"agent:{agent_id}",
            org_id=agent.org_id,
            target=f"agent:{agent_id}",
            before={"online": was},
            after={"online": agent.online, "hostname": agent.hostname, "version": agent.version},
        )
    return agent.online and not was


MAX_COUNTER = 2**53
"""Counters an agent reports are clamped here: exact in any JSON reader, no sum overflows."""


def on_reported(agent_id: str, r: wire.Reported) -> None:
    """Store an agent's report: its process's counters, and its predecessors' last ones.

    Counters are kept per incarnation (agent process), so a restarted agent's figures
    add to those of the process it replaced; only the newest incarnation runs mocks.
    """
    with database.atomic():
        agent = agent_by_id(agent_id)
        if agent is None:
            return
        mine = agent.incarnation or ""
        current = (
            r.incarnation == mine
            or r.started_at >= (agent.incarnation_at or 0.0)
            # its own journal says which process it replaced, whatever the board's clock
            or mine in {p.incarnation for p in r.previous}
        )
        if not current:  # a late report of a process that was replaced since
            _store_counters(agent, r.incarnation, r.started_at, r.groups, alive=False)
            return
        if r.incarnation != mine:
            # The processes before this one run nothing any more.
            gs = models.GroupStats
            gs.update(running=0, state="stopped").where(
                gs.agent == agent.id,
                gs.incarnation != r.incarnation,
                (gs.running != 0) | (gs.state != "stopped"),
            ).execute()
            agent.incarnation, agent.incarnation_at = r.incarnation, r.started_at
        agent.reported_revision = r.revision
        agent.cpu_percent, agent.rss_mb = r.cpu_percent, r.rss_mb
        agent.last_errors = "\n".join(e[:500] for e in r.errors[-10:])
        agent.last_seen = models.utcnow()
        agent.save(only=agent.dirty_fields)  # never an ingest's acked_seq back
        _store_counters(agent, r.incarnation, r.started_at, r.groups, alive=True)
        for past in r.previous[:8]:
            if past.incarnation != r.incarnation:
                _store_counters(agent, past.incarnation, past.started_at, past.groups, alive=False)


def _clamp(n: int) -> int:
    return min(max(n, 0), MAX_COUNTER)


def _histogram(h: wire.Histogram) -> str:
    # Microseconds up to 2^63 fill under 900 buckets; more is not an agent's histogram.
    if len(h.buckets) > 1000:
        h = wire.Histogram()
    return wire.encode(h).decode()


def _store_counters(
    agent: models.Agent,
    incarnation: str,
    started_at: float,
    groups: list[wire.GroupReport],
    *,
    alive: bool,
) -> None:
    """Last values per (group, run) of one incarnation; ``alive``: it is the one running."""
    group_ids = {g.group_id for g in groups}
    if not group_ids:
        return
    known = {
        g.id
        for g in models.Group.select(models.Group.id).where(
            models.Group.id.in_(group_ids), models.Group.org == agent.org_id
        )
    }
    if not known:
        return
    a = models.Assignment
    # Running mocks cannot exceed what is assigned to the agent now (none once stopped).
    assigned = {
        (gid, run): int(n or 0)
        for gid, run, n in a.select(a.group, a.run_id, pw.fn.SUM(a.index_end - a.index_start))
        .where(a.agent == agent.id)
        .group_by(a.group, a.run_id)
        .tuples()
    }
    gs = models.GroupStats
    rows = {
        (row.group_id, row.run_id): row
        for row in gs.select().where(
            gs.agent == agent.id, gs.incarnation == incarnation, gs.group.in_(known)
        )
    }
    for g in groups:
        if g.group_id not in known:
            continue
        row = rows.get((g.group_id, g.run_id))
        sent, errors = _clamp(g.sent), _clamp(g.errors)
        if row is not None and (sent < row.sent or errors < row.errors):
            continue  # an older report of the same process: its counters only grow
        same = row is not None and (sent, errors, "stopped") == (row.sent, row.errors, row.state)
        if not alive and same:
            continue  # repeated in every report of its successor; nothing new
        values = dict(
            running=min(_clamp(g.running), assigned.get((g.group_id, g.run_id), 0)) if alive else 0,
            state=g.state if alive else "stopped",
            sent=sent,
            errors=errors,
            lateness=_histogram(g.lateness),
            reason=(g.reason if alive or g.reason else "agent restarted")[:255],
            last_error=g.last_error[:2000],
            report=wire.encode(g).decode(),
            updated_at=models.utcnow(),
            incarnation_at=started_at,
        )
        if row is not None:
            gs.update(**values).where(gs.id == row.id).execute()
        else:
            gs.create(
                group=g.group_id, run_id=g.run_id, agent=agent.id, incarnation=incarnation, **values
            )


def desired_for(agent: models.Agent, *, bump: bool = True) -> wire.Desired:
    """The full desired state of one agent, from its assignments."""
    rows = (
        models.Assignment.select(models.Assignment, models.Group, models.Template)
        .join(models.Group)
        .join(models.Template)
        .where(models.Assignment.agent == agent.id, models.Group.state == "running")
    )
    assignments = [
        wire.Assignment(
            group_id=a.group.id,
            group=a.group.name,
            run_id=a.run_id,
            template_name=a.group.template.name,
            template=json.loads(a.group.template.body),
            index_start=a.index_start,
            index_end=a.index_end,
            seed=a.group.seed,
            lease_until=a.lease_until,
        )
        for a in rows
    ]
    if bump:
        agent.revision += 1
        models.Agent.update(revision=agent.revision).where(models.Agent.id == agent.id).execute()
    return wire.Desired(
        revision=agent.revision, assignments=assignments, issued_at=clock.system_seconds()
    )


def all_agent_ids() -> list[str]:
    return [a.agent_id for a in models.Agent.select(models.Agent.agent_id)]


def list_agents(org_id: int) -> list[Agent]:
    from appliance.fleet.placement import assigned_per_agent

    used = assigned_per_agent(org_id)
    out = []
    for a in models.Agent.select().where(models.Agent.org == org_id).order_by(models.Agent.id):
        assigned = used.get(a.id, 0)
        out.append(
            Agent(
                agent_id=a.agent_id,
                hostname=a.hostname,
                arch=a.arch,
                version=a.version,
                online=a.online,
                offline_since=a.offline_since.isoformat() + "Z" if a.offline_since else None,
                cores=a.cores,
                mem_mb=a.mem_mb,
                capacity=a.capacity,
                assigned=assigned,
                free=max(0, a.capacity - assigned),
                cpu_percent=a.cpu_percent,
                rss_mb=a.rss_mb,
                revision=a.revision,
                reported_revision=a.reported_revision,
                acked_seq=a.acked_seq,
                errors=[e for e in a.last_errors.split("\n") if e],
                last_seen=a.last_seen.isoformat() + "Z" if a.last_seen else None,
            )
        )
    return out
