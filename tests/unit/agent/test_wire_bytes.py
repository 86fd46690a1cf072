"""The bytes a seed puts on the wire, pinned: the send path may get faster, never
different. Real engine and MQTT sender into in-memory transports (tests/perf/hotpath.py),
on the benchmarks' own scenarios and a virtual clock."""

from __future__ import annotations

import random
from typing import Any

import orjson

from tests.perf.hotpath import T0, Rig, behaviour_template, digest, shared_template


async def test_shared_connection_bytes_for_a_seed_are_pinned() -> None:
    rig = Rig(shared_template(), count=50, seed=7)
    await rig.run(2.0)
    f = rig.figures()
    assert (f["sent"], f["errors"], f["skipped"]) == (10001, 0, 0)
    assert f["lateness"] == (10001, 0.404, 0.84, 999)
    first = rig.sinks[0].chunks[0]
    assert first.startswith(
        b'0b\x00\x0cperf/g-00000{"device":"g-00000","seq":0,"temp":24.17,"hum":51.9,'
        b'"state":"ok","ts":1800000000001}'
    )
    assert digest(rig.sinks) == SHARED_DIGEST


async def test_the_folded_send_loop_sends_what_the_general_one_does() -> None:
    rigs = [Rig(shared_template(), count=30, seed=3) for _ in range(2)]
    rigs[1].runner._plain = False  # every send through _tick, _emit, _out and send()
    for rig in rigs:
        await rig.run(1.0)
    assert rigs[0].runner._plain
    assert rigs[0].figures() == rigs[1].figures()
    assert digest(rigs[0].sinks) == digest(rigs[1].sinks)


async def test_sends_on_a_shared_connection_that_is_down_are_errors() -> None:
    rig = Rig(shared_template(), count=5, seed=7, connect=False)
    await rig.run(0.1)
    f = rig.figures()
    assert f["sent"] == 0
    assert f["errors"] == f["lateness"][0] > 40  # every attempt, none sent
    assert rig.runner.report.last_error == "not connected"
    assert rig.sinks[0].writes == 0


async def test_behaviour_bytes_and_figures_for_a_seed_are_pinned() -> None:
    rig = Rig(behaviour_template(), count=20, seed=7)
    await rig.run(90.0, command_rate=2)
    f = rig.figures()
    assert f == BEHAVIOUR_FIGURES
    wire = b"".join(c for s in rig.sinks for c in s.chunks)
    for topic in (b"/hb{", b"/event{", b"/cmd/reply{"):
        assert topic in wire  # both streams and the replies are in what is pinned
    assert digest(rig.sinks) == BEHAVIOUR_DIGEST


# Taken before the hot path was optimised (issue 12); a change here is a change on the wire.
SHARED_DIGEST = "8adb10e853527ad920a3fa4fa2aa6ac7bdaddb887c01e3aad5418d93312a69e2"
BEHAVIOUR_DIGEST = "334f45371fc495885c24c7d7ab857f09bc10adeaa90d585af13c3d2a186d667f"
BEHAVIOUR_FIGURES = {
    "sent": 2344,
    "skipped": 0,
    "errors": 0,
    "transitions": 30,
    "moves": {"normal>degraded": 18, "degraded>normal": 12},
    "faults": {
        "clock_skew": 2083,
        "duplicate": 22,
        "wrong_type": 20,
        "out_of_order": 17,
        "missing_field": 31,
        "malformed_json": 12,
    },
    "statuses": {"normal": 14, "degraded": 6},
    "commands": 180,
    "replies": 179,
    "replies_error": 11,
    "lateness": (2114, 0.0, 0.0, 999),
}


EVERY_KIND = {
    "id": {"device_id": {}},
    "n": {"counter": {"start": 5, "step": 3}},
    "f": {"uniform": {"min": -2.5, "max": 7.25, "decimals": 3}},
    "i": {"uniform": {"min": 1, "max": 6}},
    "g": {"normal": {"mean": 10.0, "stddev": 2.0}},
    "g2": {"normal": {"mean": 10.0, "stddev": 2.0, "decimals": 1}},
    "gc": {"normal": {"mean": 0.0, "stddev": 1.0, "min": -0.5, "max": 0.5}},
    "c": {"choice": {"values": ["a", "b", 3]}},
    "cw": {"choice": {"values": ["x", "y"], "weights": [1, 3.5]}},
    "ms": {"timestamp": {"format": "epoch_ms"}},
    "s": {"timestamp": {"format": "epoch_s"}},
    "iso": {"timestamp": {"format": "iso"}},
    "b": {"bool": {"p_true": 0.3}},
    "k": {"const": {"nested": [1, 2]}},
    "st": {"status": {}},
    "w": {"sine": {"min": 0, "max": 1, "period": "10s", "noise": 0.1}},
}


def test_generated_messages_are_what_the_field_functions_give() -> None:
    """Every inlined generator, mixed with called ones: the generated next() and
    encode() give what calling each field's function in order gives, draw for draw."""
    from agent.generators import DeviceNames, _compile_field, compile_fields, device_rng
    from agent.template import parse_field

    fields = {k: parse_field(v, k) for k, v in EVERY_KIND.items()}
    names = DeviceNames("dev-1")
    names.status[0] = "normal"

    def fresh() -> tuple[Any, list[Any]]:
        rng, clock = device_rng(11, "g", 1), [0.5]
        payload = compile_fields(fields, rng=rng, device_id="dev-1", clock=clock, names=names)
        rng2, clock2 = device_rng(11, "g", 1), [0.5]
        fns = [
            (k, _compile_field(f.generator, f.params, rng2, "dev-1", clock2, names))
            for k, f in fields.items()
        ]
        return payload, fns

    payload, fns = fresh()
    for step in range(300):
        now = T0 + step * 0.37
        assert payload.next(now) == {k: f(now) for k, f in fns}
    payload, fns = fresh()
    for step in range(300):
        now = T0 + step * 0.37
        assert payload.encode(now) == orjson.dumps({k: f(now) for k, f in fns})


def test_device_random_gives_what_random_random_gives() -> None:
    from agent.generators import DeviceRandom

    a, b = DeviceRandom(2**63 + 12345), random.Random(2**63 + 12345)
    assert not hasattr(a, "__dict__")
    for _ in range(50):
        assert a.random() == b.random()
        assert a.gauss(1.0, 2.0) == b.gauss(1.0, 2.0)
        assert a.uniform(-3, 3) == b.uniform(-3, 3)
        assert a.randint(0, 10**12) == b.randint(0, 10**12)
        assert a.randrange(3, 999) == b.randrange(3, 999)
        assert a.choice("abcdef") == b.choice("abcdef")
        assert a.choices("xyz", weights=[1, 2, 3], k=4) == b.choices("xyz", weights=[1, 2, 3], k=4)
        assert a.expovariate(2.5) == b.expovariate(2.5)
        assert a.getrandbits(128) == b.getrandbits(128)
