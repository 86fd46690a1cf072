"""Placement: which agent runs which device index range of a running group.

A group's indices ``[0, count)`` are covered by assignments, each a contiguous
range on one agent. Device ids derive from the index, so moving a range to
another agent keeps the devices the system under test sees.

- start: the whole range is split across online agents by free capacity;
- scale: new top ranges are added, or the top ranges trimmed; nothing else moves;
- failover: ranges of an agent offline past the grace period move, unchanged, to
  online agents with free capacity (split if no single agent has room).

Callers hold the transaction; every function returns the agent ids whose desired
state changed, for the bus to republish. Every change of an assignment is also
written to its history (appliance.fleet.history), which decides what usage an
agent may bill.

Replicas place concurrently (an API call on one, failover on the leader): every
placing transaction first takes :func:`lock_org`, so one org's placements run one
at a time and no two replicas hand out the same range or the same free capacity.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import peewee as pw

from appliance import bulk, models
from appliance.db import database
from appliance.errors import Conflict
from appliance.fleet import history
from appliance.schedule import clock

log = logging.getLogger(__name__)


PLACEMENT_LOCK = 0x6D6D_504C  # "mmPL": advisory-lock namespace, with the org id as second key


def lock_org(org_id: int) -> None:
    """Serialise the placing transactions of one org, until the caller's commit.

    PostgreSQL: a transaction-level advisory lock, taken before any row is read
    (no row locks, so no deadlock with foreign-key checks). SQLite: every write
    transaction already holds the database's write lock from BEGIN.
    """
    if isinstance(database.obj, pw.PostgresqlDatabase):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (PLACEMENT_LOCK, org_id))


def split(count: int, free: list[int]) -> list[int]:
    """Shares of ``count`` proportional to ``free`` (largest remainder), each <= its free."""
    total = sum(free)
    if count > total:
        raise ValueError(f"{count} does not fit in {total}")
    if count == 0:
        return [0] * len(free)
    shares = [count * f // total for f in free]
    rest = count - sum(shares)
    # Every agent with a remainder still has room (its exact share is below its free).
    by_remainder = sorted(range(len(free)), key=lambda i: (-(count * free[i] % total), i))
    for i in by_remainder[:rest]:
        shares[i] += 1
    return shares


def assigned_per_agent(org_id: int) -> dict[int, int]:
    """Devices each agent of the org runs now, over all running groups (one query)."""
    a = models.Assignment
    rows = (
        a.select(a.agent, pw.fn.SUM(a.index_end - a.index_start))
        .join(models.Group)
        .where(models.Group.org == org_id, models.Group.state == "running")
        .group_by(a.agent)
        .tuples()
    )
    return {agent_pk: int(n or 0) for agent_pk, n in rows}


@dataclasses.dataclass(slots=True)
class Room:
    """An online agent with free capacity, as a placement run uses it up."""

    pk: int
    agent_id: str
    free: int


def free_agents(org_id: int) -> list[Room]:
    """Online agents of the org with room, and how much, oldest first (two queries)."""
    used = assigned_per_agent(org_id)
    a = models.Agent
    rows = (
        a.select(a.id, a.agent_id, a.capacity)
        .where(a.org == org_id, a.online == True)  # noqa: E712
        .order_by(a.id)
        .tuples()
    )
    out = [Room(pk, agent_id, capacity - used.get(pk, 0)) for pk, agent_id, capacity in rows]
    return [r for r in out if r.free > 0]


def _carve(
    group: models.Group,
    start: int,
    end: int,
    lease_until: float,
    room: list[Room],
    *,
    whole: bool = False,
) -> tuple[list[dict[str, int]], set[str], int]:
    """Split [start, end) (or its lower part) over ``room``, using it up in place;
    ``whole``: onto the one agent with the most room if it fits there.

    Returns the new ``Assignment`` rows (as dicts), the agents they go to, and the end
    placed. Nothing is written: callers insert the rows.
    """
    n = min(end - start, sum(r.free for r in room))
    rows: list[dict[str, int]] = []
    touched: set[str] = set()
    if n <= 0:
        return rows, touched, start
    shares = split(n, [r.free for r in room])
    if whole and room:
        roomiest = max(range(len(room)), key=lambda i: (room[i].free, -i))
        if room[roomiest].free >= n:
            shares = [n if i == roomiest else 0 for i in range(len(room))]
    at = start
    for r, share in zip(room, shares, strict=True):
        if share == 0:
            continue
        rows.append(
            dict(
                group=group.id,
                agent=r.pk,
                run_id=group.run_id,
                index_start=at,
                index_end=at + share,
                lease_until=lease_until,
            )
        )
        r.free -= share
        at += share
        touched.add(r.agent_id)
    room[:] = [r for r in room if r.free > 0]
    return rows, touched, at


def _insert(rows: list[dict[str, int]]) -> None:
    a = models.Assignment
    fields = (a.group, a.agent, a.run_id, a.index_start, a.index_end, a.lease_until)
    # A failover may split ranges by the thousand: plain values, no model per row.
    bulk.insert_values(a, fields, [[r[f.name] for f in fields] for r in rows])
    history.opened_many(rows)


def _assign(group: models.Group, start: int, end: int, lease_until: float) -> tuple[set[str], int]:
    """Cover [start, end) (or its lower part) on agents with room; (agents, end placed)."""
    rows, touched, at = _carve(group, start, end, lease_until, free_agents(group.org_id))
    _insert(rows)
    return touched, at


def place(group: models.Group, start: int, end: int, lease_until: float) -> set[str]:
    """Place all of [start, end) or raise Conflict (the caller's transaction rolls back)."""
    lock_org(group.org_id)
    if not _any_online(group.org_id):
        raise Conflict(f"group {group.name!r}: no agent of this org is online")
    touched, placed = _assign(group, start, end, lease_until)
    if placed < end:
        free = sum(r.free for r in free_agents(group.org_id)) + (placed - start)
        raise Conflict(
            f"group {group.name!r}: {end - start} mocks exceed the free capacity of the "
            f"online agents ({free})"
        )
    return touched


def _any_online(org_id: int) -> bool:
    return (
        models.Agent.select()
        .where(models.Agent.org == org_id, models.Agent.online == True)  # noqa: E712
        .exists()
    )


def rescale(group: models.Group, old: int, new: int, lease_until: float) -> set[str]:
    """Grow by placing [old, new), or shrink by trimming everything at or above ``new``."""
    if new > old:
        return place(group, old, new, lease_until)
    lock_org(group.org_id)
    a = models.Assignment
    rows = list(
        a.select(a, models.Agent)
        .join(models.Agent)
        .where(a.group == group.id, a.run_id == group.run_id, a.index_end > new)
    )
    touched = {row.agent.agent_id for row in rows}
    history.closed_many(rows)  # in bulk: a big group's top holds a range per agent
    gone = [row.id for row in rows if row.index_start >= new]
    for i in range(0, len(gone), 500):
        a.delete().where(a.id.in_(gone[i : i + 500])).execute()
    for row in rows:
        if row.index_start < new:  # the one range across the new top: trimmed
            row.index_end = new
            row.save()
            history.opened(row)
    return touched


def failover(grace_s: float, lease_s: float, now: dt.datetime | None = None) -> set[str]:
    """Move the ranges of agents offline for longer than ``grace_s`` to online agents.

    A fixed number of queries however many ranges are stranded: the free capacity of
    each org is read once and used up in memory, range after range, as placing them
    one by one would (each sees the ranges placed before it); writes go in bulk.
    """
    cutoff = (now or models.utcnow()) - dt.timedelta(seconds=grace_s)
    touched: set[str] = set()
    a = models.Assignment

    def stranded_q(*fields: object) -> pw.ModelSelect:
        return (
            a.select(*fields)
            .join(models.Agent)
            .switch(a)
            .join(models.Group)
            .where(
                models.Group.state == "running",
                a.run_id == models.Group.run_id,
                models.Agent.online == False,  # noqa: E712
                models.Agent.offline_since.is_null(False),
                models.Agent.offline_since <= cutoff,
            )
        )

    with database.atomic():
        if isinstance(database.obj, pw.PostgresqlDatabase):
            orgs = sorted(org for (org,) in stranded_q(models.Group.org).distinct().tuples())
            if not orgs:
                return touched
            for org_id in orgs:  # in order: two lockers of several orgs never deadlock
                lock_org(org_id)
        # read again under the locks
        stranded = list(
            stranded_q(a, models.Agent, models.Group).order_by(models.Group.id, a.index_start)
        )
        if not stranded:
            return touched
        until = clock.system_seconds() + lease_s
        orgs = sorted({r.group.org_id for r in stranded})
        room = {org_id: free_agents(org_id) for org_id in orgs}
        new_rows: list[dict[str, int]] = []
        moved: list[tuple[models.Assignment, int]] = []  # (range, end placed elsewhere)
        for row in stranded:
            # Whole where one agent has room: a range split a hundred ways per failover
            # would leave the fleet with ever more, ever smaller ranges.
            rows, moved_to, placed = _carve(
                row.group, row.index_start, row.index_end, until, room[row.group.org_id], whole=True
            )
            if placed == row.index_start:
                log.warning(
                    "group %s: devices %d-%d of offline agent %s wait for free capacity",
                    row.group.name,
                    row.index_start,
                    row.index_end - 1,
                    row.agent.agent_id,
                )
                continue
            new_rows += rows
            moved.append((row, placed))
            touched |= moved_to | {row.agent.agent_id}
            log.info(
                "group %s: devices %d-%d moved from offline agent %s to %s",
                row.group.name,
                row.index_start,
                placed - 1,
                row.agent.agent_id,
                ", ".join(sorted(moved_to)),
            )
        _insert(new_rows)
        history.closed_many(row for row, _ in moved)
        gone = [row.id for row, placed in moved if placed >= row.index_end]
        for i in range(0, len(gone), 500):
            a.delete().where(a.id.in_(gone[i : i + 500])).execute()
        for row, placed in moved:
            if placed < row.index_end:  # the rest waits on the dead agent until room appears
                row.index_start = placed
                row.save()
                history.opened(row)
    return touched
