"""Usage ingest: every agent record stored exactly once, acked contiguously per journal.

An agent is not trusted with usage (DESIGN §8). A line counts only when it
describes a range assigned to that agent (appliance.fleet.history), inside the
time it was assigned (give or take ``SKEW_MS`` of clock skew), not in the future,
with no more devices than the range has, and not overlapping what was already
counted for that range. Everything else is refused and audited, and the record
is still acknowledged: an agent must not resend a refused record forever.

Per-line bounds keep every sum far below int64, and the sums themselves never
overflow (``sum_device_ms``), so no forged number can break a report.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import peewee as pw

from agent import wire
from appliance import bulk, models
from appliance.db import database
from appliance.fleet import history
from appliance.usage.models import UsageEpoch

log = logging.getLogger(__name__)

SKEW_MS = 5_000
"""Clock skew (and stop latency) tolerated between a board and the appliance."""
MAX_LINE_MS = 3_600_000
"""An agent cuts a record every few seconds; an hour-long line is not one of its."""
MAX_SEQ = 2**53
MAX_LINES = 10_000
_EPOCH = re.compile(r"[A-Za-z0-9_-]{0,64}")


def ingest(
    agent_id: str, rec: wire.UsageRecord, *, now_ms: int | None = None
) -> wire.UsageAck | None:
    """Store one usage record idempotently; returns the ack to publish (None: no answer).

    Unique (agent, epoch, seq) makes a replayed record a no-op; the whole record and
    its journal's ack mark commit together, so a crash mid-ingest leaves either all of
    it or none of it.
    """
    with database.atomic():
        return ingest_many([(agent_id, rec)], now_ms=now_ms).get(agent_id)


def ingest_many(
    items: list[tuple[str, wire.UsageRecord]], *, now_ms: int | None = None
) -> dict[str, wire.UsageAck]:
    """:func:`ingest` of many records in one transaction (one commit, one fsync, for
    what queued up on the bus meanwhile): the newest ack per agent. The rules are
    :func:`ingest`'s, record by record in arrival order."""
    now = history.now_ms() if now_ms is None else now_ms
    acks: dict[str, wire.UsageAck] = {}
    with database.atomic():
        agents = {
            row.agent_id: row
            for row in models.Agent.select().where(
                models.Agent.agent_id.in_(sorted({agent_id for agent_id, _ in items}))
            )
        }
        for agent_id, rec in items:
            agent = agents.get(agent_id)
            if agent is None:
                continue
            ack = _ingest_one(agent, rec, now)
            if ack is not None:
                acks[agent_id] = ack
    return acks


def _ingest_one(agent: models.Agent, rec: wire.UsageRecord, now: int) -> wire.UsageAck | None:
    if not _EPOCH.fullmatch(rec.epoch) or not 1 <= rec.seq <= MAX_SEQ:
        log.warning(
            "agent %s: dropped a usage record with seq %r epoch %r",
            agent.agent_id,
            rec.seq,
            rec.epoch,
        )
        return None
    journal = UsageEpoch.get_or_none(UsageEpoch.agent == agent.id, UsageEpoch.epoch == rec.epoch)
    acked = 0 if journal is None else journal.acked_seq
    if rec.seq > acked:
        r = models.UsageRecord
        exists = (
            r.select().where(r.agent == agent.id, r.epoch == rec.epoch, r.seq == rec.seq).exists()
        )
        if not exists:
            _store(agent, rec, now)
        new = _contiguous(agent.id, rec.epoch, acked)
        if journal is None:
            UsageEpoch.create(agent=agent.id, epoch=rec.epoch, acked_seq=new)
        elif new != acked:
            UsageEpoch.update(acked_seq=new).where(UsageEpoch.id == journal.id).execute()
        if new != agent.acked_seq:
            models.Agent.update(acked_seq=new).where(models.Agent.id == agent.id).execute()
            agent.acked_seq = new
        acked = new
    return wire.UsageAck(seq=acked, epoch=rec.epoch)


def _judge(
    line: wire.UsageLine,
    spans: list[history.AssignmentSpan],
    now: int,
) -> tuple[str | None, int]:
    """(why the line is refused, or None; the range's first index it is counted for)."""
    if line.devices < 1 or line.end_ms <= line.start_ms or line.start_ms < 0:
        return "empty or negative", line.index_start
    if line.end_ms - line.start_ms > MAX_LINE_MS:
        return "longer than an hour", line.index_start
    if line.end_ms > now + SKEW_MS:
        return "ends in the future", line.index_start
    runs = [s for s in spans if s.group_id == line.group_id and s.run_id == line.run_id]
    if not runs:
        return "group run not assigned to this agent", line.index_start
    index_start = line.index_start
    if index_start == -1:  # an older agent: the range is clear when it ran only one
        starts = {s.index_start for s in runs if _covers(s, line, now)}
        if len(starts) != 1:
            return "no index_start, and the range is ambiguous", index_start
        index_start = starts.pop()
    ranges = [s for s in runs if s.index_start == index_start]
    if not ranges:
        return f"devices from index {index_start} not assigned to this agent", index_start
    in_time = [s for s in ranges if _covers(s, line, now)]
    if not in_time:
        return "outside the time the range was assigned to this agent", index_start
    if not any(line.devices <= s.size for s in in_time):
        most = max(s.size for s in in_time)
        return f"{line.devices} devices exceed the assigned range of {most}", index_start
    return None, index_start


def _covers(span: history.AssignmentSpan, line: wire.UsageLine, now: int) -> bool:
    until = now if span.until_ms is None else span.until_ms
    return span.since_ms - SKEW_MS <= line.start_ms and line.end_ms <= until + SKEW_MS


def _overlaps_stored(agent_pk: int, line: wire.UsageLine, index_start: int) -> bool:
    # Rows of one range never overlap, so only the last one starting before this line
    # ends can reach into it (one index seek, whatever the history's length).
    u = models.Usage
    row = (
        u.select(u.end_ms)
        .where(
            u.agent == agent_pk,
            u.group == line.group_id,
            u.run_id == line.run_id,
            u.index_start == index_start,
            u.start_ms < line.end_ms,
        )
        .order_by(u.start_ms.desc())
        .first()
    )
    return row is not None and row.end_ms > line.start_ms


def _store(agent: models.Agent, rec: wire.UsageRecord, now: int) -> None:
    record = models.UsageRecord.create(agent=agent.id, epoch=rec.epoch, seq=rec.seq)
    lines = rec.lines[:MAX_LINES]
    spans = history.spans(agent.id, {line.group_id for line in lines})
    org_of = {s.group_id: agent.org_id for s in spans}  # spans are of the agent's org only
    # What this record already had accepted per range: its own lines may overlap too.
    taken: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    rows: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for line in lines:
        why, index_start = _judge(line, spans, now)
        if why is None:
            mine = taken.setdefault((line.group_id, line.run_id, index_start), [])
            if any(s < line.end_ms and line.start_ms < e for s, e in mine) or (
                _overlaps_stored(agent.id, line, index_start)
            ):
                why = "overlaps usage already counted for this range"
            else:
                mine.append((line.start_ms, line.end_ms))
        if why is not None:
            refused.append({**_describe(line), "reason": why})
            continue
        rows.append(
            dict(
                record=record.id,
                org=org_of[line.group_id],
                group=line.group_id,
                run_id=line.run_id,
                agent=agent.id,
                index_start=index_start,
                devices=line.devices,
                start_ms=line.start_ms,
                end_ms=line.end_ms,
                device_ms=line.device_ms,
            )
        )
    if rows:
        bulk.insert_rows(models.Usage, rows)
    if len(rec.lines) > MAX_LINES:
        refused.append({"lines": len(rec.lines) - MAX_LINES, "reason": "too many lines"})
    if refused:
        _audit_refused(agent, rec, refused)


def _describe(line: wire.UsageLine) -> dict[str, int]:
    return {
        "group_id": line.group_id,
        "run_id": line.run_id,
        "index_start": line.index_start,
        "devices": line.devices,
        "start_ms": line.start_ms,
        "end_ms": line.end_ms,
    }


def _audit_refused(
    agent: models.Agent, rec: wire.UsageRecord, refused: list[dict[str, Any]]
) -> None:
    from appliance.audit import service as audit

    log.warning(
        "agent %s: refused %d usage line(s) of record %s/%d (%s)",
        agent.agent_id,
        len(refused),
        rec.epoch or "-",
        rec.seq,
        refused[0]["reason"],
    )
    audit.record(
        "usage.refused",
        actor=f"agent:{agent.agent_id}",
        org_id=agent.org_id,
        target=f"agent:{agent.agent_id}",
        after={"epoch": rec.epoch, "seq": rec.seq, "refused": refused[:20], "count": len(refused)},
    )


def _contiguous(agent_pk: int, epoch: str, acked: int) -> int:
    r = models.UsageRecord
    seqs = (
        r.select(r.seq)
        .where(r.agent == agent_pk, r.epoch == epoch, r.seq > acked)
        .order_by(r.seq)
        .limit(10_000)
        .tuples()
    )
    for (seq,) in seqs:
        if seq != acked + 1:
            break
        acked = seq
    return acked


def sum_device_ms() -> pw.Function:
    """SUM(device_ms) that cannot overflow: TOTAL on SQLite (whose SUM raises past int64),
    SUM on PostgreSQL (numeric for bigint)."""
    if isinstance(database.obj, pw.SqliteDatabase):
        return pw.fn.TOTAL(models.Usage.device_ms)
    return pw.fn.COALESCE(pw.fn.SUM(models.Usage.device_ms), 0)


def sum_ms_by_group(group_ids: list[int]) -> dict[int, int]:
    """Device-milliseconds per group, every run."""
    rows = (
        models.Usage.select(models.Usage.group, sum_device_ms())
        .where(models.Usage.group.in_(group_ids))
        .group_by(models.Usage.group)
        .tuples()
    )
    return {gid: int(ms or 0) for gid, ms in rows}


def group_device_ms(group_id: int, run_id: int | None = None) -> int:
    q = models.Usage.select(sum_device_ms()).where(models.Usage.group == group_id)
    if run_id is not None:
        q = q.where(models.Usage.run_id == run_id)
    return int(q.scalar() or 0)


def summary(org_id: int) -> dict[str, object]:
    """Device-seconds per group and for the org (all time)."""
    rows = (
        models.Usage.select(models.Group.name, sum_device_ms())
        .join(models.Group)
        .where(models.Usage.org == org_id)
        .group_by(models.Group.name)
        .tuples()
    )
    groups = {name: int(ms or 0) / 1000 for name, ms in rows}
    return {"device_seconds": sum(groups.values()), "groups": groups}
