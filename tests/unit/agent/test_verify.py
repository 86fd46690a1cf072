"""The verification counter, fed plain values."""

from __future__ import annotations

import orjson

from agent.verify import WINDOW, Verifier


def feed(v: Verifier, source: str, seqs: list[int], sent_ms: int = 1000) -> None:
    for s in seqs:
        v.observe(source, s, sent_ms, sent_ms + 5)


def test_in_order_stream_is_clean() -> None:
    v = Verifier()
    feed(v, "a", [1, 2, 3, 4])
    r = v.finish({"a": 4})
    assert (r.received, r.lost, r.duplicates, r.reordered) == (4, 0, 0, 0)
    assert r.latency.count == 4 and r.latency.percentile_ms(50) == 5.0


def test_duplicates_reordering_and_gaps() -> None:
    v = Verifier()
    feed(v, "a", [1, 2, 2, 4, 3, 6])
    feed(v, "b", [1, 1, 1])
    assert v.snapshot().lost == 1  # 5 missing below a's highest (6)
    r = v.finish({"a": 7, "b": 2})  # a's 5 and 7 and b's 2 never came
    assert r.duplicates == 3
    assert r.reordered == 1
    assert r.lost == 3
    assert r.received == 9


def test_sources_are_independent() -> None:
    v = Verifier()
    feed(v, "a", [1, 2])
    feed(v, "b", [1, 2])
    assert v.report.duplicates == 0 and v.finish({"a": 2, "b": 2}).lost == 0


def test_payloads_without_a_mark_or_not_json_count_as_malformed() -> None:
    v = Verifier()
    assert v.observe_payload("a", orjson.dumps({"x": 1, "_mm": {"s": 1, "t": 10}}), 12.0)
    assert not v.observe_payload("a", b'{"x": 1', 12.0)
    assert not v.observe_payload("a", b'{"x": 1}', 12.0)
    assert not v.observe_payload("a", b"[1, 2]", 12.0)
    r = v.finish({"a": 3})
    assert (r.received, r.malformed, r.lost) == (1, 3, 0)  # malformed ones arrived


def test_memory_stays_bounded_per_source() -> None:
    v = Verifier()
    feed(v, "a", list(range(1, 3 * WINDOW)))
    assert len(v.sources["a"].recent) <= WINDOW + 1
    v.observe("a", 5, 0, 0)  # far older than the window: taken as a duplicate
    assert v.report.duplicates == 1


def test_reports_of_several_ranges_add_up() -> None:
    from agent import wire

    a = wire.GroupReport(group_id=1, run_id=1, running=2, faults={"duplicate": 2})
    a.statuses = {"normal": 2}
    b = wire.GroupReport(group_id=1, run_id=1, running=1, faults={"duplicate": 1, "silent": 4})
    b.statuses, b.transitions, b.replies = {"normal": 0, "hot": 1}, 3, 5
    b.verify = wire.VerifyReport(received=10, lost=1)
    a.merge_behaviour(b)
    assert a.faults == {"duplicate": 3, "silent": 4}
    assert a.statuses == {"normal": 2, "hot": 1}
    assert (a.transitions, a.replies) == (3, 5)
    assert a.verify is not None and (a.verify.received, a.verify.lost) == (10, 1)
