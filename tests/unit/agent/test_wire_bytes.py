"""The bytes a seed puts on the wire, pinned: the send path may get faster, never
different. Real engine and MQTT sender into in-memory transports (tests/perf/hotpath.py),
on the benchmarks' own scenarios and a virtual clock."""

from __future__ import annotations

from tests.perf.hotpath import Rig, behaviour_template, digest, shared_template


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
