"""A 300-device group across 3 enrolled agents survives kill -9 of one of them.

Real processes on a real Mosquitto: `mockmock serve` and three
`mockmock-agent run` (capacity 150 each). The group is split 100/100/100; one
agent is killed with SIGKILL; after the (shortened) grace period its range moves
to the two survivors, and an independent subscriber again sees traffic from all
300 device ids: the same ids, since a range moves unchanged. Then the group is
scaled up and down in place: ranges that stay keep running.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.fleet import Watcher, agent_id, agent_proc, enroll, online, serve, wait

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

GRACE_S = 3
DEVICES = [f"fleet-{i:05d}" for i in range(300)]


def placement(app) -> list[dict]:
    return app.api("GET", "/api/v1/groups/fleet")["placement"]


@pytest.mark.timeout(240)
def test_group_moves_off_a_killed_agent_and_keeps_its_device_ids(mosquitto, tmp_path: Path) -> None:
    app = serve(tmp_path, mosquitto.url, offline_grace_seconds=GRACE_S).start()
    agents = []
    try:
        dirs = [tmp_path / f"agent{i}" for i in range(3)]
        for d in dirs:
            enroll(app, d, capacity=150)
        agents = [agent_proc(d).start() for d in dirs]
        wait(lambda: online(app) == 3, 30, "3 agents online", app.proc.log())
        app.api(
            "PUT",
            "/api/v1/templates/fleet",
            {
                "transport": {"mqtt": {"url": mosquitto.url, "topic": "fo/{device_id}", "qos": 0}},
                "interval": "1s",
                "payload": {"seq": {"counter": {}}},
            },
        )
        app.api("PUT", "/api/v1/groups/fleet", {"template": "fleet", "count": 300})
        with Watcher(mosquitto.host, mosquitto.port, "fo/+").running() as watch:
            t0 = time.monotonic()
            doc = app.api("POST", "/api/v1/groups/fleet/start")
            spread = {p["agent_id"]: p["index_end"] - p["index_start"] for p in doc["placement"]}
            assert sorted(spread.values()) == [100, 100, 100]
            wait(lambda: watch.devices_since(t0) == set(DEVICES), 40, "all 300 devices talk")

            # kill -9 the agent running devices 100-199 (mocks and control link die at once)
            victim = next(p["agent_id"] for p in placement(app) if p["index_start"] == 100)
            victim_i = [agent_id(d) for d in dirs].index(victim)
            agents[victim_i].kill9()
            killed_at = time.monotonic()
            survivors = {agent_id(d) for i, d in enumerate(dirs) if i != victim_i}

            def moved() -> bool:
                p = placement(app)
                covered = sorted(i for x in p for i in range(x["index_start"], x["index_end"]))
                return {x["agent_id"] for x in p} <= survivors and covered == list(range(300))

            wait(moved, GRACE_S + 20, "the range to move to the survivors", app.proc.log())
            moved_at = time.monotonic()
            assert moved_at - killed_at >= GRACE_S - 0.5  # not before the grace period
            wait(
                lambda: watch.devices_since(moved_at) == set(DEVICES),
                40,
                "all 300 device ids again, from the survivors",
                app.proc.log(),
            )
            # the survivors now carry 150 each (their full capacity)
            load = {a["agent_id"]: a for a in app.api("GET", "/api/v1/agents")}
            assert not load[victim]["online"]
            assert {load[s]["assigned"] for s in survivors} == {150}
            wait(
                lambda: app.api("GET", "/api/v1/groups/fleet")["running"] == 300,
                20,
                "reports of 300 running mocks",
            )

            # scale down in place: the ranges below 200 keep their agent and run
            before = {(p["agent_id"], p["index_start"], p["index_end"]) for p in placement(app)}
            doc = app.api("POST", "/api/v1/groups/fleet/scale", {"count": 200})
            after = {(p["agent_id"], p["index_start"], p["index_end"]) for p in doc["placement"]}
            assert {r for r in before if r[2] <= 200} <= after
            assert sorted(i for r in after for i in range(r[1], r[2])) == list(range(200))
            t_down = time.monotonic() + 3  # in-flight messages of trimmed devices drain
            wait(lambda: watch.devices_since(t_down) == set(DEVICES[:200]), 30, "200 devices")

            # ... and up again: only [200, 250) is added, on the room that freed up
            before = after
            doc = app.api("PUT", "/api/v1/groups/fleet", {"template": "fleet", "count": 250})
            after = {(p["agent_id"], p["index_start"], p["index_end"]) for p in doc["placement"]}
            assert before <= after
            assert sorted(i for r in after - before for i in range(r[1], r[2])) == list(
                range(200, 250)
            )
            t_up = time.monotonic()
            wait(lambda: watch.devices_since(t_up) == set(DEVICES[:250]), 30, "250 devices")
    finally:
        for a in agents:
            a.stop()
        app.proc.stop()
