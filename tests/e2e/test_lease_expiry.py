"""An agent cut off from the control bus stops its mocks when its lease runs out.

Real processes: `mockmock serve` on a control-bus Mosquitto of its own (lease 6 s,
renewed every 2 s), one enrolled agent whose mocks publish to a second broker
(the system under test). The control broker is killed: the agent keeps running
until the lease it holds expires, then stops; an independent subscriber on the
data plane sees the traffic stop within lease + tolerance. When the bus is back,
the agent's report says why it stopped, and the renewed lease restarts the mocks.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.fleet import Watcher, agent_proc, enroll, online, serve, wait

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

LEASE_S = 6
RENEW_S = 2
TOLERANCE_S = 3  # the agent checks leases every second; delivery and scheduling slack


@pytest.mark.timeout(180)
def test_cut_off_agent_stops_at_lease_expiry_and_says_why(
    mosquitto, fresh_mosquitto, tmp_path: Path
) -> None:
    control = fresh_mosquitto()
    app = serve(tmp_path, control.url, lease_seconds=LEASE_S, lease_renew_seconds=RENEW_S).start()
    agent = None
    try:
        agent_dir = tmp_path / "agent"
        enroll(app, agent_dir, capacity=50)
        agent = agent_proc(agent_dir).start()
        wait(lambda: online(app) == 1, 30, "agent online", app.proc.log())
        app.api(
            "PUT",
            "/api/v1/templates/lease",
            {
                "transport": {"mqtt": {"url": mosquitto.url, "topic": "lease/{device_id}"}},
                "interval": "200ms",
                "payload": {"seq": {"counter": {}}},
            },
        )
        app.api("PUT", "/api/v1/groups/lease", {"template": "lease", "count": 5})
        with Watcher(mosquitto.host, mosquitto.port, "lease/+").running() as watch:
            app.api("POST", "/api/v1/groups/lease/start")
            t0 = time.monotonic()
            wait(lambda: len(watch.devices_since(t0)) == 5, 20, "traffic from 5 devices")
            time.sleep(RENEW_S + 1)  # at least one renewal went through

            control.kill()  # the agent (and the appliance) lose the control bus
            cut = time.monotonic()
            wait(
                lambda: time.monotonic() - watch.last_at() > 2,
                LEASE_S + TOLERANCE_S + 3,
                "the traffic to stop",
            )
            stopped = watch.last_at()
            # It ran on what it held (at least lease - renew interval), and not much longer.
            assert stopped - cut >= LEASE_S - RENEW_S - 1, stopped - cut
            assert stopped - cut <= LEASE_S + TOLERANCE_S, stopped - cut
            time.sleep(2)
            assert watch.count_since(stopped + 0.5) == 0  # it stays stopped

            control.start()  # same port: both sides reconnect

            def reason() -> list[str]:
                errs = [e for a in app.api("GET", "/api/v1/agents") for e in a["errors"]]
                return [e for e in errs if "lease expired" in e]

            assert wait(reason, 60, "the reported reason", agent.log())
            back = time.monotonic()
            wait(lambda: len(watch.devices_since(back)) == 5, 30, "mocks back on a new lease")
    finally:
        if agent is not None:
            agent.stop()
        app.proc.stop()
