"""A broker's "no" is an error with its reason, never a message sent (real Mosquitto)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from agent import wire
from agent.engine import GroupRunner
from tests.integration.agent.conftest import listening, running, template, unique_group

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(40)]

# Anonymous clients may use ok/#, nothing else (lines before any `user` line).
ACL = "topic readwrite ok/#\n"


@pytest.mark.parametrize("qos", [1, 2])
async def test_v5_acl_deny_counts_errors_with_the_reason(fresh_mosquitto, qos: int) -> None:
    broker = fresh_mosquitto(acl=ACL)
    g = unique_group()
    allowed = template(broker, mqtt={"topic": "ok/{device_id}", "version": 5, "qos": qos})
    denied = template(broker, mqtt={"topic": "denied/{device_id}", "version": 5, "qos": qos})
    async with (
        listening(broker, "ok/#") as sub,
        running(allowed, group=f"{g}a", count=2) as ok,
        running(denied, group=f"{g}d", count=2) as no,
    ):
        await asyncio.sleep(1.5)
    assert ok.report.errors == 0 and ok.report.sent == len(sub.messages) > 0
    rep = no.report
    assert rep.sent == 0, "a refused publish is never a send"
    assert rep.errors >= 10  # 2 devices x 10/s x 1.5 s, every one refused (on a busy box, fewer)
    assert "not authorized" in rep.last_error and "0x87" in rep.last_error
    assert "denied/" in rep.last_error and ("PUBACK" if qos == 1 else "PUBREC") in rep.last_error


DYNSEC = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


async def test_suback_failure_is_an_error(fresh_mosquitto, tmp_path) -> None:
    # Mosquitto's acl_file never refuses a SUBSCRIBE; its dynamic-security plugin does.
    if not Path(DYNSEC).exists():
        pytest.skip("Mosquitto's dynamic security plugin is not installed")
    config = tmp_path / "dynsec.json"
    config.write_text(
        json.dumps(
            {
                "defaultACLAccess": {
                    "publishClientSend": True,
                    "publishClientReceive": True,
                    "subscribe": False,
                    "unsubscribe": True,
                },
                "clients": [],
                "groups": [],
                "roles": [],
            }
        )
    )
    broker = fresh_mosquitto([f"plugin {DYNSEC}", f"plugin_opt_config_file {config}"])
    g = unique_group()
    tpl = template(
        broker,
        mqtt={"topic": "ok/{device_id}", "version": 5},
        commands={"topic": "denied/{device_id}/cmd"},
    )
    async with running(tpl, group=g, count=2) as r:
        deadline = time.monotonic() + 5
        while r.report.errors < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert r.report.errors == 2, "one refused subscription per device"
    assert "subscription to denied/" in r.report.last_error
    assert "0x87 not authorized" in r.report.last_error


async def test_connack_refusal_names_the_reason(fresh_mosquitto) -> None:
    broker = fresh_mosquitto(anonymous=False)
    tpl = template(broker, mqtt={"topic": "ok/{device_id}", "version": 5})
    a = wire.Assignment(
        group_id=1,
        group=unique_group(),
        run_id=1,
        template_name="t",
        template=tpl,
        index_start=0,
        index_end=2,
        seed=1,
        lease_until=time.time() + 60,
    )
    runner = GroupRunner(a)
    runner.start()
    await asyncio.sleep(1.0)
    await runner.stop("test over")
    assert runner.report.sent == 0 and runner.report.errors > 0
    assert "CONNACK 0x87 not authorized" in runner.report.last_error, runner.report.last_error
