"""A replaced journal is a new sequence; a corrupt one is one line and a way out.

The obvious fix for a corrupt journal is to delete it; the board then starts again
at seq 1, and an appliance that keyed records on (agent, seq) dropped all of them
as duplicates of what it had stored before: usage lost without a word. Each
journal now has an epoch (a random id made with it) that travels with its records
and acks, and the appliance keeps one sequence per (agent, epoch).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent import wire
from agent.journal import JOURNAL_FILE, Journal
from agent.runtime import Agent, AgentConfig
from appliance import models
from appliance.fleet import history
from appliance.usage import service as usage
from tests.fixtures.ports import free_port
from tests.fixtures.processes import mockmock, mockmock_agent
from tests.unit.appliance import factories

S = 1000


def deliver(journal: Journal, agent_id: str, now: int) -> wire.UsageAck:
    """What the bus does: every unacked record to the appliance, the ack back."""
    ack = None
    for rec in journal.unacked():
        ack = usage.ingest(agent_id, rec, now_ms=now)
        assert ack is not None
        if ack.epoch == journal.epoch:
            journal.ack(ack.seq)
    assert ack is not None
    return ack


def test_a_new_journal_is_a_new_sequence(org: models.Org, tmp_path: Path) -> None:
    agent_id = factories.online_agent(org, capacity=10)
    factories.group(org, "g", 10)
    g = factories.start(org, "g")
    t = history.now_ms()
    history.AssignmentSpan.update(since_ms=t - 600 * S).execute()

    def lines(k: int) -> list[wire.UsageLine]:  # second k of the run, all 10 devices
        start = t - 500 * S + k * S
        return [
            wire.UsageLine(
                group_id=g.id,
                run_id=g.run_id,
                index_start=0,
                devices=10,
                start_ms=start,
                end_ms=start + S,
            )
        ]

    path = tmp_path / JOURNAL_FILE
    old = Journal(path)
    for k in range(3):
        old.append(lines(k))
    first = old.epoch
    assert deliver(old, agent_id, t) == wire.UsageAck(seq=3, epoch=first)
    old.close()

    # The board's journal is deleted; the agent starts a fresh one: seq 1 again.
    for p in tmp_path.glob(JOURNAL_FILE + "*"):
        p.unlink()
    new = Journal(path)
    assert new.epoch and new.epoch != first
    for k in range(3, 5):
        assert new.append(lines(k)).seq == k - 2
    assert deliver(new, agent_id, t) == wire.UsageAck(seq=2, epoch=new.epoch)
    assert new.pending_count() == 0
    assert usage.group_device_ms(g.id) == 5 * 10 * S  # all five seconds, none dropped


def test_an_ack_for_an_earlier_journal_is_ignored(tmp_path: Path) -> None:
    agent = Agent(AgentConfig(agent_id="a1", mqtt_url="mqtt://127.0.0.1:1"), tmp_path)
    try:
        line = wire.UsageLine(group_id=1, run_id=1, devices=1, start_ms=0, end_ms=S)
        for _ in range(3):
            agent.journal.append([line])
        mine = agent.journal.epoch
        # The broker still holds the retained ack of the journal this one replaced.
        agent.on_ack(wire.UsageAck(seq=3, epoch="0ld"), retained=True)
        agent.on_ack(wire.UsageAck(seq=3, epoch="0ld"))
        assert agent.journal.acked_seq == 0
        agent.on_ack(wire.UsageAck(seq=1, epoch=mine), retained=True)
        assert agent.journal.acked_seq == 1
        # An appliance older than epochs: its live acks answer our records ...
        agent.on_ack(wire.UsageAck(seq=2))
        assert agent.journal.acked_seq == 2
        # ... its retained one may be about another journal.
        agent.on_ack(wire.UsageAck(seq=3), retained=True)
        assert agent.journal.acked_seq == 2
    finally:
        agent.journal.close()


def test_a_journal_older_than_epochs_keeps_its_sequence(tmp_path: Path) -> None:
    """Records it journaled before are known to the appliance under the empty epoch."""
    import sqlite3

    path = tmp_path / JOURNAL_FILE
    j = Journal(path)
    j.append([wire.UsageLine(group_id=1, run_id=1, devices=1, start_ms=0, end_ms=S)])
    j.close()
    con = sqlite3.connect(path)  # as a journal written by an agent before epochs
    con.execute("DELETE FROM meta WHERE key='epoch'")
    con.commit()
    con.close()
    j = Journal(path)
    assert j.epoch == ""
    assert j.append([]).epoch == "" and j.last_seq == 2
    j.close()


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_a_corrupt_journal_is_one_line_and_reset_starts_a_new_one(tmp_path: Path) -> None:
    data = tmp_path / "agent"
    AgentConfig(agent_id="a1", mqtt_url="mqtt://127.0.0.1:1").save(data)
    journal = data / JOURNAL_FILE
    journal.write_bytes(b"this is not an SQLite file, it was cut short by a power loss" * 50)

    done = run(mockmock_agent("run", "--data-dir", str(data)))
    assert done.returncode == 2
    [message] = done.stderr.strip().splitlines()
    assert str(journal) in message
    assert f"mockmock-agent journal reset --data-dir {data}" in message
    assert "Traceback" not in done.stderr

    done = run(mockmock_agent("journal", "reset", "--data-dir", str(data)))
    assert done.returncode == 0, done.stderr
    assert not journal.exists()
    [aside] = data.glob("usage-journal.reset-*.sqlite3")
    assert aside.read_bytes().startswith(b"this is not")  # kept for inspection

    done = run(mockmock_agent("journal", "status", "--data-dir", str(data)))
    assert done.returncode == 2  # no journal yet: the agent makes one when it runs
    Journal(journal).close()
    done = run(mockmock_agent("journal", "status", "--data-dir", str(data)))
    assert done.returncode == 0, done.stderr
    assert '"last_seq": 0' in done.stdout


@pytest.mark.parametrize("command", ["serve", "up"])
def test_a_corrupt_appliance_database_is_one_line(tmp_path: Path, command: str) -> None:
    data = tmp_path / "appliance"
    data.mkdir()
    db = data / "mockmock.sqlite3"
    db.write_bytes(b"\x00garbage" * 1000)
    args = ["--data-dir", str(data), "--http-port", str(free_port())]
    if command == "serve":
        args += ["--mqtt-url", "mqtt://127.0.0.1:1"]
    else:
        args += ["--headless", "--mqtt-port", str(free_port()), "--no-demo-billing"]
    done = run(mockmock(command, *args))
    assert done.returncode != 0
    [message] = done.stderr.strip().splitlines()
    assert str(db) in message and "corrupt" in message and "mockmock restore" in message
