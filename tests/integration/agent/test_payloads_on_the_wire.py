"""Encodings and streams as a subscriber sees them on a real Mosquitto."""

from __future__ import annotations

import asyncio

import cbor2
import orjson
import pytest

from agent import protobuf
from tests.integration.agent.conftest import listening, running, template, unique_group
from tests.unit.agent.test_payloads import PROTO

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(30)]


async def test_protobuf_and_cbor_decode_on_the_subscriber(mosquitto) -> None:
    g = unique_group()
    payload = {
        "device": {"device_id": {}},
        "ts": {"timestamp": {}},
        "temp": {"uniform": {"min": 18.0, "max": 26.0}},
        "health": {"choice": {"values": ["OK", "WARN"]}},
    }
    pb = template(
        mosquitto,
        mqtt={"topic": "{group}/pb/{device_id}"},
        payload=payload,
        encoding={"protobuf": {"schema": PROTO, "message": "lab.Reading"}},
    )
    cb = template(mosquitto, mqtt={"topic": "{group}/cbor/{device_id}"}, payload=payload)
    cb["encoding"] = "cbor"
    async with (
        listening(mosquitto, f"{g}p/#", f"{g}c/#") as sub,
        running(pb, group=f"{g}p", count=2) as r1,  # own groups: own client ids
        running(cb, group=f"{g}c", count=2) as r2,
    ):
        await asyncio.sleep(1.2)
    cls = protobuf.message_class(PROTO, "lab.Reading", "t")
    readings = []
    for m in [m for m in sub.messages if "/pb/" in m.topic]:
        msg = cls()
        msg.ParseFromString(m.payload)
        readings.append(msg)
        assert m.topic.endswith(msg.device)
    cbors = [cbor2.loads(m.payload) for m in sub.messages if "/cbor/" in m.topic]
    assert r1.report.errors == 0, r1.report.last_error
    assert len(readings) == r1.report.sent > 10 and len(cbors) == r2.report.sent > 10
    assert all(18 <= x.temp <= 26 and x.ts > 1.7e12 for x in readings)
    assert {cls.Health.Name(x.health) for x in readings} <= {"OK", "WARN"}
    assert all(set(c) == {"device", "ts", "temp", "health"} for c in cbors)


async def test_three_streams_per_device(mosquitto) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        mqtt={"topic": "{group}/{device_id}/telemetry"},
        interval="200ms",
        payload={"seq": {"counter": {"start": 1}}, "label": {"format": "{device_id}#{seq}"}},
        statuses={"normal": {}, "alarm": {}},
        transitions=[{"from": "normal", "to": "alarm", "after": "1s"}],
        streams={
            "heartbeat": {
                "topic": "{group}/{device_id}/hb",
                "interval": "500ms",
                "payload": {"up": {"counter": {}}, "status": {"status": {}}},
            },
            "event": {
                "topic": "{group}/{device_id}/events",
                "when": "status_change",
                "payload": {"event": {"format": "{device_id} -> {status}"}},
            },
        },
    )
    async with listening(mosquitto, f"{g}/#") as sub, running(tpl, group=g, count=2):
        await asyncio.sleep(2.2)
    tel, hb, ev = sub.on("/telemetry"), sub.on("/hb"), sub.on("/events")
    assert len(tel) >= 16 and 6 <= len(hb) <= 12
    assert all(m.json()["label"] == f"{m.topic.split('/')[1]}#{m.json()['seq']}" for m in tel)
    assert {m.json()["status"] for m in hb} == {"normal", "alarm"}
    assert sorted(orjson.loads(m.payload)["event"] for m in ev) == [
        f"{g}-00000 -> alarm",
        f"{g}-00001 -> alarm",
    ]
