"""The rules behind a group's figures, on both databases (no processes).

Counters are kept per agent process (incarnation) and add up; only the newest
process runs mocks; a late report of a replaced process cannot bring it back;
what an agent claims is clamped to what it was assigned.
"""

from __future__ import annotations

import pytest

from agent import wire
from appliance import models
from appliance.contract.groups import Group
from appliance.fleet import service as fleet
from appliance.groups import service as groups
from appliance.observability import snapshot
from tests.unit.appliance import factories


@pytest.fixture
def g(org: models.Org) -> models.Group:
    factories.online_agent(org, capacity=100)
    factories.group(org, "g", 10)
    return factories.start(org, "g")


def agent_id() -> str:
    return models.Agent.get().agent_id


def report(
    g: models.Group,
    incarnation: str,
    started_at: float,
    sent: int,
    running: int = 10,
    previous: list[wire.PastIncarnation] | None = None,
) -> wire.Reported:
    return wire.Reported(
        revision=1,
        incarnation=incarnation,
        started_at=started_at,
        previous=previous or [],
        groups=[wire.GroupReport(group_id=g.id, run_id=g.run_id, running=running, sent=sent)],
    )


def past(g: models.Group, incarnation: str, started_at: float, sent: int) -> wire.PastIncarnation:
    rep = wire.GroupReport(group_id=g.id, run_id=g.run_id, running=0, sent=sent, state="stopped")
    return wire.PastIncarnation(incarnation=incarnation, started_at=started_at, groups=[rep])


def doc(g: models.Group) -> Group:
    return groups.group_doc(models.Group.get_by_id(g.id))


def test_a_restarted_agents_counters_add_to_its_predecessors(g: models.Group) -> None:
    fleet.on_reported(agent_id(), report(g, "p1", 100.0, sent=100))
    assert (doc(g).sent, doc(g).running) == (100, 10)
    # p1 is killed after sending 110 (journaled, never reported); p2 starts from zero.
    fleet.on_reported(
        agent_id(), report(g, "p2", 200.0, sent=5, previous=[past(g, "p1", 100, 110)])
    )
    assert (doc(g).sent, doc(g).running) == (115, 10)
    fleet.on_reported(
        agent_id(), report(g, "p2", 200.0, sent=20, previous=[past(g, "p1", 100, 110)])
    )
    assert doc(g).sent == 130
    # A late, retained report of p1 neither lowers its count nor makes it run again.
    fleet.on_reported(agent_id(), report(g, "p1", 100.0, sent=100))
    assert (doc(g).sent, doc(g).running) == (130, 10)
    figures = next(f for f in snapshot.take(g.org_id).groups if f.name == "g")
    assert (figures.sent, figures.running) == (130, 10)


def test_a_process_that_reports_nothing_of_the_group_runs_none_of_it(g: models.Group) -> None:
    fleet.on_reported(agent_id(), report(g, "p1", 100.0, sent=100))
    # Restarted after its range moved away: the new process does not run this group.
    fleet.on_reported(agent_id(), wire.Reported(revision=2, incarnation="p2", started_at=200.0))
    assert (doc(g).sent, doc(g).running) == (100, 0)
    assert doc(g).agents_stopped == doc(g).agents_reporting == 1


def test_claims_are_clamped_to_the_assignment_and_nothing_runs_after_stop(
    org: models.Org, g: models.Group
) -> None:
    fleet.on_reported(agent_id(), report(g, "p1", 100.0, sent=2**70, running=10**9))
    assert doc(g).running == 10  # its assignment, not its claim
    assert doc(g).sent == 2**53
    factories.stop(org, "g")
    assert doc(g).running == 0  # whatever it last reported
    fleet.on_reported(agent_id(), report(g, "p1", 100.0, sent=2**70, running=10))
    assert doc(g).running == 0
    assert next(f for f in snapshot.take(org.id).groups if f.name == "g").running == 0
