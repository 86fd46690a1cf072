"""The group and agent documents read as plain rows keep their JSON types."""

from __future__ import annotations

import json

import msgspec

from agent import wire
from appliance import models
from appliance.fleet import service as fleet
from appliance.groups import service as groups
from tests.unit.appliance import factories


def test_flags_stay_json_booleans_and_offline_agents_run_nothing(org: models.Org) -> None:
    ids = [factories.online_agent(org, capacity=5) for _ in range(2)]
    factories.group(org, "g", 10)
    g = factories.start(org, "g")
    for agent_id in ids:
        report = wire.GroupReport(group_id=g.id, run_id=g.run_id, running=5, sent=7)
        fleet.on_reported(agent_id, wire.Reported(revision=1, groups=[report], incarnation="p"))
    models.Agent.update(online=False).where(models.Agent.agent_id == ids[0]).execute()
    doc = json.loads(msgspec.json.encode(groups.list_groups(org.id)))[0]
    assert [p["agent_online"] for p in doc["placement"]] == [False, True]
    assert (doc["running"], doc["sent"], doc["agents_reporting"]) == (5, 14, 2)
    agents = json.loads(msgspec.json.encode(fleet.list_agents(org.id)))
    assert [(a["online"], a["assigned"], a["free"]) for a in agents] == [
        (False, 5, 0),
        (True, 5, 0),
    ]
