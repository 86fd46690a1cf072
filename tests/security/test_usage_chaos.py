"""Chaos: an agent, the control-bus broker and the appliance each killed -9 mid-run.

`mockmock run` drives a 40 s run of 20 devices (1 msg/s each) on two agents while
the kills land at seeded random points, seconds apart, each victim restarted
after a random pause. The devices publish to a second Mosquitto that nobody kills,
where an independent subscriber counts what arrived. In the end:

- usage: the device-seconds the appliance stored equal what the subscriber
  received, within one second per device per kill;
- nothing is counted twice: every journal record of every agent is stored once,
  with exactly the journal's device-milliseconds, no two usage rows of one device
  range overlap, and no honest line was refused;
- the report's `sent` equals the subscriber's count within 2 %.

``MOCKMOCK_CHAOS_SEED=N`` replays another schedule (the one used is printed).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from agent.journal import JOURNAL_FILE
from tests.e2e.fleet import Watcher, agent_id, agent_proc, enroll, online, serve, wait
from tests.e2e.test_usage_appliance_crash import stored
from tests.e2e.test_usage_crash import journal_state
from tests.fixtures.processes import mockmock

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SEED = int(os.environ.get("MOCKMOCK_CHAOS_SEED", "20261201"))
N = 20
RUN_S = 40


def overlapping_rows(db_path: Path) -> int:
    con = sqlite3.connect(db_path)
    try:
        return con.execute(
            "SELECT COUNT(*) FROM usage a JOIN usage b ON a.id < b.id "
            "AND a.agent_id = b.agent_id AND a.group_id = b.group_id AND a.run_id = b.run_id "
            "AND a.index_start = b.index_start "
            "AND a.start_ms < b.end_ms AND b.start_ms < a.end_ms"
        ).fetchone()[0]
    finally:
        con.close()


def audit_actions(db_path: Path, action: str) -> list[str]:
    con = sqlite3.connect(db_path)
    try:
        return [
            r[0] for r in con.execute("SELECT after FROM audit_log WHERE action = ?", (action,))
        ]
    finally:
        con.close()


@pytest.mark.timeout(170)
def test_kill9_of_agent_broker_and_appliance_mid_run(
    mosquitto, fresh_mosquitto, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    bus = fresh_mosquitto()  # the control bus: killed and restarted on its port
    app = serve(tmp_path, bus.url).start()
    dirs = [tmp_path / "agent0", tmp_path / "agent1"]
    agents = [agent_proc(d) for d in dirs]
    run = None
    topic = f"chaos{SEED}"
    try:
        for d in dirs:
            enroll(app, d, capacity=N // 2)
        for a in agents:
            a.start()
        wait(lambda: online(app) == 2, 30, "2 agents online", app.proc.log())
        tpl = {
            "transport": {"mqtt": {"url": mosquitto.url, "topic": topic + "/{device_id}"}},
            "interval": "1s",
            "payload": {"seq": {"counter": {}}},
        }
        scenario = tmp_path / "chaos.json"
        scenario.write_text(
            json.dumps(
                {
                    "templates": {topic: tpl},
                    "groups": [{"name": topic, "template": topic, "count": N}],
                }
            )
        )
        out = tmp_path / "report.json"
        victims = rng.sample(["agent", "broker", "appliance"], 3)
        schedule = [(v, rng.uniform(3, 7), rng.uniform(0.3, 2.0)) for v in victims]
        print(
            f"chaos seed {SEED}: "
            + ", ".join(f"{v} after {w:.1f}s down {d:.1f}s" for v, w, d in schedule)
        )
        with Watcher(mosquitto.host, mosquitto.port, topic + "/+").running() as watch:
            run = subprocess.Popen(
                mockmock(
                    "run",
                    str(scenario),
                    "--duration",
                    f"{RUN_S}s",
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
            wait(lambda: watch.count_since(0) >= N, 30, "traffic", app.proc.log())
            for victim, wait_s, down_s in schedule:
                time.sleep(wait_s)
                if victim == "agent":
                    i = rng.randrange(2)
                    agents[i].kill9()
                    time.sleep(down_s)
                    agents[i].start()
                    wait(lambda: online(app) == 2, 30, "the agent back", agents[i].log())
                elif victim == "broker":
                    bus.kill()
                    time.sleep(down_s)
                    bus.start()
                    wait(
                        lambda: (
                            app.api("GET", "/api/v1/health", auth=False)["bus_connected"]
                            and online(app) == 2
                        ),
                        30,
                        "the bus back",
                        app.proc.log(),
                    )
                else:
                    app.proc.kill9()
                    time.sleep(down_s)
                    app.start()
                    wait(lambda: online(app) == 2, 30, "the appliance back", app.proc.log())
            _, stderr = run.communicate(timeout=RUN_S + 60)
            assert run.returncode == 0, stderr

            journals = [d / JOURNAL_FILE for d in dirs]

            def settled() -> bool:
                return all(acked == last > 0 for last, acked, _ in map(journal_state, journals))

            wait(settled, 30, "every journal acknowledged", app.proc.log())
            time.sleep(1.5)  # the last messages in flight
            received = len(watch.seen)
        report = json.loads(out.read_text())
        assert app.api("GET", f"/api/v1/groups/{topic}")["running"] == 0
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait(10)
        for a in agents:
            a.stop()
        app.proc.stop()

    db = app.data_dir / "mockmock.sqlite3"
    by_agent = stored(db)
    device_ms = 0
    for d, j in zip(dirs, journals, strict=True):
        last, acked, journal_ms = journal_state(j)
        records, distinct, ms = by_agent[agent_id(d)]
        assert records == distinct == last == acked  # every record once
        assert ms == journal_ms  # every journaled device-ms once
        device_ms += ms
    assert overlapping_rows(db) == 0
    assert audit_actions(db, "usage.refused") == []
    device_s = device_ms / 1000
    print(f"received {received}, billed {device_s:.1f} device-s, report sent {report['sent']}")
    assert abs(device_s - received) <= N * len(schedule)  # 1 s per device per kill
    assert abs(report["sent"] - received) <= 0.02 * received
    assert report["groups"][topic]["complete"]
