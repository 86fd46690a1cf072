"""Persistent sessions: a command sent while its device reconnects still arrives."""

from __future__ import annotations

import asyncio
import time

import aiomqtt
import orjson
import pytest

from tests.integration.agent.conftest import listening, running, template, unique_group

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(40)]


async def _until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


@pytest.mark.parametrize(
    ("version", "clean_start", "delivered"),
    [("3.1.1", False, True), ("5", False, True), ("5", True, False), ("3.1.1", True, False)],
)
async def test_commands_sent_during_a_reconnect(
    mosquitto, version: str, clean_start: bool, delivered: bool
) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        interval="1s",
        mqtt={"version": version, "clean_start": clean_start},
        commands={"topic": "{group}/{device_id}/cmd", "reply_after": 0},
    )
    async with (
        listening(mosquitto, f"{g}/+/cmd/reply") as replies,
        running(tpl, group=g, count=1) as r,
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=f"cmd-{g}") as backend,
    ):
        assert await _until(lambda: r.ready() == 1, 5), "subscribed before the test starts"
        d = r.devices[0]
        r._drop(d, r.clock(), 1.5)  # the device is away for 1.5 s
        assert not r.sender.is_connected(0) and r.ready() == 0
        await asyncio.sleep(0.3)  # the broker saw it go
        await backend.publish(f"{g}/{d.id}/cmd", b'{"id": "c-1", "command": "reboot"}', qos=1)
        assert await _until(lambda: r.sender.is_connected(0), 5), "reconnected"
        await asyncio.sleep(1.0)
    got = [orjson.loads(m.payload) for m in replies.messages]
    if delivered:
        assert [(x["id"], x["status"]) for x in got] == [("c-1", "ok")]
        assert r.report.commands == 1
    else:
        assert got == [], "a clean session forgets what came while it was away"


def test_session_expiry_needs_version_5() -> None:
    from agent.errors import ScenarioError
    from agent.template import parse_template

    doc = {
        "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "t", "session_expiry": "1h"}},
        "payload": {"a": 1},
    }
    with pytest.raises(ScenarioError, match=r"transport\.mqtt\.session_expiry: only with version"):
        parse_template("t", doc)
    doc["transport"]["mqtt"].update(version=5, clean_start=False)
    assert parse_template("t", doc).transport.mqtt.session_expiry_s == 3600
