"""Batched reports (what the bus does with the reports that queued up) follow the
rules of handling them one by one, in a fixed number of statements per batch."""

from __future__ import annotations

import json

from playhouse.test_utils import count_queries

from agent import wire
from appliance import models
from appliance.bus import control as bus
from appliance.fleet import service as fleet
from tests.unit.appliance import factories


def fleet_of(org: models.Org, n: int) -> tuple[list[str], models.Group]:
    """``n`` agents of 10 mocks each running one group of the org."""
    ids = [factories.online_agent(org, capacity=10) for _ in range(n)]
    factories.group(org, "g", 10 * n)
    return ids, factories.start(org, "g")


def rep(
    g: models.Group,
    incarnation: str,
    started_at: float,
    sent: int,
    running: int = 10,
    previous: list[wire.PastIncarnation] = (),
    group_id: int = 0,
) -> wire.Reported:
    report = wire.GroupReport(
        group_id=group_id or g.id, run_id=g.run_id, running=running, sent=sent, errors=sent // 10
    )
    return wire.Reported(
        revision=sent % 1000,
        incarnation=incarnation,
        started_at=started_at,
        cpu_percent=(sent % 1000) / 7,
        errors=[f"e{sent}"],
        previous=list(previous),
        groups=[report],
    )


def past(g: models.Group, incarnation: str, started_at: float, sent: int) -> wire.PastIncarnation:
    report = wire.GroupReport(group_id=g.id, run_id=g.run_id, running=0, sent=sent, state="stopped")
    return wire.PastIncarnation(incarnation=incarnation, started_at=started_at, groups=[report])


def story(ids: list[str], g: models.Group, foreign: int) -> list[tuple[str, wire.Reported]]:
    a, b, c = ids
    return [
        (a, rep(g, "a1", 100.0, sent=10)),
        (a, rep(g, "a1", 100.0, sent=30)),
        (a, rep(g, "a1", 100.0, sent=20)),  # older: counters only grow
        (b, rep(g, "b1", 100.0, sent=5, running=10**9)),  # clamped to its 10
        (b, rep(g, "b2", 200.0, sent=1, previous=[past(g, "b1", 100.0, sent=8)])),  # restart
        (b, rep(g, "b1", 100.0, sent=9)),  # late: b1 was replaced
        (b, rep(g, "b2", 200.0, sent=2, previous=[past(g, "b1", 100.0, sent=8)])),  # repeated
        (c, rep(g, "c1", 100.0, sent=2**70)),  # clamped to 2^53
        (c, rep(g, "c1", 100.0, sent=3, group_id=foreign)),  # another org's group: nothing
        ("nobody", rep(g, "x", 1.0, sent=1)),
    ]


def restarts(ids: list[str], g: models.Group) -> list[tuple[str, wire.Reported]]:
    a, _, c = ids
    return [
        (a, rep(g, "a2", 300.0, sent=1)),  # stops the stored a1
        (c, rep(g, "c2", 50.0, sent=1, previous=[past(g, "c1", 100.0, sent=7)])),  # its journal
        (c, rep(g, "c2", 50.0, sent=4)),
    ]


def stored(org: models.Org) -> tuple[list, list]:
    """Agents' reported fields and counters rows, by agent order (ids differ per org)."""
    agents = list(models.Agent.select().where(models.Agent.org == org.id).order_by(models.Agent.id))
    order = {a.id: i for i, a in enumerate(agents)}
    fields = [
        (a.incarnation, a.incarnation_at, a.reported_revision, a.cpu_percent, a.last_errors)
        for a in agents
    ]
    gs = models.GroupStats
    rows = sorted(
        (
            order[r.agent_id],
            r.incarnation,
            r.running,
            r.state,
            r.sent,
            r.errors,
            r.reason,
            r.lateness,
            json.dumps({**json.loads(r.report), "group_id": 0}),  # ids differ per org
            r.incarnation_at,
        )
        for r in gs.select().join(models.Agent).where(models.Agent.org == org.id)
    )
    return fields, rows


def test_a_batch_of_reports_stores_what_one_by_one_does(org: models.Org) -> None:
    other = models.Org.create(name="other")
    foreign = factories.group(other, "f", 1)
    one_ids, one_g = fleet_of(org, 3)
    for agent_id, r in story(one_ids, one_g, foreign.id) + restarts(one_ids, one_g):
        fleet.on_reported(agent_id, r)
    twin = models.Org.create(name="twin")
    ids, g = fleet_of(twin, 3)
    fleet.on_reported_many(story(ids, g, foreign.id))
    fleet.on_reported_many(restarts(ids, g))  # over rows stored before the batch
    assert stored(twin) == stored(org)
    fields, rows = stored(twin)
    assert [f[0] for f in fields] == ["a2", "b2", "c2"]
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (0, "a1", 0, "stopped", 30),
        (0, "a2", 10, "running", 1),
        (1, "b1", 0, "stopped", 9),  # the late report counts, and runs nothing
        (1, "b2", 10, "running", 2),
        (2, "c1", 0, "stopped", fleet.MAX_COUNTER),  # its journal's 7 is older
        (2, "c2", 10, "running", 4),
    ]


def test_a_batch_costs_the_same_queries_however_many_reports_it_holds(org: models.Org) -> None:
    ids, g = fleet_of(org, 12)

    def batch(agents: list[str], sent: int) -> int:
        topics = [
            (wire.topic(a, wire.REPORTED), wire.encode(rep(g, "p" + a, 1.0, sent=sent)))
            for a in agents
        ]
        with count_queries() as counted:
            bus._handle_all(topics)
        return counted.count

    # First reports: each agent's process starts (and its predecessors' rows stop).
    assert batch(ids[:3], sent=1) == batch(ids[3:], sent=1)
    assert batch(ids[:3], sent=2) == batch(ids, sent=3)
    rows = models.GroupStats.select().where(models.GroupStats.group == g.id)
    assert sorted(r.sent for r in rows) == [3] * 12
