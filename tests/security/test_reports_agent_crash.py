"""`mockmock run`'s figures stay true when an agent is killed -9 and comes back.

A restarted agent counts from zero again. The appliance kept one row per agent
and replaced it, so `run`'s progress went backwards and its report's `sent`
undercounted what the devices had delivered; and the killed process's last
`running` stayed on its row, so a group showed more mocks running than it has
(e.g. 30 of 20 after a failover) or some after it stopped. Rows are now per agent
process (incarnation): counters add up, only the newest process runs anything.

Real processes on a real Mosquitto, with an independent subscriber counting what
the devices delivered.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.fleet import Watcher, agent_id, agent_proc, enroll, online, serve, wait
from tests.fixtures.processes import mockmock

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

N = 20  # devices, 10 on each of two agents


def scenario(path: Path, url: str, topic: str) -> Path:
    tpl = {
        "transport": {"mqtt": {"url": url, "topic": topic + "/{device_id}", "qos": 1}},
        "interval": "1s",
        "payload": {"seq": {"counter": {}}},
    }
    path.write_text(
        json.dumps(
            {"templates": {topic: tpl}, "groups": [{"name": topic, "template": topic, "count": N}]}
        )
    )
    return path


def metric(app, name: str, group: str) -> float:
    import urllib.request

    req = urllib.request.Request(
        app.url + "/metrics", headers={"Authorization": f"Bearer {app.token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf'^{name}{{org="[^"]*",group="{group}"}} (\S+)$', text, re.M)
    assert m, text
    return float(m.group(1))


@pytest.mark.timeout(180)
def test_run_report_counts_every_process_of_a_restarted_agent(mosquitto, tmp_path: Path) -> None:
    app = serve(tmp_path, mosquitto.url).start()  # grace 30 s: the agent is back well before
    dirs = [tmp_path / "agent0", tmp_path / "agent1"]
    agents = [agent_proc(d) for d in dirs]
    try:
        for d in dirs:
            enroll(app, d, capacity=N // 2)
        for a in agents:
            a.start()
        wait(lambda: online(app) == 2, 30, "2 agents online", app.proc.log())
        path = scenario(tmp_path / "rep.json", mosquitto.url, "rep")
        out = tmp_path / "report.json"
        with Watcher(mosquitto.host, mosquitto.port, "rep/+").running() as watch:
            run = subprocess.Popen(
                mockmock(
                    "run",
                    str(path),
                    "--duration",
                    "24s",
                    "--url",
                    app.url,
                    "--token-file",
                    str(app.data_dir / "admin.token"),
                    "--report",
                    str(out),
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                wait(lambda: watch.count_since(0) >= 8 * N, 30, "8 s of traffic")
                agents[0].kill9()
                time.sleep(0.5)
                agents[0].start()
                # While it runs: never more mocks than the group has.
                running = []
                deadline = time.monotonic() + 8
                while time.monotonic() < deadline:
                    running.append(app.api("GET", "/api/v1/groups/rep")["running"])
                    time.sleep(0.5)
                _, stderr = run.communicate(timeout=90)
            finally:
                if run.poll() is None:
                    run.kill()
                    run.wait(10)
            time.sleep(1.0)  # the last messages in flight
            received = len(watch.seen)
        assert run.returncode == 0, stderr
        report = json.loads(out.read_text())
        doc = app.api("GET", "/api/v1/groups/rep")
        rep_running = metric(app, "mockmock_mocks_running", "rep")
    finally:
        for a in agents:
            a.stop()
        app.proc.stop()

    progress = [int(m) for m in re.findall(r"sent (\d+)", stderr)]
    print(f"progress {progress}; report sent {report['sent']}; received {received}")
    assert len(progress) >= 5
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    assert report["groups"]["rep"]["complete"]
    assert abs(report["sent"] - received) <= 0.02 * received
    assert max(running) <= N and running[-1] == N
    assert doc["state"] == "stopped" and doc["running"] == 0 and rep_running == 0


@pytest.mark.timeout(180)
def test_running_is_what_runs_after_a_failover_and_a_restart(mosquitto, tmp_path: Path) -> None:
    app = serve(tmp_path, mosquitto.url, offline_grace_seconds=3).start()
    dirs = [tmp_path / "agent0", tmp_path / "agent1"]
    agents = [agent_proc(d) for d in dirs]
    try:
        for d in dirs:
            enroll(app, d, capacity=N)  # each could carry the whole group
        for a in agents:
            a.start()
        wait(lambda: online(app) == 2, 30, "2 agents online", app.proc.log())
        app.api(
            "PUT",
            "/api/v1/templates/fo2",
            {
                "transport": {"mqtt": {"url": mosquitto.url, "topic": "fo2/{device_id}"}},
                "interval": "1s",
                "payload": {"seq": {"counter": {}}},
            },
        )
        app.api("PUT", "/api/v1/groups/fo2", {"template": "fo2", "count": N})
        doc = app.api("POST", "/api/v1/groups/fo2/start")
        assert sorted(p["index_end"] - p["index_start"] for p in doc["placement"]) == [10, 10]

        def group() -> dict:
            return app.api("GET", "/api/v1/groups/fo2")

        wait(lambda: group()["running"] == N, 30, "all running", app.proc.log())
        victim = agent_id(dirs[0])
        agents[0].kill9()
        wait(
            lambda: {p["agent_id"] for p in group()["placement"]} == {agent_id(dirs[1])},
            30,
            "its range to move",
            app.proc.log(),
        )
        wait(lambda: group()["running"] == N, 30, "the survivor runs all", app.proc.log())
        agents[0].start()  # it comes back with nothing assigned
        wait(
            lambda: next(a for a in app.api("GET", "/api/v1/agents") if a["agent_id"] == victim)[
                "online"
            ],
            30,
            "the victim online again",
        )
        seen = []
        for _ in range(8):
            time.sleep(0.5)
            seen.append(group()["running"])
        assert seen == [N] * len(seen), seen  # never its old share on top
        assert metric(app, "mockmock_mocks_running", "fo2") == N
        app.api("POST", "/api/v1/groups/fo2/stop")
        wait(lambda: group()["agents_stopped"] == 2, 20, "final reports", app.proc.log())
        assert group()["running"] == 0
        assert metric(app, "mockmock_mocks_running", "fo2") == 0
    finally:
        for a in agents:
            a.stop()
        app.proc.stop()
