"""Drill-down on a real run: `mockmock up`'s agent sends to Mosquitto; the appliance asks it
over the control bus for the group's devices and last messages, and they are the messages
an independent subscriber received."""

from __future__ import annotations

import json
import time

import msgspec
import pytest

from appliance.contract.inspect import AgentRanges, GroupDevices, GroupTail
from tests.e2e.test_walking_skeleton import Subscriber
from tests.fixtures.processes import Appliance

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(120)]


def template(url: str, topic: str) -> dict[str, object]:
    return {
        "transport": {"mqtt": {"url": url, "topic": topic, "qos": 1}},
        "interval": "200ms",
        "payload": {"device": {"device_id": {}}, "seq": {"counter": {}}, "fw": "9.9"},
    }


def start_group(app: Appliance, broker_url: str, topic: str, count: int = 3) -> None:
    app.wait_for(
        lambda: any(a["online"] for a in app.api("GET", "/api/v1/agents")), what="agent online"
    )
    app.api("PUT", "/api/v1/templates/insp", template(broker_url, topic))
    app.api("PUT", "/api/v1/groups/lab", {"template": "insp", "count": count})
    app.api("POST", "/api/v1/groups/lab/start")


def test_tail_and_devices_show_what_the_target_received(appliance_up: Appliance, mosquitto):
    with Subscriber("127.0.0.1", mosquitto.port, "insp/#") as sub:
        start_group(appliance_up, mosquitto.url, "insp/{device_id}/t")
        appliance_up.wait_for(
            lambda: appliance_up.api("GET", "/api/v1/groups/lab")["sent"] > 0, what="sends"
        )

        def tail() -> GroupTail:
            doc = appliance_up.api("GET", "/api/v1/groups/lab/tail?limit=30")
            return msgspec.convert(doc, GroupTail)

        got = appliance_up.wait_for(lambda: (t := tail()).messages and len(t.messages) >= 6 and t)
        assert got.state == "running" and got.unanswered == [] and got.watching_since
        time.sleep(1.0)  # let the subscriber catch up with the last ones
        received = {
            (topic, json.loads(p)["seq"], json.loads(p)["device"]) for topic, p in sub.messages
        }
        for m in got.messages:
            body = json.loads(m.payload)
            assert m.topic == f"insp/{m.device_id}/t" and body["device"] == m.device_id
            assert (m.topic, body["seq"], m.device_id) in received
        assert [m.at for m in got.messages] == sorted(m.at for m in got.messages)
        keys = [(m.agent_id, m.n) for m in got.messages]
        assert len(set(keys)) == len(keys)

    devices = msgspec.convert(
        appliance_up.api("GET", "/api/v1/groups/lab/devices?start=0&limit=10"), GroupDevices
    )
    assert [d.device_id for d in devices.devices] == ["lab-00000", "lab-00001", "lab-00002"]
    assert all(d.connected and d.sending and d.status == "normal" for d in devices.devices)
    assert all(json.loads(d.last_payload or "{}")["fw"] == "9.9" for d in devices.devices)

    agent_id = devices.devices[0].agent_id
    ranges = msgspec.convert(
        appliance_up.api("GET", f"/api/v1/agents/{agent_id}/ranges"), AgentRanges
    )
    assert ranges.online and [(r.group, r.index_start, r.index_end) for r in ranges.ranges] == [
        ("lab", 0, 3)
    ]

    appliance_up.api("POST", "/api/v1/groups/lab/stop")
    stopped = msgspec.convert(appliance_up.api("GET", "/api/v1/groups/lab/tail"), GroupTail)
    assert stopped.state == "stopped" and stopped.messages == []
