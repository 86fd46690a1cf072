"""Placement on a real database (SQLite and PostgreSQL): start, scale, failover."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from playhouse.test_utils import count_queries

from agent import wire
from appliance import models
from appliance.errors import Conflict
from appliance.fleet import placement
from appliance.fleet import service as fleet

LEASE = time.time() + 60


def online_agent(org: models.Org, capacity: int) -> models.Agent:
    enrolled = fleet.local_agent(org.id, capacity=capacity, mqtt_url="mqtt://127.0.0.1:1")
    fleet.on_presence(enrolled.agent_id, wire.Presence(status="online", capacity=capacity))
    agent = fleet.agent_by_id(enrolled.agent_id)
    assert agent is not None
    return agent


def running_group(org: models.Org, count: int, name: str = "g") -> models.Group:
    tpl = models.Template.create(org=org, name=f"t-{name}", body=json.dumps({}))
    return models.Group.create(
        org=org, name=name, template=tpl, count=count, state="running", run_id=1
    )


def ranges(group: models.Group) -> list[tuple[str, int, int, int]]:
    """(agent id, start, end, assignment id) in index order."""
    a = models.Assignment
    rows = a.select(a, models.Agent).join(models.Agent).where(a.group == group.id)
    return sorted((r.agent.agent_id, r.index_start, r.index_end, r.id) for r in rows)


def covered(group: models.Group) -> list[int]:
    return sorted(i for _, s, e, _ in ranges(group) for i in range(s, e))


def test_start_splits_by_free_capacity_and_refuses_what_does_not_fit(
    org: models.Org,
) -> None:
    agents = [online_agent(org, 150) for _ in range(3)]
    g = running_group(org, 300)
    touched = placement.place(g, 0, 300, LEASE)
    assert touched == {a.agent_id for a in agents}
    assert [e - s for _, s, e, _ in ranges(g)] == [100, 100, 100]
    assert covered(g) == list(range(300))
    free = {r.agent_id: r.free for r in placement.free_agents(org.id)}
    assert free == {a.agent_id: 50 for a in agents}

    big = running_group(org, 151, name="big")
    with pytest.raises(Conflict, match="151 mocks exceed the free capacity"):
        placement.place(big, 0, 151, LEASE)


def test_no_agent_online_is_a_clear_conflict(org: models.Org) -> None:
    g = running_group(org, 5)
    with pytest.raises(Conflict, match="no agent of this org is online"):
        placement.place(g, 0, 5, LEASE)


def test_scale_up_and_down_keeps_the_ranges_that_stay(org: models.Org) -> None:
    online_agent(org, 100)
    online_agent(org, 100)
    g = running_group(org, 100)
    placement.place(g, 0, 100, LEASE)
    before = ranges(g)

    placement.rescale(g, 100, 160, LEASE)
    after_up = ranges(g)
    assert set(before) <= set(after_up)  # same rows, same ids: nothing restarted
    assert covered(g) == list(range(160))

    touched = placement.rescale(g, 160, 70, LEASE)
    after_down = ranges(g)
    assert covered(g) == list(range(70))
    kept = [r for r in before if r[2] <= 70]
    assert set(kept) <= set(after_down)
    assert touched  # the agents whose top ranges were trimmed or dropped


def test_failover_moves_ranges_after_the_grace_period_only(org: models.Org) -> None:
    a, b, c = (online_agent(org, 150) for _ in range(3))
    g = running_group(org, 300)
    placement.place(g, 0, 300, LEASE)
    dead = next(r for r in ranges(g) if r[0] == c.agent_id)

    fleet.on_presence(c.agent_id, wire.Presence(status="offline"))
    assert placement.failover(grace_s=30, lease_s=60) == set()  # within grace: stays
    assert dead in ranges(g)

    later = models.utcnow() + dt.timedelta(seconds=31)
    touched = placement.failover(grace_s=30, lease_s=60, now=later)
    assert touched == {a.agent_id, b.agent_id, c.agent_id}
    assert covered(g) == list(range(300))  # same indices, so the same device ids
    assert {r[0] for r in ranges(g)} == {a.agent_id, b.agent_id}
    # the dead range went over whole, as [start, end) pieces of the same indices
    moved = [r for r in ranges(g) if dead[1] <= r[1] < dead[2]]
    assert sum(e - s for _, s, e, _ in moved) == dead[2] - dead[1]
    assert placement.failover(grace_s=30, lease_s=60, now=later) == set()  # idempotent


def test_failover_moves_what_fits_and_keeps_the_rest_waiting(org: models.Org) -> None:
    a = online_agent(org, 100)
    b = online_agent(org, 100)
    g = running_group(org, 160)
    placement.place(g, 0, 160, LEASE)
    fleet.on_presence(b.agent_id, wire.Presence(status="offline"))
    later = models.utcnow() + dt.timedelta(seconds=31)
    placement.failover(grace_s=30, lease_s=60, now=later)
    assert covered(g) == list(range(160))  # nothing dropped
    on_a = sum(e - s for who, s, e, _ in ranges(g) if who == a.agent_id)
    assert on_a == 100  # a is full; the rest waits on b for capacity
    c = online_agent(org, 100)
    placement.failover(grace_s=30, lease_s=60, now=later)
    assert {r[0] for r in ranges(g)} == {a.agent_id, c.agent_id}
    assert covered(g) == list(range(160))


def test_a_replayed_offline_message_keeps_the_first_offline_time(org: models.Org) -> None:
    a = online_agent(org, 10)
    fleet.on_presence(a.agent_id, wire.Presence(status="offline"))
    first = fleet.agent_by_id(a.agent_id).offline_since
    time.sleep(0.01)
    fleet.on_presence(a.agent_id, wire.Presence(status="offline"))
    assert fleet.agent_by_id(a.agent_id).offline_since == first
    fleet.on_presence(a.agent_id, wire.Presence(status="online"))
    assert fleet.agent_by_id(a.agent_id).offline_since is None


def stranded_failover_queries(org: models.Org, dead: int) -> int:
    """Queries of one failover of ``dead`` agents' ranges, two groups on eight agents."""
    agents = [online_agent(org, 100) for _ in range(8)]
    groups = [running_group(org, 160, name=f"g{i}") for i in range(2)]
    for g in groups:
        placement.place(g, 0, 160, LEASE)
    for agent in agents[:dead]:
        fleet.on_presence(agent.agent_id, wire.Presence(status="offline"))
    later = models.utcnow() + dt.timedelta(seconds=31)
    with count_queries() as counted:
        touched = placement.failover(grace_s=30, lease_s=60, now=later)
    assert {a.agent_id for a in agents[:dead]} <= touched
    for g in groups:
        assert covered(g) == list(range(160))
        assert not {r[0] for r in ranges(g)} & {a.agent_id for a in agents[:dead]}
    return counted.count


def test_a_failover_costs_the_same_queries_however_many_ranges_it_moves(
    org: models.Org,
) -> None:
    few = stranded_failover_queries(org, dead=1)  # two ranges
    other = models.Org.create(name="other")
    many = stranded_failover_queries(other, dead=4)  # eight ranges
    assert many == few


def test_failover_moves_a_range_whole_to_the_agent_with_most_room(org: models.Org) -> None:
    a, b, c = (online_agent(org, 100) for _ in range(3))
    g = running_group(org, 100)
    placement.place(g, 0, 100, LEASE)
    dead = next(r for r in ranges(g) if r[0] == a.agent_id)
    d = online_agent(org, 100)  # empty: the most room
    fleet.on_presence(a.agent_id, wire.Presence(status="offline"))
    later = models.utcnow() + dt.timedelta(seconds=31)
    assert placement.failover(grace_s=30, lease_s=60, now=later) == {a.agent_id, d.agent_id}
    assert [r[:3] for r in ranges(g) if r[0] == d.agent_id] == [(d.agent_id, dead[1], dead[2])]
    assert covered(g) == list(range(100))
    assert {r[0] for r in ranges(g)} == {b.agent_id, c.agent_id, d.agent_id}


def test_scaling_down_costs_the_same_queries_however_many_ranges_it_drops(
    org: models.Org,
) -> None:
    for _ in range(8):
        online_agent(org, 10)
    g = running_group(org, 80)
    placement.place(g, 0, 80, LEASE)  # ten devices on each agent

    def shrink(old: int, new: int) -> int:
        with count_queries() as counted:
            placement.rescale(g, old, new, LEASE)
        assert covered(g) == list(range(new))
        return counted.count

    assert shrink(80, 65) == shrink(65, 15)  # two ranges touched, then five
