"""Sparkplug B edge nodes on a real Mosquitto, read by an independent decoder."""

from __future__ import annotations

import asyncio
import itertools
import time

import aiomqtt
import pytest

from agent import sparkplug
from tests.integration.agent.conftest import listening, running, unique_group
from tests.integration.agent.sparkplug_wire import decode

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(40)]


def tpl(broker, **extra):
    return {
        "transport": {"mqtt": {"url": broker.url, "version": extra.pop("version", "3.1.1")}},
        "interval": extra.pop("interval", "100ms"),
        "sparkplug": {
            "group_id": extra.pop("group_id"),
            "devices": 2,
            "device_id": "press{n}",
            "node_metrics": {"Uptime": {"counter": {}}},
        },
        "payload": {
            "Temperature": {"uniform": {"min": 18.0, "max": 26.0}},
            "Motor/Running": {"bool": {}},
            "Count": {"counter": {"start": 1}},
            "Label": {"const": "line-a"},
        },
        **extra,
    }


def by_node(messages):
    """(kind, device, decoded) per edge node, in arrival order."""
    out: dict[str, list] = {}
    for m in messages:
        parts = m.topic.split("/")
        assert parts[0] == "spBv1.0"
        device = parts[4] if len(parts) > 4 else None
        out.setdefault(parts[3], []).append((parts[2], device, decode(m.payload)))
    return out


async def _until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


@pytest.mark.parametrize("version", ["3.1.1", "5"])
async def test_births_data_seq_and_deaths(mosquitto, version: str) -> None:
    g = unique_group()
    t = tpl(mosquitto, group_id=g, interval="20ms", version=version)
    async with listening(mosquitto, f"spBv1.0/{g}/#") as sub, running(t, group=g, count=2):
        await asyncio.sleep(2.5)  # ~125 sends x 3 messages a node: seq wraps past 255
    nodes = by_node(sub.messages)
    assert sorted(nodes) == [f"{g}-00000", f"{g}-00001"]
    for msgs in nodes.values():
        kinds = [k for k, _, _ in msgs]
        assert kinds[:3] == ["NBIRTH", "DBIRTH", "DBIRTH"]
        assert kinds[-3:] == ["DDEATH", "DDEATH", "NDEATH"]  # a clean stop says goodbye
        birth = msgs[0][2]
        assert birth["seq"] == 0
        assert birth["metrics"]["bdSeq"] == (sparkplug.INT64, 0)
        assert birth["metrics"]["Node Control/Rebirth"] == (sparkplug.BOOLEAN, False)
        # seq counts 0-255 over every message of the node but NDEATH, wrapping
        seqs = [d["seq"] for k, _, d in msgs if k != "NDEATH"]
        assert seqs == [i % 256 for i in range(len(seqs))] and len(seqs) > 256
        assert msgs[-1][2]["metrics"] == {"bdSeq": (sparkplug.INT64, 0)}
        ddata = [(dev, d) for k, dev, d in msgs if k == "DDATA"]
        assert {dev for dev, _ in ddata} == {"press0", "press1"}
        for dev in ("press0", "press1"):
            mine = [d["metrics"] for x, d in ddata if x == dev]
            assert [m["Count"] for m in mine[:3]] == [(4, 2), (4, 3), (4, 4)]  # 1 was the birth
            assert all(18 <= m["Temperature"][1] <= 26 and m["Temperature"][0] == 10 for m in mine)
            assert {m["Motor/Running"][0] for m in mine} == {sparkplug.BOOLEAN}
            assert {m["Label"] for m in mine} == {(sparkplug.STRING, "line-a")}
        assert all(set(d["metrics"]) == {"Uptime"} for k, _, d in msgs if k == "NDATA")


async def test_rebirth_on_ncmd_and_the_will_after_a_drop(mosquitto) -> None:
    g = unique_group()
    t = tpl(mosquitto, group_id=g, interval="200ms")
    node_id = f"{g}-00000"
    async with (
        listening(mosquitto, f"spBv1.0/{g}/#") as sub,
        running(t, group=g, count=1) as r,
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=f"host-{g}") as host,
    ):
        assert await _until(lambda: r.ready() == 1, 5)
        await asyncio.sleep(0.5)
        cmd = sparkplug.encode(int(time.time() * 1000), None, {sparkplug.REBIRTH: True})
        await host.publish(f"spBv1.0/{g}/NCMD/{node_id}", cmd, qos=1)
        assert await _until(lambda: sum(m.topic.split("/")[2] == "NBIRTH"
                                        for m in sub.messages) == 2, 5)  # fmt: skip
        r._drop(r.devices[0], r.clock(), 0.5)  # abrupt: the broker publishes the will
        assert await _until(lambda: r.sender.is_connected(0), 5)
        await asyncio.sleep(0.5)
    msgs = by_node(sub.messages)[node_id]
    births = [(i, d) for i, (k, _, d) in enumerate(msgs) if k == "NBIRTH"]
    assert [d["metrics"]["bdSeq"][1] for _, d in births] == [0, 0, 1]  # rebirth keeps bdSeq
    assert all(d["seq"] == 0 for _, d in births)
    i = births[1][0]
    assert [k for k, _, _ in msgs[i + 1 : i + 3]] == ["DBIRTH", "DBIRTH"]
    deaths = [d for k, _, d in msgs if k == "NDEATH"]
    assert deaths[0]["metrics"] == {"bdSeq": (sparkplug.INT64, 0)}  # the will of connection 0
    assert r.report.commands == 1
    # after the drop the sequence starts again from the new birth
    after = msgs[births[2][0] :]
    seqs = [d["seq"] for k, _, d in after if k != "NDEATH"]
    assert seqs == list(itertools.islice(itertools.count(), len(seqs)))


def test_sparkplug_mistakes() -> None:
    from agent.errors import ScenarioError
    from agent.template import parse_template

    base = {"transport": {"mqtt": {"url": "mqtt://127.0.0.1:1"}}, "payload": {"a": 1}}
    with pytest.raises(ScenarioError, match=r"mqtt: missing required field 'topic'"):
        parse_template("t", base)
    for extra, where in (
        ({"sparkplug": {"group_id": "a/b"}}, "sparkplug.group_id"),
        ({"sparkplug": {"group_id": "g", "devices": 2, "device_id": "d"}}, "sparkplug.device_id"),
        ({"sparkplug": {"group_id": "g"}, "verify": True}, "verify"),
    ):
        with pytest.raises(ScenarioError) as e:
            parse_template("t", {**base, **extra})
        assert e.value.path == f"templates.t.{where}"
