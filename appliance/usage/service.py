"""Usage ingest: every agent record stored exactly once, acked contiguously."""

from __future__ import annotations

import peewee as pw

from agent import wire
from appliance import models
from appliance.db import database


def ingest(agent_id: str, rec: wire.UsageRecord) -> int | None:
    """Store one usage record idempotently; returns the seq to acknowledge.

    Unique (agent, seq) makes a replayed record a no-op; the whole record and
    the agent's ack mark commit together, so a crash mid-ingest leaves either
    all of it or none of it.
    """
    with database.atomic():
        agent = models.Agent.get_or_none(models.Agent.agent_id == agent_id)
        if agent is None:
            return None
        if rec.seq > agent.acked_seq:
            exists = (
                models.UsageRecord.select()
                .where(models.UsageRecord.agent == agent.id, models.UsageRecord.seq == rec.seq)
                .exists()
            )
            if not exists:
                _store(agent, rec)
            acked = _contiguous(agent.id, agent.acked_seq)
            if acked != agent.acked_seq:
                models.Agent.update(acked_seq=acked).where(models.Agent.id == agent.id).execute()
            return acked
        return agent.acked_seq


def _store(agent: models.Agent, rec: wire.UsageRecord) -> None:
    record = models.UsageRecord.create(agent=agent.id, seq=rec.seq)
    group_ids = {line.group_id for line in rec.lines}
    # Only the agent's own org's groups count: an agent cannot bill another org.
    org_of = {
        g.id: g.org_id
        for g in models.Group.select(models.Group.id, models.Group.org).where(
            models.Group.id.in_(group_ids), models.Group.org == agent.org_id
        )
    }
    rows = [
        dict(
            record=record.id,
            org=org_of[line.group_id],
            group=line.group_id,
            run_id=line.run_id,
            devices=line.devices,
            start_ms=line.start_ms,
            end_ms=line.end_ms,
            device_ms=line.device_ms,
        )
        for line in rec.lines
        if line.group_id in org_of and line.end_ms > line.start_ms and line.devices > 0
    ]
    if rows:
        models.Usage.insert_many(rows).execute()


def _contiguous(agent_pk: int, acked: int) -> int:
    seqs = (
        models.UsageRecord.select(models.UsageRecord.seq)
        .where(models.UsageRecord.agent == agent_pk, models.UsageRecord.seq > acked)
        .order_by(models.UsageRecord.seq)
        .limit(10_000)
        .tuples()
    )
    for (seq,) in seqs:
        if seq != acked + 1:
            break
        acked = seq
    return acked


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
