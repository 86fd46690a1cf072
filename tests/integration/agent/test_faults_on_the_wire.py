"""Every fault, observed by an independent subscriber on a real Mosquitto."""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import orjson
import pytest

from tests.integration.agent.conftest import listening, running, template, unique_group

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(30)]


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


async def test_malformed_json_arrives_malformed(mosquitto) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        payload={"seq": {"counter": {"start": 1}}, "temp": {"uniform": {"min": 1.0, "max": 2.0}}},
        faults={"malformed_json": {"rate": 0.3}},
    )
    async with listening(mosquitto, f"{g}/#") as sub, running(tpl, group=g, count=4) as r:
        await asyncio.sleep(2.0)
    got = sub.messages
    bad = [m for m in got if not _parses(m.payload)]
    good = [m for m in got if _parses(m.payload)]
    injected = r.report.faults["malformed_json"]
    assert injected > 5 and len(bad) == injected
    assert all(m.payload.startswith(b"{") and not m.payload.endswith(b"}") for m in bad)
    assert all(set(m.json()) == {"seq", "temp"} for m in good)


async def test_duplicates_and_out_of_order_arrive_as_such(mosquitto) -> None:
    g = unique_group()
    tpl = template(mosquitto, faults={"duplicate": {"rate": 0.2}, "out_of_order": {"rate": 0.2}})
    async with listening(mosquitto, f"{g}/#") as sub, running(tpl, group=g, count=3) as r:
        await asyncio.sleep(2.5)
    dups = swaps = 0
    for topic, msgs in itertools.groupby(
        sorted(sub.messages, key=lambda m: m.topic), lambda m: m.topic
    ):
        seqs = [m.json()["seq"] for m in msgs]  # per device, in arrival order (QoS 1, one client)
        dups += len(seqs) - len(set(seqs))
        swaps += sum(1 for a, b in itertools.pairwise(seqs) if b == a - 1)
        # Nothing invented, nothing lost: every number from 1 to the highest arrived.
        assert set(seqs) == set(range(1, max(seqs) + 1)), topic
    assert dups == r.report.faults["duplicate"] > 0
    assert swaps == r.report.faults["out_of_order"] > 0


async def test_clock_skew_and_drift_show_in_timestamps(mosquitto) -> None:
    g = unique_group()
    payload = {"ts": {"timestamp": {"format": "epoch_ms"}}}
    skewed = template(mosquitto, payload=payload, faults={"clock_skew": {"offset": "-30s"}})
    drifting = template(mosquitto, payload=payload, faults={"clock_drift": {"ppm": 200_000}})
    async with (
        listening(mosquitto, f"{g}a/#", f"{g}b/#") as sub,
        running(skewed, group=f"{g}a", count=2),
        running(drifting, group=f"{g}b", count=1),
    ):
        await asyncio.sleep(2.0)
    skew = [m.json()["ts"] / 1000 - m.at for m in sub.messages if m.topic.startswith(f"{g}a/")]
    assert skew and all(-30.5 < s < -29.5 for s in skew), skew
    drift = [m for m in sub.messages if m.topic.startswith(f"{g}b/")]
    # 200,000 ppm: the device's clock runs 20 % fast from the moment it started.
    device_elapsed = (drift[-1].json()["ts"] - drift[0].json()["ts"]) / 1000
    real_elapsed = drift[-1].at - drift[0].at
    assert device_elapsed == pytest.approx(real_elapsed * 1.2, abs=0.15)


async def test_tcp_drop_fires_the_last_will_and_the_device_comes_back(mosquitto) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        interval="200ms",
        mqtt={"will": {"topic": "{group}/{device_id}/status", "payload": "gone:{device_id}"}},
        faults={"tcp_drop": {"rate": 0.25, "reconnect_after": "300ms"}},
    )
    async with listening(mosquitto, f"{g}/#") as sub, running(tpl, group=g, count=2) as r:
        assert await sub.wait_for(lambda s: len(s.on("/status")) >= 2, 8)
        await asyncio.sleep(1.0)
    wills = sub.on("/status")
    assert {w.payload for w in wills} <= {b"gone:" + d.encode() for d in r.device_ids}
    drops = r.report.faults["tcp_drop"]
    assert len(wills) == drops
    assert r.report.reconnects >= drops - 2  # the last drops may not be due yet
    # After its first will, a device keeps sending: it reconnected.
    first_will = min(w.at for w in wills)
    assert any(m.at > first_will + 0.2 for m in sub.on("/telemetry"))


async def test_a_clean_stop_does_not_fire_the_will(mosquitto) -> None:
    g = unique_group()
    tpl = template(mosquitto, mqtt={"will": {"topic": "{group}/{device_id}/status"}})
    async with listening(mosquitto, f"{g}/#") as sub:
        async with running(tpl, group=g, count=2):
            await asyncio.sleep(0.5)
        await asyncio.sleep(0.5)
    assert sub.on("/telemetry") and not sub.on("/status")


async def test_silent_devices_stay_connected_but_quiet(mosquitto) -> None:
    g = unique_group()
    tpl = template(
        mosquitto,
        interval="50ms",
        mqtt={"will": {"topic": "{group}/{device_id}/status"}},
        faults={"silent": {"rate": 0.2, "duration": "1s"}},
    )

    def longest_gap(s) -> float:
        times = [m.at for m in s.on("/telemetry")]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    async with listening(mosquitto, f"{g}/#") as sub, running(tpl, group=g, count=1) as r:
        # A silence that starts near the end would be cut off by the stop: wait (bounded)
        # until one has ended, i.e. the device spoke again after it.
        assert await sub.wait_for(lambda s: longest_gap(s) > 0.9, 10)
    assert r.report.faults["silent"] >= 1  # a second of silence...
    assert not sub.on("/status")  # ...without losing the connection


async def test_reconnect_storm_reconnects_at_the_configured_rate(fresh_mosquitto) -> None:
    broker = fresh_mosquitto()
    g = unique_group()
    rate, seconds = 8.0, 3.0
    tpl = template(
        broker,
        interval="500ms",
        mqtt={"will": {"topic": "{group}/{device_id}/status"}},
        faults={"reconnect_storm": {"rate": rate, "reconnect_after": "200ms"}},
    )
    async with listening(broker, f"{g}/+/status") as sub, running(tpl, group=g, count=40) as r:
        log_mark = len(broker.log_path.read_text())
        t0 = time.time()
        await asyncio.sleep(seconds)
        elapsed = time.time() - t0
        connects_log = broker.log_path.read_text()[log_mark:]
    # Each drop fires a will (seen by our subscriber); each reconnect is a new
    # connection in the broker's own log.
    wills = [w for w in sub.messages if t0 <= w.at <= t0 + elapsed]
    reconnects = len(re.findall(rf"New client connected from .* as {g}-", connects_log))
    expected = rate * elapsed
    assert abs(len(wills) - expected) <= 0.25 * expected + 2, (len(wills), expected)
    assert abs(reconnects - expected) <= 0.25 * expected + 3, (reconnects, expected)
    assert r.report.faults["reconnect_storm"] >= len(wills)


async def test_each_device_logs_in_with_its_own_credentials(fresh_mosquitto) -> None:
    g = unique_group()
    users = {f"{g}-{i:05d}": f"pw-{i}" for i in range(2)} | {"listener": "x"}
    # Each user may publish only under its own name: a device using another's
    # login (or the template's) would be refused.
    acl = "user listener\ntopic read #\npattern write %u/telemetry\n"
    broker = fresh_mosquitto(anonymous=False, users=users, acl=acl)
    tpl = template(
        broker,
        mqtt={"topic": "{device_id}/telemetry"},
        credentials={"username": "{device_id}", "password": "pw-{index}"},
    )
    async with (
        listening(broker, "#", username="listener", password="x") as sub,
        running(tpl, group=g, count=2),
    ):
        await sub.wait_for(lambda s: len({m.topic for m in s.messages}) == 2, 3)
    assert {m.topic for m in sub.messages} == {f"{g}-00000/telemetry", f"{g}-00001/telemetry"}
