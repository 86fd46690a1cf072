"""Statuses, commands and verification, observed on a real Mosquitto."""

from __future__ import annotations

import asyncio
import itertools
import time

import aiomqtt
import orjson
import pytest

from tests.integration.agent.conftest import listening, running, template, unique_group

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(30)]


async def _publish(broker, topic: str, payload: bytes) -> float:
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"it-pub-{topic[-12:]}") as c:
        at = time.time()
        await c.publish(topic, payload, qos=1)
    return at


def _commands(broker, **extra):
    return template(
        broker,
        interval="500ms",
        payload={"state": "ok"},
        commands={"topic": "{group}/{device_id}/cmd", "reply_after": "300ms", **extra},
    )


async def test_a_command_gets_its_reply_after_the_delay(mosquitto) -> None:
    g = unique_group()
    async with (
        listening(mosquitto, f"{g}/+/cmd/reply") as sub,
        running(_commands(mosquitto), group=g, count=2) as r,
    ):
        dev = r.device_ids[1]
        sent_at = await _publish(
            mosquitto, f"{g}/{dev}/cmd", orjson.dumps({"id": "req-1", "command": "reboot"})
        )
        assert await sub.wait_for(lambda s: s.messages, 5), "no reply"
    (reply,) = sub.messages
    assert reply.topic == f"{g}/{dev}/cmd/reply"
    body = reply.json()
    assert body["id"] == "req-1" and body["command"] == "reboot"
    assert body["status"] == "ok" and body["device"] == dev
    assert 0.3 <= reply.at - sent_at < 1.5
    assert (r.report.commands, r.report.replies) == (1, 1)


async def test_commands_fail_at_their_rate_and_bad_requests_are_answered(mosquitto) -> None:
    g = unique_group()
    async with (
        listening(mosquitto, f"{g}/+/cmd/reply") as sub,
        running(_commands(mosquitto, fail_rate=1.0), group=g, count=1) as r,
    ):
        dev = r.device_ids[0]
        await _publish(mosquitto, f"{g}/{dev}/cmd", b'{"id": 7}')
        await _publish(mosquitto, f"{g}/{dev}/cmd", b"not json")
        assert await sub.wait_for(lambda s: len(s.messages) >= 2, 5)
    by_error = {m.json()["error"]: m.json() for m in sub.messages}
    assert by_error["simulated failure"]["id"] == 7
    assert by_error["simulated failure"]["status"] == "error"
    assert by_error["request is not JSON"]["status"] == "error"


async def test_a_command_can_change_the_status(mosquitto) -> None:
    g = unique_group()
    tpl = _commands(mosquitto, set_status="maintenance")
    tpl["interval"] = "100ms"
    tpl["statuses"] = {"normal": {}, "maintenance": {"payload": {"state": "maintenance"}}}
    async with listening(mosquitto, f"{g}/#") as sub, running(tpl, group=g, count=1) as r:
        dev = r.device_ids[0]
        await asyncio.sleep(0.3)
        await _publish(mosquitto, f"{g}/{dev}/cmd", b'{"id": 1}')
        assert await sub.wait_for(lambda s: s.on("/cmd/reply"), 5)
        await asyncio.sleep(0.4)
    reply_at = sub.on("/cmd/reply")[0].at
    states = [(m.at, m.json()["state"]) for m in sub.on("/telemetry")]
    assert {s for at, s in states if at < reply_at - 0.05} == {"ok"}
    assert {s for at, s in states if at > reply_at + 0.15} == {"maintenance"}
    assert r.report.statuses == {"normal": 0, "maintenance": 1}


async def test_a_status_transition_after_time_changes_payload_and_interval(mosquitto) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        interval="400ms",
        payload={"state": "ok", "temp": {"uniform": {"min": 20.0, "max": 25.0}}},
        statuses={
            "normal": {},
            "degraded": {
                "interval": "100ms",
                "payload": {"state": "degraded", "temp": {"uniform": {"min": 80.0, "max": 90.0}}},
            },
        },
        transitions=[{"from": "normal", "to": "degraded", "after": "1s"}],
    )
    async with listening(mosquitto, f"{g}/#") as sub, running(tpl, group=g, count=1):
        await asyncio.sleep(2.2)
    msgs = [(m.at, m.json()) for m in sub.messages]
    normal = [(at, b) for at, b in msgs if b["state"] == "ok"]
    degraded = [(at, b) for at, b in msgs if b["state"] == "degraded"]
    assert normal and degraded and normal[-1][0] < degraded[0][0]
    assert all(20 <= b["temp"] <= 25 for _, b in normal)
    assert all(80 <= b["temp"] <= 90 for _, b in degraded)
    assert degraded[0][0] - normal[0][0] == pytest.approx(1.0, abs=0.25)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(degraded)]
    assert sum(gaps) / len(gaps) == pytest.approx(0.1, abs=0.03)


async def test_a_received_message_and_a_cron_time_move_the_status(mosquitto) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        interval="100ms",
        payload={"state": "error"},
        statuses={
            "error": {},
            "normal": {"payload": {"state": "ok"}},
            "alarm": {"payload": {"state": "alarm"}},
        },
        transitions=[
            {"from": "error", "to": "normal", "on_message": "{group}/{device_id}/reset"},
            # Six fields: every second (seconds first), so the test need not wait a minute.
            {"from": "normal", "to": "alarm", "cron": "* * * * * *"},
            {"from": "alarm", "to": "normal", "after": "300ms"},
        ],
    )
    async with listening(mosquitto, f"{g}/+/telemetry") as sub, running(tpl, group=g, count=2) as r:
        await asyncio.sleep(1.2)
        assert {m.json()["state"] for m in sub.messages} == {"error"}
        await _publish(mosquitto, f"{g}/{r.device_ids[0]}/reset", b"")
        await asyncio.sleep(2.5)
    dev0 = [m.json()["state"] for m in sub.messages if r.device_ids[0] in m.topic]
    dev1 = [m.json()["state"] for m in sub.messages if r.device_ids[1] in m.topic]
    assert set(dev1) == {"error"}  # nobody reset it
    assert {"ok", "alarm"} <= set(dev0)


async def test_verification_counts_what_the_faults_did(mosquitto) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        interval="50ms",
        faults={"duplicate": {"rate": 0.1}, "out_of_order": {"rate": 0.1}},
        verify=True,
    )
    async with running(tpl, group=g, count=3) as r:
        await asyncio.sleep(2.0)
    v = r.report.verify
    assert v is not None
    assert v.duplicates == r.report.faults["duplicate"] > 0
    assert v.reordered == r.report.faults["out_of_order"] > 0
    assert v.lost == 0 and v.malformed == 0
    assert v.received == r.report.sent
    assert v.latency.count == v.received - v.duplicates
    assert v.latency.percentile_ms(99) < 200


async def test_verification_sees_loss_and_malformed_messages(fresh_mosquitto) -> None:
    g = unique_group()
    # The broker silently drops what device 1 may not publish (QoS 0): that is loss.
    acl = f"topic read #\ntopic write {g}/{g}-00000/telemetry\n"
    broker = fresh_mosquitto(acl=acl)
    tpl = template(
        broker,
        interval="20ms",
        mqtt={"qos": 0},
        faults={"malformed_json": {"rate": 0.2}},
        verify=True,
    )
    async with running(tpl, group=g, count=2) as r:
        await asyncio.sleep(1.0)
    v = r.report.verify
    assert v is not None
    sent_by = {d.id: d.seq for d in r.devices}
    assert v.lost == sent_by[f"{g}-00001"] > 0
    assert 0 < v.malformed <= r.report.faults["malformed_json"]
    assert v.received + v.malformed + v.lost == r.report.sent
