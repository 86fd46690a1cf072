"""Which device ranges each agent was assigned, and when: what it may bill.

Assignments are the present (a range moves, is trimmed, stops); usage arrives
later (a journal replays after an outage). So every assignment also opens a
span here, and whatever ends or changes it closes the span: a usage line is
accepted only inside a span of its own agent, run and range (appliance.usage).
Times are epoch milliseconds of the system clock, like the agents' usage lines
and the leases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import peewee as pw

from appliance import bulk, models
from appliance.db import BaseModel
from appliance.schedule import clock


class AssignmentSpan(BaseModel):
    """Devices [index_start, index_end) of one run on one agent during [since_ms, until_ms)."""

    agent = pw.ForeignKeyField(models.Agent, on_delete="CASCADE")
    group = pw.ForeignKeyField(models.Group, on_delete="CASCADE")
    run_id = pw.IntegerField()
    index_start = pw.IntegerField()
    index_end = pw.IntegerField()
    since_ms = pw.BigIntegerField()
    until_ms = pw.BigIntegerField(null=True)  # NULL: still assigned

    class Meta:
        table_name = "assignmentspan"
        indexes = ((("agent", "group", "run_id", "index_start"), False),)

    @property
    def size(self) -> int:
        return self.index_end - self.index_start


MODELS: list[type[BaseModel]] = [AssignmentSpan]


def now_ms() -> int:
    # Usage lines carry the agents' own clocks: compare with the machine's, never a moved one.
    return int(clock.system_seconds() * 1000)


def opened(row: models.Assignment, at_ms: int | None = None) -> None:
    """``row`` was just created (or changed): its range is assigned from now."""
    AssignmentSpan.create(
        agent=row.agent_id,
        group=row.group_id,
        run_id=row.run_id,
        index_start=row.index_start,
        index_end=row.index_end,
        since_ms=now_ms() if at_ms is None else at_ms,
    )


def opened_many(rows: Iterable[dict[str, int]], at_ms: int | None = None) -> None:
    """Ranges just inserted (``Assignment`` rows as dicts of ids): assigned from now."""
    since = now_ms() if at_ms is None else at_ms
    s = AssignmentSpan
    fields = (s.agent, s.group, s.run_id, s.index_start, s.index_end, s.since_ms)
    values = [
        (r["agent"], r["group"], r["run_id"], r["index_start"], r["index_end"], since) for r in rows
    ]
    bulk.insert_values(s, fields, values)


def closed(row: models.Assignment, at_ms: int | None = None) -> None:
    """``row`` is about to be deleted (or changed): its range ends now."""
    s = AssignmentSpan
    s.update(until_ms=now_ms() if at_ms is None else at_ms).where(
        s.agent == row.agent_id,
        s.group == row.group_id,
        s.run_id == row.run_id,
        s.index_start == row.index_start,
        s.until_ms.is_null(),
    ).execute()


def closed_many(rows: Iterable[models.Assignment], at_ms: int | None = None) -> None:
    """:func:`closed` for many rows: one read of the open spans of their agents, then
    updates by id (no row-value IN lists: SQLite's are not PostgreSQL's)."""
    keys = {(r.agent_id, r.group_id, r.run_id, r.index_start) for r in rows}
    if not keys:
        return
    s = AssignmentSpan
    agents = sorted({k[0] for k in keys})
    ids = []
    for i in range(0, len(agents), 500):
        q = s.select(s.id, s.agent, s.group, s.run_id, s.index_start).where(
            s.agent.in_(agents[i : i + 500]), s.until_ms.is_null()
        )
        ids += [pk for pk, *key in q.tuples() if tuple(key) in keys]
    until = now_ms() if at_ms is None else at_ms
    for i in range(0, len(ids), 500):
        s.update(until_ms=until).where(s.id.in_(ids[i : i + 500])).execute()


def group_ended(group_id: int, at_ms: int | None = None) -> None:
    """Every assignment of the group is about to be deleted (stop, new run)."""
    s = AssignmentSpan
    s.update(until_ms=now_ms() if at_ms is None else at_ms).where(
        s.group == group_id, s.until_ms.is_null()
    ).execute()


def spans(agent_pk: int, group_ids: Iterable[int]) -> list[AssignmentSpan]:
    ids = sorted(set(group_ids))
    if not ids:
        return []
    s = AssignmentSpan
    return list(s.select().where(s.agent == agent_pk, s.group.in_(ids)))


def backfill() -> None:
    """Open spans for assignments made before spans were kept (a migration step)."""
    a = models.Assignment
    for row in a.select(a, models.Group).join(models.Group):
        s = AssignmentSpan
        exists = (
            s.select()
            .where(
                s.agent == row.agent_id,
                s.group == row.group_id,
                s.run_id == row.run_id,
                s.index_start == row.index_start,
                s.until_ms.is_null(),
            )
            .exists()
        )
        if exists:
            continue
        started = row.group.started_at
        since = 0 if started is None else int(started.replace(tzinfo=dt.UTC).timestamp() * 1000)
        opened(row, at_ms=since)
