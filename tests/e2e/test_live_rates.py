"""The live feed's sent/s on a real run: 100 mocks at 5 msg/s read ~500/s, not ~600/s.

The feed's rate is compared with the run's own counter over a long span (both are
what was really sent, so a loaded machine that sends less reads less on both), and
it reads 0 in the first snapshot after the group stops.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from websockets.asyncio.client import connect

from tests.fixtures.processes import Appliance

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(120)]


async def feed(app: Appliance, seconds: float) -> list[tuple[float, dict]]:
    """(monotonic time, group ``rates``) of every snapshot for ``seconds``."""
    out = []
    async with connect(f"ws://127.0.0.1:{app.http_port}/api/v1/live?token={app.token}") as ws:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            snap = json.loads(await ws.recv())
            out.append((time.monotonic(), next(g for g in snap["groups"] if g["name"] == "r")))
    return out


def test_100_mocks_at_5_per_s(appliance_up: Appliance, mosquitto) -> None:
    appliance_up.wait_for(
        lambda: any(a["online"] for a in appliance_up.api("GET", "/api/v1/agents")),
        what="the local agent online",
    )
    appliance_up.api(
        "PUT",
        "/api/v1/templates/rt",
        {
            "transport": {"mqtt": {"url": mosquitto.url, "topic": "rates/{device_id}", "qos": 0}},
            "interval": "200ms",
            "payload": {"seq": {"counter": {}}},
        },
    )
    appliance_up.api("PUT", "/api/v1/groups/r", {"template": "rt", "count": 100})
    appliance_up.api("POST", "/api/v1/groups/r/start")
    appliance_up.wait_for(
        lambda: appliance_up.api("GET", "/api/v1/groups/r")["sent"] > 1000, what="traffic"
    )
    seen = asyncio.run(feed(appliance_up, 24))
    late = [g for t, g in seen if t >= seen[0][0] + 12]  # a full window after the first read
    rates = [g["sent_per_s"] for g in late]
    # What was really sent, by the run's own counter: from the first read that saw a new
    # report to the last one (each end read within a second of its report).
    changes = [
        (t, g["sent"]) for (_, p), (t, g) in itertools.pairwise(seen) if g["sent"] != p["sent"]
    ]
    (t0, s0), (t1, s1) = changes[0], changes[-1]
    actual = (s1 - s0) / (t1 - t0)
    print(f"feed rates {min(rates)}..{max(rates)}, counter {actual:.1f}/s, nominal 500/s")
    assert abs(actual - 500) / 500 < 0.1  # the board kept up (else the figures mean little)
    for r in rates:
        assert abs(r - actual) / actual < 0.1, (r, actual)

    appliance_up.api("POST", "/api/v1/groups/r/stop")
    after = asyncio.run(feed(appliance_up, 1.5))
    assert after and after[0][1]["state"] == "stopped" and after[0][1]["sent_per_s"] == 0.0
