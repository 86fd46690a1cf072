"""The agent's data dir is 0700 and every file in it 0600, whatever the umask.

The journal holds what the board's owner is billed on and agent.json its bus
secret; SQLite creates the journal's -wal and -shm next to it, and before this
they came out 0644 (or 0666 under umask 0) like the journal itself.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import wire
from agent.journal import JOURNAL_FILE, Journal
from agent.runtime import AgentConfig

LINE = wire.UsageLine(group_id=1, run_id=1, index_start=0, devices=3, start_ms=0, end_ms=1000)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}


def test_a_new_agent_dir_is_private(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "agent"
    AgentConfig(agent_id="a1", mqtt_url="mqtt://127.0.0.1:1").save(data)
    j = Journal(data / JOURNAL_FILE)
    try:
        j.append([LINE])  # the -wal and -shm exist while the journal is open
        j.save(open_lines=[LINE])
        assert data.stat().st_mode & 0o777 == 0o700
        found = modes(data)
        assert {"agent.json", JOURNAL_FILE, JOURNAL_FILE + "-wal", JOURNAL_FILE + "-shm"} <= set(
            found
        )
        assert set(found.values()) == {0o600}, found
    finally:
        j.close()


def test_an_existing_loose_journal_and_dir_are_tightened(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "agent"
    data.mkdir(mode=0o755)
    path = data / JOURNAL_FILE
    con = sqlite3.connect(path)  # as an older agent left it (SQLite's 0644), WAL beside it
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.commit()
    assert modes(data)[JOURNAL_FILE + "-wal"] == 0o644
    j = Journal(path)
    try:
        j.append([LINE])
        assert data.stat().st_mode & 0o777 == 0o700
        assert set(modes(data).values()) == {0o600}, modes(data)
    finally:
        j.close()
        con.close()
