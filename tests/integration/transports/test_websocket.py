"""MQTT over WebSocket through a Mosquitto ``protocol websockets`` listener."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.ports import free_port
from tests.integration.agent.conftest import listening, running, template, unique_group
from tests.integration.transports.conftest import Certs

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(40)]


@pytest.mark.parametrize("version", ["3.1.1", "5"])
async def test_ws_devices_reach_a_tcp_subscriber(fresh_mosquitto, version: str) -> None:
    ws = free_port()
    broker = fresh_mosquitto([f"listener {ws} 127.0.0.1", "protocol websockets"])
    g = unique_group()
    tpl = template(broker, verify=True, commands={"topic": "{group}/{device_id}/cmd"})
    tpl["transport"]["mqtt"].update(url=f"ws://127.0.0.1:{ws}/mqtt", version=version)
    async with listening(broker, f"{g}/#") as sub, running(tpl, group=g, count=3) as r:
        await asyncio.sleep(1.2)
        await sub_publish(broker, f"{g}/{r.device_ids[1]}/cmd", b'{"id": 7}')
        await asyncio.sleep(0.6)
    tel = sub.on("/telemetry")
    assert len(tel) == r.report.sent - r.report.replies > 20 and r.report.errors == 0
    assert {m.topic.split("/")[1] for m in tel} == set(r.device_ids)
    assert [m.json()["id"] for m in sub.on("/cmd/reply")] == [7]  # commands come over ws too
    v = r.report.verify
    assert v is not None and v.lost == 0 and v.received == len(tel)  # aiomqtt over ws


async def test_wss_with_the_test_ca(fresh_mosquitto, certs: Certs) -> None:
    wss = free_port()
    broker = fresh_mosquitto(
        [
            f"listener {wss} 127.0.0.1",
            "protocol websockets",
            f"certfile {certs.server_cert}",
            f"keyfile {certs.server_key}",
        ]
    )
    g = unique_group()
    tpl = template(broker)
    tpl["transport"]["mqtt"].update(url=f"wss://127.0.0.1:{wss}/any/path", ca=certs.ca.read_text())
    async with listening(broker, f"{g}/#") as sub, running(tpl, group=g, count=2) as r:
        await asyncio.sleep(1.0)
    assert len(sub.messages) == r.report.sent > 10


async def sub_publish(broker, topic: str, payload: bytes) -> None:
    import aiomqtt

    async with aiomqtt.Client(broker.host, broker.port, identifier=f"pub-{unique_group()}") as c:
        await c.publish(topic, payload, qos=1)


@pytest.mark.parametrize("qos", [0, 1])
async def test_mqtt5_properties_with_placeholders(mosquitto, qos: int) -> None:
    import aiomqtt

    g = unique_group()
    tpl = template(mosquitto)
    tpl["transport"]["mqtt"].update(
        version=5,
        qos=qos,
        properties={
            "user_properties": {"device": "{device_id}", "site": "north"},
            "content_type": "application/json; device={index}",
            "message_expiry": "2m",
            "response_topic": "{group}/{device_id}/resp",
        },
    )
    got = []
    async with aiomqtt.Client(
        mosquitto.host,
        mosquitto.port,
        identifier=f"v5-{g}",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as c:
        await c.subscribe(f"{g}/#", qos=1)

        async def consume() -> None:
            async for m in c.messages:
                got.append(m)

        task = asyncio.create_task(consume())
        async with running(tpl, group=g, count=2) as r:
            await asyncio.sleep(1.0)
        await asyncio.sleep(0.3)
        task.cancel()
    assert len(got) == r.report.sent > 10
    for m in got:
        dev = str(m.topic).split("/")[1]
        p = m.properties
        assert p is not None
        assert p.UserProperty == [("device", dev), ("site", "north")]
        assert p.ContentType == f"application/json; device={r.device_ids.index(dev)}"
        assert 100 < p.MessageExpiryInterval <= 120
        assert p.ResponseTopic == f"{g}/{dev}/resp"


def test_properties_need_version_5() -> None:
    from agent.errors import ScenarioError
    from agent.template import parse_template

    doc = {
        "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "t",
                               "properties": {"content_type": "x"}}},
        "payload": {"a": 1},
    }  # fmt: skip
    with pytest.raises(ScenarioError, match=r"mqtt\.properties: MQTT 5 only"):
        parse_template("t", doc)
