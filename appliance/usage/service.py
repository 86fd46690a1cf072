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
from appliance.contract.usage import Usage
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
    return ingest_many([(agent_id, rec)], now_ms=now_ms).get(agent_id)


Key = tuple[int, str]  # (agent row id, journal epoch)
Range = tuple[int, int, int, int]  # (agent row id, group id, run id, first index)


def ingest_many(
    items: list[tuple[str, wire.UsageRecord]], *, now_ms: int | None = None
) -> dict[str, wire.UsageAck]:
    """:func:`ingest` of many records in one transaction: the newest ack per agent.

    What queued up on the bus meanwhile is one commit (one fsync) and a fixed number
    of statements whatever its size, which is what lets one appliance keep up with a
    fleet. The rules are those of ingesting the records one by one, in arrival order:
    unknown agents get nothing; a record at or below its journal's ack, or stored
    already, adds nothing; each line is judged against the agent's assignment spans
    and the usage already counted for its range.
    """
    now = history.now_ms() if now_ms is None else now_ms
    valid = []
    for agent_id, rec in items:
        if _EPOCH.fullmatch(rec.epoch) and 1 <= rec.seq <= MAX_SEQ:
            valid.append((agent_id, rec))
        else:
            log.warning(
                "agent %s: dropped a usage record with seq %r epoch %r",
                agent_id,
                rec.seq,
                rec.epoch,
            )
    if not valid:
        return {}
    a, ur, ue = models.Agent, models.UsageRecord, UsageEpoch
    with database.atomic():
        agents = {
            row.agent_id: row
            for row in a.select(a.id, a.agent_id, a.org, a.acked_seq).where(
                a.agent_id.in_(sorted({agent_id for agent_id, _ in valid}))
            )
        }
        mine = [(agents[agent_id], rec) for agent_id, rec in valid if agent_id in agents]
        if not mine:
            return {}
        pks = sorted({agent.id for agent, _ in mine})
        epochs = sorted({rec.epoch for _, rec in mine})
        journals: dict[Key, UsageEpoch] = {
            (j.agent_id, j.epoch): j
            for j in ue.select().where(ue.agent.in_(pks), ue.epoch.in_(epochs))
        }
        acked = {key: j.acked_seq for key, j in journals.items()}
        fresh = [(ag, rec) for ag, rec in mine if rec.seq > acked.get((ag.id, rec.epoch), 0)]
        stored: set[tuple[int, str, int]] = set()
        if fresh:
            stored = {
                (pk, epoch or "", seq)
                for pk, epoch, seq in ur.select(ur.agent, ur.epoch, ur.seq)
                .where(
                    ur.agent.in_(pks),
                    ur.epoch.in_(epochs),
                    ur.seq.in_(sorted({rec.seq for _, rec in fresh})),
                )
                .tuples()
            }
        new = []
        for ag, rec in fresh:
            key = (ag.id, rec.epoch, rec.seq)
            if key not in stored:
                stored.add(key)
                new.append((ag, rec))
        if new:
            _store_many(new, now)
        moved = _contiguous_many({(ag.id, rec.epoch) for ag, rec in fresh}, acked)
        last_epoch = {ag.id: rec.epoch for ag, rec in fresh}  # arrival order: the last wins
        _save_acks(agents, journals, acked, moved, last_epoch)
        acked.update(moved)
        return {
            ag.agent_id: wire.UsageAck(seq=acked.get((ag.id, rec.epoch), 0), epoch=rec.epoch)
            for ag, rec in mine
        }


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


def _store_many(new: list[tuple[models.Agent, wire.UsageRecord]], now: int) -> None:
    """Judge and store the lines of new records: three reads and three writes in all."""
    ur = models.UsageRecord
    records = [{"agent": ag.id, "epoch": rec.epoch, "seq": rec.seq} for ag, rec in new]
    ids = {
        (pk, epoch or "", seq): rid
        for rid, pk, epoch, seq in bulk.insert_rows(
            ur, records, returning=(ur.id, ur.agent, ur.epoch, ur.seq)
        )
    }
    lines = [(ag, rec, line) for ag, rec in new for line in rec.lines[:MAX_LINES]]
    spans: dict[int, list[history.AssignmentSpan]] = {}
    taken: dict[Range, list[tuple[int, int]]] = {}
    if lines:
        s = history.AssignmentSpan
        for span in s.select().where(
            s.agent.in_(sorted({ag.id for ag, _ in new})),
            s.group.in_(sorted({line.group_id for _, _, line in lines})),
        ):
            spans.setdefault(span.agent_id, []).append(span)
        # Usage already counted that these lines could overlap (rows of one range never
        # overlap each other; only rows inside the lines' time span can reach into them).
        u = models.Usage
        for row in u.select(u.agent, u.group, u.run_id, u.index_start, u.start_ms, u.end_ms).where(
            u.agent.in_(sorted(spans)),
            u.group.in_(sorted({line.group_id for _, _, line in lines})),
            u.start_ms < max(line.end_ms for _, _, line in lines),
            u.end_ms > min(line.start_ms for _, _, line in lines),
        ):
            key = (row.agent_id, row.group_id, row.run_id, row.index_start)
            taken.setdefault(key, []).append((row.start_ms, row.end_ms))
    rows: list[dict[str, Any]] = []
    refused: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for ag, rec, line in lines:
        why, index_start = _judge(line, spans.get(ag.id, []), now)
        if why is None:
            counted = taken.setdefault((ag.id, line.group_id, line.run_id, index_start), [])
            if any(s < line.end_ms and line.start_ms < e for s, e in counted):
                why = "overlaps usage already counted for this range"
            else:
                counted.append((line.start_ms, line.end_ms))
        if why is not None:
            refused.setdefault((ag.id, rec.epoch, rec.seq), []).append(
                {**_describe(line), "reason": why}
            )
            continue
        rows.append(
            dict(
                record=ids[(ag.id, rec.epoch, rec.seq)],
                org=ag.org_id,  # spans are of the agent's own org only
                group=line.group_id,
                run_id=line.run_id,
                agent=ag.id,
                index_start=index_start,
                devices=line.devices,
                start_ms=line.start_ms,
                end_ms=line.end_ms,
                device_ms=line.device_ms,
            )
        )
    bulk.insert_rows(models.Usage, rows)
    for ag, rec in new:
        if len(rec.lines) > MAX_LINES:
            refused.setdefault((ag.id, rec.epoch, rec.seq), []).append(
                {"lines": len(rec.lines) - MAX_LINES, "reason": "too many lines"}
            )
    if refused:
        _audit_refused(
            [
                (ag, rec, refused[k])
                for ag, rec in new
                if (k := (ag.id, rec.epoch, rec.seq)) in refused
            ]
        )


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
    refusals: list[tuple[models.Agent, wire.UsageRecord, list[dict[str, Any]]]],
) -> None:
    from appliance.audit import service as audit

    entries = []
    for agent, rec, refused in refusals:
        log.warning(
            "agent %s: refused %d usage line(s) of record %s/%d (%s)",
            agent.agent_id,
            len(refused),
            rec.epoch or "-",
            rec.seq,
            refused[0]["reason"],
        )
        entries.append(
            audit.Entry(
                "usage.refused",
                actor=f"agent:{agent.agent_id}",
                org_id=agent.org_id,
                target=f"agent:{agent.agent_id}",
                after={
                    "epoch": rec.epoch,
                    "seq": rec.seq,
                    "refused": refused[:20],
                    "count": len(refused),
                },
            )
        )
    audit.record_many(entries)


def _contiguous_many(keys: set[Key], acked: dict[Key, int]) -> dict[Key, int]:
    """The highest contiguous stored seq of each journal, from its ack on."""
    if not keys:
        return {}
    ur = models.UsageRecord
    out = {key: acked.get(key, 0) for key in keys}
    rows = (
        ur.select(ur.agent, ur.epoch, ur.seq)
        .where(
            ur.agent.in_(sorted({pk for pk, _ in keys})),
            ur.epoch.in_(sorted({epoch for _, epoch in keys})),
            ur.seq > min(out.values()),
        )
        .order_by(ur.agent, ur.epoch, ur.seq)
        .tuples()
    )
    for pk, epoch, seq in rows:
        key = (pk, epoch or "")
        if key in out and seq == out[key] + 1:
            out[key] = seq
    return out


def _save_acks(
    agents: dict[str, models.Agent],
    journals: dict[Key, UsageEpoch],
    acked: dict[Key, int],
    moved: dict[Key, int],
    last_epoch: dict[int, str],
) -> None:
    ue, a = UsageEpoch, models.Agent
    created = [
        {"agent": pk, "epoch": epoch, "acked_seq": seq}
        for (pk, epoch), seq in moved.items()
        if (pk, epoch) not in journals
    ]
    bulk.insert_rows(ue, created)
    changed = [journals[key] for key, seq in moved.items() if key in journals and seq != acked[key]]
    for j in changed:
        j.acked_seq = moved[(j.agent_id, j.epoch)]
    if changed:
        bulk.update_rows(ue, changed, [ue.acked_seq])
    # Agent.acked_seq: what GET /agents shows, of the journal the agent used last.
    by_pk = {ag.id: ag for ag in agents.values()}
    dirty = []
    for pk, epoch in last_epoch.items():
        seq = moved[(pk, epoch)]
        if by_pk[pk].acked_seq != seq:
            by_pk[pk].acked_seq = seq
            dirty.append(by_pk[pk])
    if dirty:
        bulk.update_rows(a, dirty, [a.acked_seq])


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


def summary(org_id: int) -> Usage:
    """Device-seconds per group and for the org (all time)."""
    rows = (
        models.Usage.select(models.Group.name, sum_device_ms())
        .join(models.Group)
        .where(models.Usage.org == org_id)
        .group_by(models.Group.name)
        .tuples()
    )
    groups = {name: int(ms or 0) / 1000 for name, ms in rows}
    return Usage(device_seconds=sum(groups.values()), groups=groups)
