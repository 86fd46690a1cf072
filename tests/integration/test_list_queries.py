"""The list routes the TUI polls cost a fixed number of queries, however big the fleet.

``GET /api/v1/groups`` once cost 1 + 5N queries (stats, placement, usage, template
and org per group); ``GET /api/v1/agents`` must not grow with agents either. The
count is taken with peewee's own ``playhouse.test_utils.count_queries`` on both
SQLite and PostgreSQL; the batched documents must equal the one-group ones.
"""

from __future__ import annotations

import pytest
from playhouse.test_utils import count_queries

from agent import wire
from appliance import models
from appliance.fleet import history
from appliance.fleet import service as fleet
from appliance.groups import service as groups
from appliance.targets.policy import Rules
from appliance.usage import service as usage
from tests.unit.appliance.factories import group, online_agent


def fleet_of(org: models.Org, n_groups: int, n_agents: int) -> None:
    agents = [online_agent(org, capacity=10_000) for _ in range(n_agents)]
    for i in range(n_groups):
        g = group(org, f"g{i:03d}", 10 * n_agents, entitlement="" if i % 2 else "on_demand:cn1000")
        if i % 3 == 0:
            continue  # some groups never ran
        groups.start_group(org.id, g.name, 60, Rules())
        g = models.Group.get_by_id(g.id)
        for seq, agent_id in enumerate(agents, start=1):
            report = wire.GroupReport(
                group_id=g.id,
                run_id=g.run_id,
                running=10,
                sent=100 + i,
                errors=i,
                lateness=wire.Histogram(buckets={10: 3}, count=3, max_us=40),
                last_error="boom" if i == 4 else "",
            )
            fleet.on_reported(agent_id, wire.Reported(revision=1, groups=[report]))
            agent = models.Agent.get(models.Agent.agent_id == agent_id)
            # Usage of the range it was just assigned, ending now: the appliance bills it.
            rng = models.Assignment.get(
                models.Assignment.group == g.id, models.Assignment.agent == agent.id
            )
            now = history.now_ms()
            line = wire.UsageLine(
                group_id=g.id,
                run_id=g.run_id,
                devices=rng.index_end - rng.index_start,
                start_ms=now - 100 * (i + 1),
                end_ms=now,
                index_start=rng.index_start,
            )
            usage.ingest(agent_id, wire.UsageRecord(seq=agent.acked_seq + 1, lines=[line]))
            assert seq


def queries(fn, *args) -> tuple[int, object]:
    with count_queries() as counted:
        result = fn(*args)
    return counted.count, result


@pytest.mark.parametrize("n_groups, n_agents", [(3, 2), (12, 5)])
def test_listing_groups_costs_the_same_few_queries_at_any_size(
    org: models.Org, n_groups: int, n_agents: int
) -> None:
    fleet_of(org, n_groups, n_agents)
    n, docs = queries(groups.list_groups, org.id)
    assert n == 4
    one_by_one = [groups.group_doc(g) for g in models.Group.select().order_by(models.Group.name)]
    assert docs == one_by_one
    assert len(docs) == n_groups
    ran = [d for d in docs if d.run_id == 1]
    assert all(d.agents_reporting == n_agents and d.device_seconds > 0 for d in ran)
    assert {d.entitlement for d in docs} == {"on_demand:cn1000", org.default_entitlement}


def test_listing_groups_of_an_org_without_any_is_one_query(org: models.Org) -> None:
    assert queries(groups.list_groups, org.id) == (1, [])


@pytest.mark.parametrize("n_agents", [2, 9])
def test_listing_agents_costs_the_same_few_queries_at_any_size(
    org: models.Org, n_agents: int
) -> None:
    fleet_of(org, 2, n_agents)
    n, docs = queries(fleet.list_agents, org.id)
    assert n == 2
    assert len(docs) == n_agents
    assert {d.assigned for d in docs} == {10}
