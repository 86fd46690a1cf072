"""The hand-written clients of the fleet routes decode the appliance's own answers:
``mockmock run``'s (appliance/command/run.py) and the headless live line
(appliance/command/main.py)."""

from __future__ import annotations

import pytest

from appliance import models
from appliance.command import run as runner
from appliance.command.main import live_line
from appliance.contract.fleet import Agent
from appliance.contract.groups import GROUPS_PATH, Group
from appliance.contract.health import HEALTH_PATH, Health
from appliance.fleet import service as fleet
from tests.integration.control.conftest import Api

TEMPLATE = {
    "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1883", "topic": "lab/{device_id}"}},
    "payload": {"n": {"counter": {}}},
}


@pytest.fixture
def run_client(api: Api) -> runner.Client:
    client = runner.Client("http://testserver", api.tokens["admin"])
    client.http = api.client  # the app in process; its headers carry no token
    client.http.headers["Authorization"] = f"Bearer {api.tokens['admin']}"
    return client


def test_run_decodes_a_started_group_and_its_placement(api: Api, run_client: runner.Client) -> None:
    fleet.local_agent(api.org.id, capacity=100, mqtt_url="mqtt://127.0.0.1:1")
    models.Agent.update(online=True).execute()
    assert run_client.typed(Health, "GET", HEALTH_PATH).agents_online == 1
    run_client("PUT", "/api/v1/templates/t", json=TEMPLATE)
    created = run_client.group("PUT", "g", json={"template": "t", "count": 5})
    assert (created.name, created.count, created.state, created.placement) == (
        "g",
        5,
        "stopped",
        [],
    )
    started = run_client.group("POST", "g", "start")
    assert started.state == "running" and started.run_id == 1
    assert [(p.index_start, p.index_end) for p in started.placement] == [(0, 5)]
    assert run_client.group("POST", "g", "stop").state == "stopped"


def test_run_names_the_call_when_an_answer_is_not_the_expected_shape(
    run_client: runner.Client,
) -> None:
    with pytest.raises(runner.RunError) as e:
        run_client.typed(Health, "GET", GROUPS_PATH)
    assert str(e.value).startswith("GET /api/v1/groups: unexpected answer from the appliance")
    with pytest.raises(runner.RunError, match="404 group 'nope' not found"):
        run_client.group("GET", "nope")


def test_the_live_line_counts_running_groups_only() -> None:
    health = Health(
        status="ok",
        version="0",
        database="sqlite",
        database_ok=True,
        bus_connected=True,
        agents_online=2,
        problems=[],
    )
    groups = [
        Group(name="a", template="t", count=10, state="running", running=10, sent=5, errors=1),
        Group(name="b", template="t", count=4, state="stopped", running=3, sent=7),
    ]
    assert live_line(health, groups) == (
        "agents online 2  groups running 1  mocks 10  sent 12  errors 1"
    )


def test_agents_list_decodes_into_the_shared_struct(api: Api) -> None:
    fleet.local_agent(api.org.id, capacity=100, mqtt_url="mqtt://127.0.0.1:1")
    (agent,) = [Agent(**a) for a in api.call("GET", "/api/v1/agents").json()]
    assert (agent.hostname, agent.capacity, agent.free, agent.online) == ("local", 100, 100, False)
