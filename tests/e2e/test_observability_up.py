"""`mockmock up` as a real process: the live feed over a real WebSocket, /metrics,
and `mockmock audit verify` on its data directory while it runs."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.fixtures.processes import Appliance, mockmock

pytestmark = [pytest.mark.slow]


def test_live_feed_metrics_and_audit_verify(appliance_up: Appliance) -> None:
    app = appliance_up
    app.wait_for(lambda: app.api("GET", "/api/v1/health")["agents_online"] >= 1, what="agent")
    app.api("PUT", "/api/v1/entitlements/on-demand", {"tier": "cn20000"})

    ws_url = app.url.replace("http://", "ws://") + f"/api/v1/live?token={app.token}"
    with connect(ws_url, open_timeout=10) as ws:
        frames = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
    assert frames[-1]["totals"]["agents_online"] >= 1
    assert any(a["online"] for a in frames[-1]["agents"])

    req = urllib.request.Request(
        app.url + "/metrics", headers={"Authorization": f"Bearer {app.token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    assert 'mockmock_agents_online{org="demo"} 1' in text.splitlines()
    assert "mockmock_bus_connected 1" in text.splitlines()

    done = subprocess.run(
        mockmock("audit", "verify", "--data-dir", str(app.data_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ") and int(done.stdout.split()[1]) >= 2
    entries = app.api("GET", "/api/v1/audit?action=agent.")["entries"]
    assert entries and entries[0]["action"] == "agent.online"
