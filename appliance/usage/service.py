"""Usage ingest: every agent record stored exactly once, acked contiguously."""

from __future__ import annotations

import peewee as pw

from agent import wire
from appliance import bulk, models
from appliance.db import database


def ingest(agent_id: str, rec: wire.UsageRecord) -> int | None:
    """Store one usage record idempotently; returns the seq to acknowledge.

    Unique (agent, seq) makes a replayed record a no-op; the whole record and
    the agent's ack mark commit together, so a crash mid-ingest leaves either
    all of it or none of it.
    """
    return ingest_many([(agent_id, rec)]).get(agent_id)


def ingest_many(items: list[tuple[str, wire.UsageRecord]]) -> dict[str, int]:
    """:func:`ingest` of many records in one transaction: the seq to acknowledge per agent.

    A handful of statements for the whole batch rather than several per record,
    which is what lets one appliance keep up with a fleet's usage (the bus hands
    over what queued up meanwhile). The rules are :func:`ingest`'s, record by record
    in order: unknown agents get nothing; a record at or below the agent's ack, or
    already stored, adds nothing; only groups of the agent's own org are billed.
    """
    if not items:
        return {}
    a, ur = models.Agent, models.UsageRecord
    with database.atomic():
        agents = {
            row.agent_id: row
            for row in a.select(a.id, a.agent_id, a.org, a.acked_seq).where(
                a.agent_id.in_(sorted({agent_id for agent_id, _ in items}))
            )
        }
        fresh = [
            (agents[agent_id], rec)
            for agent_id, rec in items
            if agent_id in agents and rec.seq > agents[agent_id].acked_seq
        ]
        stored: set[tuple[int, int]] = set()
        if fresh:
            stored = set(
                ur.select(ur.agent, ur.seq)
                .where(
                    ur.agent.in_(sorted({agent.id for agent, _ in fresh})),
                    ur.seq.in_(sorted({rec.seq for _, rec in fresh})),
                )
                .tuples()
            )
        new: list[tuple[models.Agent, wire.UsageRecord]] = []
        for agent, rec in fresh:
            if (agent.id, rec.seq) not in stored:
                stored.add((agent.id, rec.seq))
                new.append((agent, rec))
        if new:
            _store_many(new)
        acked = {agent_id: agent.acked_seq for agent_id, agent in agents.items()}
        moved = _contiguous_many({agent.id: agent.acked_seq for agent, _ in fresh})
        changed = []
        for agent_id, agent in agents.items():
            seq = moved.get(agent.id, agent.acked_seq)
            if seq != agent.acked_seq:
                agent.acked_seq = seq
                changed.append(agent)
            acked[agent_id] = seq
        if changed:
            a.bulk_update(changed, fields=[a.acked_seq], batch_size=200)
    return {agent_id: seq for agent_id, seq in acked.items()}


def _store_many(new: list[tuple[models.Agent, wire.UsageRecord]]) -> None:
    ur = models.UsageRecord
    records = [{"agent": agent.id, "seq": rec.seq} for agent, rec in new]
    ids = {
        (agent_pk, seq): pk
        for pk, agent_pk, seq in bulk.insert_rows(ur, records, returning=(ur.id, ur.agent, ur.seq))
    }
    group_ids = sorted({line.group_id for _, rec in new for line in rec.lines})
    org_of = dict(
        models.Group.select(models.Group.id, models.Group.org)
        .where(models.Group.id.in_(group_ids))
        .tuples()
    )
    rows = [
        dict(
            record=ids[(agent.id, rec.seq)],
            org=agent.org_id,
            group=line.group_id,
            run_id=line.run_id,
            devices=line.devices,
            start_ms=line.start_ms,
            end_ms=line.end_ms,
            device_ms=line.device_ms,
        )
        for agent, rec in new
        for line in rec.lines
        # Only the agent's own org's groups count: an agent cannot bill another org.
        if org_of.get(line.group_id) == agent.org_id
        and line.end_ms > line.start_ms
        and line.devices > 0
    ]
    bulk.insert_rows(models.Usage, rows)


def _contiguous_many(acked: dict[int, int]) -> dict[int, int]:
    """The highest contiguous stored seq of each agent, from its ack on."""
    if not acked:
        return {}
    ur, a = models.UsageRecord, models.Agent
    out = dict(acked)
    rows = (
        ur.select(ur.agent, ur.seq)
        .join(a)
        .where(ur.agent.in_(sorted(acked)), ur.seq > a.acked_seq)
        .order_by(ur.agent, ur.seq)
        .tuples()
    )
    for agent_pk, seq in rows:
        if seq == out[agent_pk] + 1:
            out[agent_pk] = seq
    return out


def group_device_ms(group_id: int, run_id: int | None = None) -> int:
    q = models.Usage.select(pw.fn.COALESCE(pw.fn.SUM(models.Usage.device_ms), 0)).where(
        models.Usage.group == group_id
    )
    if run_id is not None:
        q = q.where(models.Usage.run_id == run_id)
    return int(q.scalar())


def summary(org_id: int) -> dict[str, object]:
    """Device-seconds per group and for the org (all time)."""
    rows = (
        models.Usage.select(models.Group.name, pw.fn.SUM(models.Usage.device_ms))
        .join(models.Group)
        .where(models.Usage.org == org_id)
        .group_by(models.Group.name)
        .tuples()
    )
    groups = {name: int(ms) / 1000 for name, ms in rows}
    return {"device_seconds": sum(groups.values()), "groups": groups}
