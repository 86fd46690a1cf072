"""Agents: enrollment, presence, reports, and the desired state each one gets."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from urllib.parse import urlsplit, urlunsplit

import peewee as pw

from agent import wire
from appliance import auth, bulk, models
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
    """Store an agent's report: its process's counters, and its predecessors' last ones."""
    on_reported_many([(agent_id, r)])


def on_reported_many(reports: list[tuple[str, wire.Reported]]) -> None:
    """Store reports in arrival order, as one by one, in a fixed number of queries.

    Counters are kept per incarnation (agent process), so a restarted agent's figures
    add to those of the process it replaced; only the newest incarnation runs mocks.
    Agents, groups, assignments and counters are read once for the batch; each report
    sees the ones before it (in memory); the writes go last, in bulk.
    """
    if not reports:
        return
    with database.atomic():
        batch = _Reports(reports)
        for agent_id, r in reports:
            agent = batch.agents.get(agent_id)
            if agent is None:
                continue
            mine = agent.incarnation or ""
            current = (
                r.incarnation == mine
                or r.started_at >= (agent.incarnation_at or 0.0)
                # its own journal says which process it replaced, whatever the board's clock
                or mine in {p.incarnation for p in r.previous}
            )
            if not current:  # a late report of a process that was replaced since
                batch.store(agent, r.incarnation, r.started_at, r.groups, alive=False)
                continue
            if r.incarnation != mine:
                batch.stop_others(agent, r.incarnation)  # they run nothing any more
                agent.incarnation, agent.incarnation_at = r.incarnation, r.started_at
            agent.reported_revision = r.revision
            agent.cpu_percent, agent.rss_mb = r.cpu_percent, r.rss_mb
            agent.last_errors = "\n".join(e[:500] for e in r.errors[-10:])
            agent.last_seen = models.utcnow()
            batch.reported[agent.id] = agent
            batch.store(agent, r.incarnation, r.started_at, r.groups, alive=True)
            for past in r.previous[:8]:
                if past.incarnation != r.incarnation:
                    batch.store(agent, past.incarnation, past.started_at, past.groups, alive=False)
        batch.write()


def _clamp(n: int) -> int:
    return min(max(n, 0), MAX_COUNTER)


def _histogram(h: wire.Histogram) -> str:
    # Microseconds up to 2^63 fill under 900 buckets; more is not an agent's histogram.
    if len(h.buckets) > 1000:
        h = wire.Histogram()
    return wire.encode(h).decode()


CHUNK = 500  # ids per IN list


def _chunks(items: list) -> list[list]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


StatsKey = tuple[int, str, int, int]  # agent pk, incarnation, group id, run id


class _Reports:
    """What a batch of reports reads once, and the writes it owes."""

    # Agent columns a report sets: never an ingest's acked_seq back.
    AGENT_FIELDS = (
        models.Agent.incarnation,
        models.Agent.incarnation_at,
        models.Agent.reported_revision,
        models.Agent.cpu_percent,
        models.Agent.rss_mb,
        models.Agent.last_errors,
        models.Agent.last_seen,
    )

    def __init__(self, reports: list[tuple[str, wire.Reported]]) -> None:
        a, g, gs, asg = models.Agent, models.Group, models.GroupStats, models.Assignment
        ids = sorted({agent_id for agent_id, _ in reports})
        self.agents = {
            row.agent_id: row
            for chunk in _chunks(ids)
            for row in a.select().where(a.agent_id.in_(chunk))
        }
        self.reported: dict[int, models.Agent] = {}
        group_ids: set[int] = set()
        incarnations: set[str] = set()
        for _, r in reports:
            incarnations.add(r.incarnation)
            group_ids |= {x.group_id for x in r.groups}
            for past in r.previous[:8]:
                incarnations.add(past.incarnation)
                group_ids |= {x.group_id for x in past.groups}
        self.org_of: dict[int, int] = {}  # group id: its org
        if group_ids:
            q = g.select(g.id, g.org).where(g.id.in_(sorted(group_ids)))
            self.org_of = dict(q.tuples())
        pks = sorted(row.id for row in self.agents.values())
        self.assigned: dict[tuple[int, int, int], int] = {}
        self.stats: dict[StatsKey, dict] = {}
        self.dirty: set[StatsKey] = set()
        self.new_incarnations: dict[int, set[str]] = {}  # agent pk: processes it started
        if not self.org_of or not pks:
            return
        for chunk in _chunks(pks):
            rows = (
                asg.select(
                    asg.agent, asg.group, asg.run_id, pw.fn.SUM(asg.index_end - asg.index_start)
                )
                .where(asg.agent.in_(chunk), asg.group.in_(sorted(self.org_of)))
                .group_by(asg.agent, asg.group, asg.run_id)
                .tuples()
            )
            self.assigned.update({(pk, gid, run): int(n or 0) for pk, gid, run, n in rows})
            rows = (
                gs.select(
                    gs.agent,
                    gs.incarnation,
                    gs.group,
                    gs.run_id,
                    gs.sent,
                    gs.errors,
                    gs.state,
                    gs.running,
                )
                .where(
                    gs.agent.in_(chunk),
                    gs.group.in_(sorted(self.org_of)),
                    gs.incarnation.in_(sorted(incarnations)),
                )
                .tuples()
            )
            for pk, inc, gid, run, sent, errors, state, running in rows:
                self.stats[(pk, inc, gid, run)] = dict(
                    sent=sent, errors=errors, state=state, running=running
                )

    def stop_others(self, agent: models.Agent, incarnation: str) -> None:
        """Every other incarnation of the agent stops running: pending rows now, stored
        ones in :meth:`write` (one read and one update for the whole batch)."""
        self.new_incarnations.setdefault(agent.id, set()).add(incarnation)
        for key, row in self.stats.items():
            if key[0] == agent.id and key[1] is not None and key[1] != incarnation:
                row["running"], row["state"] = 0, "stopped"

    def _stop_stored(self) -> None:
        # A stored row stops if any incarnation the batch started is not its own
        # (NULL is nobody's: as in SQL, such a row is left alone).
        gs = models.GroupStats
        pks = sorted(self.new_incarnations)
        ids = []
        for chunk in _chunks(pks):
            q = gs.select(gs.id, gs.agent, gs.incarnation).where(
                gs.agent.in_(chunk), (gs.running != 0) | (gs.state != "stopped")
            )
            ids += [
                pk
                for pk, agent_pk, inc in q.tuples()
                if inc is not None and self.new_incarnations[agent_pk] - {inc}
            ]
        for chunk in _chunks(ids):
            gs.update(running=0, state="stopped").where(gs.id.in_(chunk)).execute()

    def store(
        self,
        agent: models.Agent,
        incarnation: str,
        started_at: float,
        groups: list[wire.GroupReport],
        *,
        alive: bool,
    ) -> None:
        """Last values per (group, run) of one incarnation; ``alive``: it is the one running."""
        for g in groups:
            if self.org_of.get(g.group_id) != agent.org_id:
                continue
            key = (agent.id, incarnation, g.group_id, g.run_id)
            row = self.stats.get(key)
            sent, errors = _clamp(g.sent), _clamp(g.errors)
            if row is not None and (sent < row["sent"] or errors < row["errors"]):
                continue  # an older report of the same process: its counters only grow
            same = row is not None and (sent, errors, "stopped") == (
                row["sent"],
                row["errors"],
                row["state"],
            )
            if not alive and same:
                continue  # repeated in every report of its successor; nothing new
            # Running mocks cannot exceed what is assigned to the agent now (none once stopped).
            assigned = self.assigned.get((agent.id, g.group_id, g.run_id), 0)
            self.stats[key] = dict(
                running=min(_clamp(g.running), assigned) if alive else 0,
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
            self.dirty.add(key)

    def write(self) -> None:
        self._stop_stored()  # before the upsert: the batch's own rows are final there
        agents = [self.reported[pk] for pk in sorted(self.reported)]
        bulk.update_rows(models.Agent, agents, self.AGENT_FIELDS)
        if not self.dirty:
            return
        gs = models.GroupStats
        rows = [
            dict(agent=pk, incarnation=inc, group=gid, run_id=run, **self.stats[pk, inc, gid, run])
            for pk, inc, gid, run in sorted(self.dirty)
        ]
        key = ("agent", "incarnation", "group", "run_id")
        values = [gs._meta.fields[name] for name in rows[0] if name not in key]
        for i in range(0, len(rows), 200):
            # One statement for new rows and changed ones: the counters' unique key.
            gs.insert_many(rows[i : i + 200]).on_conflict(
                conflict_target=[gs.group, gs.run_id, gs.agent, gs.incarnation],
                preserve=values,
            ).execute()


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
    m = models.Agent
    # Plain tuples of the columns shown: a thousand models cost more than the answer.
    rows = (
        m.select(
            m.id,
            m.agent_id,
            m.hostname,
            m.arch,
            m.version,
            m.online,
            m.offline_since,
            m.cores,
            m.mem_mb,
            m.capacity,
            m.cpu_percent,
            m.rss_mb,
            m.revision,
            m.reported_revision,
            m.acked_seq,
            m.last_errors,
            m.last_seen,
        )
        .where(m.org == org_id)
        .order_by(m.id)
        .namedtuples()
    )
    out = []
    for a in rows:
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
