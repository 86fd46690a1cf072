"""The control-plane wire types and the agent's durable usage journal."""

from __future__ import annotations

import msgspec
import pytest

from agent import wire
from agent.journal import Journal


def line(group: int = 1, devices: int = 50, start: int = 0, end: int = 1000) -> wire.UsageLine:
    return wire.UsageLine(group_id=group, run_id=1, devices=devices, start_ms=start, end_ms=end)


def test_topics_round_trip() -> None:
    t = wire.topic("a1b2", wire.USAGE_ACK)
    assert t == "mm/v1/agents/a1b2/usage/ack"
    assert wire.agent_of(t) == ("a1b2", "usage/ack")
    assert wire.agent_of("lab/x/telemetry") is None
    assert wire.agent_of("mm/v1/agents//usage") is None


def test_decode_is_strict() -> None:
    rec = wire.UsageRecord(seq=3, lines=[line()])
    assert wire.decode(wire.UsageRecord, wire.encode(rec)) == rec
    with pytest.raises(msgspec.ValidationError):
        wire.decode(wire.UsageRecord, b'{"seq": "three", "lines": []}')


def test_histogram_percentiles_and_merge() -> None:
    a, b = wire.Histogram(), wire.Histogram()
    for us in range(1, 1001):  # 1 µs .. 1 ms
        a.add(us * 1000 // 1000)
    for _ in range(10):
        b.add(50_000)  # ten 50 ms outliers
    a.merge(b)
    assert a.count == 1010
    assert a.max_us == 50_000
    assert 0.45 <= a.percentile_ms(50) <= 0.55  # ~0.5 ms within bucket error
    assert a.percentile_ms(99.5) >= 47.0  # the outliers dominate the top
    # Survives its own wire round trip, which is how agents send it.
    back = wire.decode(wire.Histogram, wire.encode(a))
    assert back.percentile_ms(50) == a.percentile_ms(50)


def test_journal_sequences_survive_reopen_and_prune(tmp_path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    r1 = j.append([line()])
    r2 = j.append([line(start=1000, end=2000)])
    assert (r1.seq, r2.seq) == (1, 2)
    j.ack(1)
    assert [r.seq for r in j.unacked()] == [2]
    j.close()

    j = Journal(tmp_path / "j.sqlite3")  # as after a crash and restart
    assert j.acked_seq == 1 and j.last_seq == 2
    j.ack(2)
    assert j.pending_count() == 0
    assert j.prune(keep_seconds=-1) == 2  # drops acked rows ...
    assert j.append([line()]).seq == 3  # ... yet never reuses a seq
    assert j.total_device_ms() == 50 * 1000


def test_prune_drops_at_most_a_batch_of_the_oldest_acked_rows_a_call(tmp_path) -> None:
    now = [1_000.0]
    j = Journal(tmp_path / "j.sqlite3", clock=lambda: now[0])
    for i in range(5):
        now[0] += 1
        j.append([line(start=i * 1000, end=(i + 1) * 1000)])
    j.ack(4)
    now[0] += 10
    assert j.prune(keep_seconds=0, limit=3) == 3  # seqs 1-3
    assert j.total_device_ms() == 2 * 50 * 1000
    assert j.prune(keep_seconds=0, limit=3) == 1  # seq 4; never the unacknowledged 5
    assert j.prune(keep_seconds=0, limit=3) == 0
    assert [r.seq for r in j.unacked()] == [5]
    j.close()


def test_ack_never_goes_backwards_or_past_last(tmp_path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    for _ in range(3):
        j.append([line()])
    j.ack(2)
    j.ack(1)
    assert j.acked_seq == 2
    j.ack(99)  # an ack beyond what we wrote (another agent's state?) is clamped
    assert j.acked_seq == 3


def test_checkpointed_open_usage_becomes_a_record_after_a_crash(tmp_path) -> None:
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    a = wire.UsageLine(group_id=1, run_id=1, index_start=0, devices=5, start_ms=0, end_ms=700)
    b = wire.UsageLine(group_id=1, run_id=1, index_start=5, devices=5, start_ms=0, end_ms=700)
    j.save(open_lines=[a, b], durable=False)
    # A cut of range 0 covers its open interval; range 5 is still open ...
    j.append([msgspec.structs.replace(a, end_ms=900)])
    assert j.open_lines() == [b]
    j.save(open_lines=[msgspec.structs.replace(b, end_ms=800)])  # replaces the checkpoint
    j.close()  # ... when the process dies without cutting it

    j = Journal(path)
    assert j.recovered is not None and j.recovered.seq == 2
    assert j.recovered.lines == [msgspec.structs.replace(b, end_ms=800)]
    assert j.open_lines() == [] and j.last_seq == 2
    assert j.total_device_ms() == 5 * 900 + 5 * 800  # each interval once
    j.close()
    assert Journal(path).recovered is None  # and only once


def test_records_carry_the_journals_epoch(tmp_path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    rec = j.append([line()])
    assert len(j.epoch) == 32 and rec.epoch == j.epoch
    assert wire.decode(wire.UsageRecord, wire.encode(rec)).epoch == j.epoch
    # An older peer's record (no epoch) still decodes, under the empty one.
    assert wire.decode(wire.UsageRecord, b'{"seq": 1, "lines": []}').epoch == ""
