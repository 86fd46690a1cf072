"""Usage survives kill -9 of the agent (and an appliance outage), counted once.

Real processes on a real Mosquitto: `mockmock serve` and an enrolled
`mockmock-agent run`. While the appliance is down the agent journals usage it
cannot get acknowledged; then the agent is killed with SIGKILL. After both come
back, the journal replays and the database holds every journaled
device-millisecond exactly once.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from agent import wire
from tests.fixtures.processes import Appliance, Proc, mockmock_agent

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

TEMPLATE = {
    "transport": {"mqtt": {"url": "", "topic": "crash/{device_id}", "qos": 0}},
    "interval": "1s",
    "payload": {"seq": {"counter": {}}},
}


def journal_state(path: Path) -> tuple[int, int, int]:
    """(last seq, acked seq, total device-ms) read straight from the agent's file."""
    db = sqlite3.connect(path)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        total = 0
        for (body,) in db.execute("SELECT body FROM usage"):
            total += sum(ln.device_ms for ln in wire.decode(wire.UsageRecord, body).lines)
        return int(meta.get("last", 0)), int(meta.get("acked", 0)), total
    finally:
        db.close()


def db_usage(appliance: Appliance) -> tuple[int, float]:
    """(usage records stored, device-seconds) as the appliance database has them."""
    con = sqlite3.connect(appliance.data_dir / "mockmock.sqlite3")
    try:
        n = con.execute("SELECT COUNT(*) FROM usagerecord").fetchone()[0]
        ms = con.execute("SELECT COALESCE(SUM(device_ms), 0) FROM usage").fetchone()[0]
        return int(n), ms / 1000
    finally:
        con.close()


def test_kill9_agent_replays_journal_counted_once(
    appliance_serve: Appliance, mosquitto, tmp_path: Path
) -> None:
    app = appliance_serve
    enroll = app.api("POST", "/api/v1/enrollment-tokens")
    agent_dir = tmp_path / "agent"
    done = subprocess.run(
        mockmock_agent(
            "enroll", app.url, enroll["token"], "--data-dir", str(agent_dir), "--capacity", "100"
        ),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert (agent_dir / "agent.json").stat().st_mode & 0o777 == 0o600
    agent = Proc(
        mockmock_agent("-v", "run", "--data-dir", str(agent_dir)), tmp_path / "agent.log"
    ).start()
    try:
        app.wait_for(
            lambda: app.api("GET", "/api/v1/health", auth=False)["agents_online"],
            what="agent online",
        )
        tpl = dict(TEMPLATE)
        tpl["transport"] = {"mqtt": {**TEMPLATE["transport"]["mqtt"], "url": mosquitto.url}}
        app.api("PUT", "/api/v1/templates/crash", tpl)
        app.api("PUT", "/api/v1/groups/crash", {"template": "crash", "count": 20})
        app.api("POST", "/api/v1/groups/crash/start")
        app.wait_for(
            lambda: app.api("GET", "/api/v1/usage")["device_seconds"] > 0, what="first usage"
        )

        # The appliance dies: usage piles up unacknowledged in the agent's journal.
        app.proc.kill9()
        journal = agent_dir / "usage-journal.sqlite3"
        last_before, _, _ = journal_state(journal)
        deadline = time.monotonic() + 15
        while journal_state(journal)[0] < last_before + 3 and time.monotonic() < deadline:
            time.sleep(0.3)
        # ... and then the agent is killed too, mid-run.
        agent.kill9()
        last_at_kill, acked_at_kill, _ = journal_state(journal)
        assert last_at_kill >= last_before + 3, "the agent kept journaling while alone"
        assert acked_at_kill < last_at_kill, "records were pending when it died"

        app.start()
        agent.start()
        # The retained desired state still says "run": the agent resumes, then we stop.
        app.wait_for(
            lambda: journal_state(journal)[0] >= last_at_kill + 3,
            what="mocks resumed after restart",
        )
        app.api("POST", "/api/v1/groups/crash/stop")

        def settled() -> bool:
            last, acked, _ = journal_state(journal)
            return last > last_at_kill and acked == last

        app.wait_for(settled, timeout=40, what="journal fully acknowledged")
    finally:
        agent.stop()

    last, acked, journal_ms = journal_state(journal)
    records, device_s = db_usage(app)
    assert records == last == acked  # every record once: none lost, none twice
    assert device_s * 1000 == journal_ms  # every journaled device-ms counted once
    # 20 devices over >= 5 s of running before, during and after the outage.
    assert device_s >= 20 * 5
