"""An agent bills only the ranges assigned to it, while they were (both databases).

A compromised board could send usage for any group of its org, any run, window or
device count; a big enough number pushed SUM(device_ms) past int64 and every usage
report (/api/v1/usage, /metrics, the live feed) failed from then on. Now a line is
accepted only for a run and device range the appliance assigned to that agent,
inside the assignment's time (a few seconds of clock skew allowed), not in the
future; the rest is refused, audited, and still acknowledged so an honest agent
does not resend forever.
"""

from __future__ import annotations

import json

import pytest

from agent import wire
from appliance import models
from appliance.audit.models import AuditEntry
from appliance.fleet import history, placement
from appliance.observability import metrics, snapshot
from appliance.usage import service as usage
from tests.unit.appliance import factories

S = 1000  # ms
BIG = 2**62


@pytest.fixture
def fleet(org: models.Org) -> dict:
    """Agents a and b share group g (devices 0-4 on a, 5-9 on b), assigned a minute ago."""
    a = factories.online_agent(org, capacity=100)
    b = factories.online_agent(org, capacity=100)
    factories.group(org, "g", 10)
    factories.group(org, "idle", 10)  # of the same org, never started
    g = factories.start(org, "g")
    now = history.now_ms()
    history.AssignmentSpan.update(since_ms=now - 60 * S).execute()
    ranges = {
        r.agent.agent_id: r.index_start
        for r in models.Assignment.select(models.Assignment, models.Agent).join(models.Agent)
    }
    assert sorted(ranges.values()) == [0, 5]
    return {"a": a, "b": b, "g": g, "now": now, "a_from": ranges[a], "b_from": ranges[b]}


def line(f: dict, start: int, end: int, **kw: int) -> wire.UsageLine:
    fields = dict(group_id=f["g"].id, run_id=f["g"].run_id, index_start=f["a_from"], devices=5)
    fields.update(kw)
    return wire.UsageLine(start_ms=start, end_ms=end, **fields)  # type: ignore[arg-type]


def send(agent_id: str, seq: int, *lines: wire.UsageLine, epoch: str = "e1", now: int) -> int:
    ack = usage.ingest(
        agent_id, wire.UsageRecord(seq=seq, epoch=epoch, lines=list(lines)), now_ms=now
    )
    assert ack is not None and ack.epoch == epoch
    return ack.seq


def refusals() -> list[dict]:
    rows = AuditEntry.select().where(AuditEntry.action == "usage.refused").order_by(AuditEntry.id)
    return [json.loads(r.after) for r in rows]


def billed(f: dict) -> int:
    return usage.group_device_ms(f["g"].id)


def test_an_honest_line_is_billed(fleet: dict) -> None:
    now = fleet["now"]
    assert send(fleet["a"], 1, line(fleet, now - 10 * S, now - 9 * S), now=now) == 1
    assert billed(fleet) == 5 * S
    assert refusals() == []


@pytest.mark.parametrize(
    ("what", "forge", "reason"),
    [
        ("another agent's range", dict(index_start=5), "not assigned to this agent"),
        ("another run", dict(run_offset=1), "group run not assigned"),
        ("a group it was never given", dict(idle=True), "group run not assigned"),
        ("more devices than its range", dict(devices=6), "6 devices exceed"),
        ("before it was assigned", dict(shift=-120 * S), "outside the time"),
        ("in the future", dict(shift=+60 * S), "in the future"),
        ("an hour-long line", dict(length=2 * 3600 * S), "longer than an hour"),
        ("numbers past int64", dict(devices=BIG, shift=-40 * S, length=40 * S), "exceed"),
        ("no devices", dict(devices=0), "empty"),
    ],
)
def test_forged_lines_are_refused_audited_and_acked(
    fleet: dict, org: models.Org, what: str, forge: dict, reason: str
) -> None:
    now = fleet["now"]
    forge = dict(forge)  # the parameter is shared by both databases' runs
    start = now - 10 * S + forge.pop("shift", 0)
    end = start + forge.pop("length", S)
    kw: dict = {}
    if forge.pop("run_offset", 0):
        kw["run_id"] = fleet["g"].run_id + 1
    if forge.pop("idle", False):
        kw["group_id"] = models.Group.get(models.Group.name == "idle").id
    kw.update(forge)
    forged = line(fleet, start, end, **kw)
    honest = line(fleet, now - 20 * S, now - 19 * S)

    # Acked all the same, so the agent moves on; only the honest line is billed.
    assert send(fleet["a"], 1, honest, forged, now=now) == 1, what
    assert billed(fleet) == 5 * S
    assert usage.summary(org.id).device_seconds == 5.0
    [entry] = refusals()
    assert entry["seq"] == 1 and entry["count"] == 1
    assert reason in entry["refused"][0]["reason"]
    assert entry["refused"][0]["devices"] == forged.devices


def test_a_range_that_moved_away_is_billed_for_the_time_it_was_assigned(fleet: dict) -> None:
    """Agent a goes offline, its range moves to b; a's journal replays afterwards."""
    now = fleet["now"]
    models.Agent.update(online=False, offline_since=models.utcnow()).where(
        models.Agent.agent_id == fleet["a"]
    ).execute()
    placement.failover(grace_s=0, lease_s=60)
    moved = history.now_ms()
    later = moved + 30 * S
    # b runs a's range now: its line for devices 0-4 after the move is its own.
    assert send(fleet["b"], 1, line(fleet, later - S, later), now=later) == 1
    # a's lines from before the move still count; one from after it does not.
    before_move = line(fleet, now - 30 * S, now - 29 * S)
    after_move = line(fleet, later - S, later)
    assert send(fleet["a"], 1, before_move, after_move, now=later) == 1
    assert billed(fleet) == 2 * 5 * S
    [entry] = refusals()
    assert "outside the time" in entry["refused"][0]["reason"]
    assert entry["refused"][0]["start_ms"] == after_move.start_ms


def test_the_same_window_under_a_new_seq_or_journal_counts_once(fleet: dict) -> None:
    now = fleet["now"]
    window = line(fleet, now - 10 * S, now - 9 * S)
    assert send(fleet["a"], 1, window, now=now) == 1
    assert send(fleet["a"], 2, window, now=now) == 2  # a new seq, the same devices and time
    assert send(fleet["a"], 1, window, epoch="e2", now=now) == 1  # a "new journal"
    overlapping = line(fleet, now - 9 * S - 500, now - 8 * S)
    twice_in_one = [line(fleet, now - 5 * S, now - 4 * S)] * 2
    assert send(fleet["a"], 3, overlapping, *twice_in_one, now=now) == 3
    assert billed(fleet) == 2 * 5 * S  # the first window and one of the twins
    reasons = [r["reason"] for e in refusals() for r in e["refused"]]
    assert reasons == ["overlaps usage already counted for this range"] * 4


def test_no_aggregate_overflows(fleet: dict, org: models.Org) -> None:
    """Rows a forged record could leave behind (before this check) break no report."""
    now = fleet["now"]
    send(fleet["a"], 1, line(fleet, now - 10 * S, now - 9 * S), now=now)
    record = models.UsageRecord.get()
    for i in range(3):  # each fits int64; their sum does not
        models.Usage.create(
            record=record,
            org=org,
            group=fleet["g"],
            run_id=fleet["g"].run_id,
            devices=1,
            start_ms=i,
            end_ms=i + 1,
            device_ms=2**62,
        )
    assert usage.summary(org.id).device_seconds > 2**63 / 1000
    assert usage.group_device_ms(fleet["g"].id) > 2**63
    snap = snapshot.take(org.id)
    assert "mockmock_usage_device_seconds_total" in metrics.render(snap, bus_connected=True)
