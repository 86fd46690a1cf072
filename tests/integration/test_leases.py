"""Lease renewal extends the running ranges, and names the agents to tell."""

from __future__ import annotations

from appliance import models
from appliance.groups import service as groups
from appliance.schedule import clock
from tests.unit.appliance import factories


def test_renewal_extends_the_running_ranges_and_names_their_agents(org: models.Org) -> None:
    ids = [factories.online_agent(org, capacity=10) for _ in range(3)]
    factories.group(org, "g", 15)
    factories.start(org, "g")
    before = clock.system_seconds()
    touched = groups.renew_leases(600)
    rows = list(models.Assignment.select())
    assert touched == {r.agent.agent_id for r in rows} == set(ids)  # 5 mocks each
    assert all(r.lease_until >= before + 600 for r in rows)
    factories.stop(org, "g")
    assert groups.renew_leases(600) == set()
