"""The audit log is a hash chain: appends never fork it, and tampering is named."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from appliance import db, models
from appliance.audit import anchor
from appliance.audit import service as audit
from appliance.audit.models import AuditEntry, AuditHead


def test_entries_chain_and_verify(appliance_db: str) -> None:
    for i in range(5):
        audit.record(
            "thing.do", actor="user:a", target=f"thing:{i}", before={"n": i}, after={"n": i + 1}
        )
    rows = list(AuditEntry.select().order_by(AuditEntry.id))
    assert [r.id for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert audit.verify().line() == "ok: 5 rows"


def test_concurrent_writers_never_fork_the_chain(appliance_db: str) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                audit.record("race", actor=f"w{n}", target=str(i))
        except BaseException as e:
            errors.append(e)
        finally:
            db.database.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert AuditEntry.select().count() == 60
    assert AuditHead.get_by_id(1).seq == 60
    assert audit.verify().ok


def test_secrets_never_reach_the_log(appliance_db: str) -> None:
    audit.record(
        "token.create",
        actor="user:a",
        after={
            "token": "mm_abcdefghijklmnopqrstuvwxyz",
            "password": "hunter2",
            "command": "mockmock-agent enroll http://x mme_abcdefghijklmnopqrstuvw",
            "name": "ci",
        },
    )
    after = json.loads(AuditEntry.get().after)
    assert after == {
        "token": "[redacted]",
        "password": "[redacted]",
        "command": "mockmock-agent enroll http://x [redacted]",
        "name": "ci",
    }


def test_the_query_is_newest_first_filtered_and_paged(org: models.Org) -> None:
    other = models.Org.create(name="other")
    for i in range(7):
        audit.record(
            f"group.{'start' if i % 2 else 'stop'}",
            actor="user:a",
            org_id=org.id,
            target=f"group:g{i}",
        )
    audit.record("group.start", actor="user:b", org_id=other.id)
    page = audit.query(org.id, limit=3)
    assert [e.target for e in page.entries] == ["group:g6", "group:g5", "group:g4"]
    page2 = audit.query(org.id, limit=3, before_id=page.next_before_id)
    assert [e.target for e in page2.entries] == ["group:g3", "group:g2", "group:g1"]
    starts = audit.query(org.id, action="group.start").entries
    assert [e.target for e in starts] == ["group:g5", "group:g3", "group:g1"]
    assert audit.query(None, actor="user:b").entries[0].org_id == other.id
    with pytest.raises(audit.ApplianceError, match="limit"):
        audit.query(org.id, limit=0)


def verify_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.command", "audit", "verify", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def sqlite_log(tmp_path: Path):
    path = tmp_path / "data" / "mockmock.sqlite3"
    path.parent.mkdir()
    db.connect(f"sqlite:///{path}")
    db.migrate()
    anchor.configure(path.parent)  # as the appliance does at start: audit.key, audit.anchor
    for i in range(6):
        audit.record("thing.do", actor="user:a", target=f"t{i}", after={"i": i})
    db.database.close()
    return path


def test_verify_cli_says_ok(sqlite_log: Path) -> None:
    done = verify_cli("--data-dir", str(sqlite_log.parent))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok: 6 rows"
    url = f"sqlite:///{sqlite_log}"
    both = verify_cli("--db-url", url, "--data-dir", str(sqlite_log.parent))
    assert both.stdout.strip() == "ok: 6 rows"
    # The key is in the data dir, not the database: without it nothing can be vouched for.
    elsewhere = sqlite_log.parent.parent / "elsewhere"
    keyless = verify_cli("--db-url", url, env={"MOCKMOCK_DATA_DIR": str(elsewhere)})
    assert keyless.returncode == 2
    assert keyless.stderr.startswith("error: --data-dir: no audit key at"), keyless.stderr


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "UPDATE audit_log SET after = '{\"i\":99}' WHERE id = 4",
            "broken at row 4: its contents do not match its hash (modified)",
        ),
        (
            "UPDATE audit_log SET actor = 'user:mallory' WHERE id = 2",
            "broken at row 2: its contents do not match its hash (modified)",
        ),
        ("DELETE FROM audit_log WHERE id = 3", "broken at row 4: row 3 is missing before it"),
        (
            "DELETE FROM audit_log WHERE id = 6",
            "broken at row 6: the head records 6 rows but the chain ends at row 5",
        ),
    ],
)
def test_verify_cli_names_the_first_broken_row(sqlite_log: Path, sql: str, expected: str) -> None:
    with sqlite3.connect(sqlite_log) as con:
        con.execute(sql)
    done = verify_cli("--data-dir", str(sqlite_log.parent))
    assert done.returncode == 1
    assert done.stdout.strip().startswith(expected), done.stdout


def test_rehashing_a_tampered_row_breaks_its_seal(sqlite_log: Path) -> None:
    db.connect(f"sqlite:///{sqlite_log}")
    try:
        row = AuditEntry.get_by_id(3)
        row.after = '{"i":1000}'
        fields = {
            k: getattr(row, k)
            for k in ("id", "at", "actor", "org_id", "action", "target", "before", "after")
        }
        row.hash = audit.entry_hash(row.prev_hash, fields)
        row.save()
    finally:
        db.database.close()
    done = verify_cli("--data-dir", str(sqlite_log.parent))
    assert done.returncode == 1
    assert done.stdout.startswith("broken at row 3: its seal does not match the audit key")


def test_verify_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    done = verify_cli("--data-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --data-dir: no database at")
    assert "Traceback" not in done.stderr


def test_agent_presence_changes_are_audited(org: models.Org) -> None:
    from agent import wire
    from appliance.fleet import service as fleet

    agent_id = fleet.local_agent(org.id, capacity=10, mqtt_url="mqtt://127.0.0.1:1").agent_id
    fleet.on_presence(agent_id, wire.Presence(status="online", hostname="pi-1"))
    fleet.on_presence(agent_id, wire.Presence(status="online", hostname="pi-1"))  # no change
    fleet.on_presence(agent_id, wire.Presence(status="offline"))
    rows = list(AuditEntry.select().order_by(AuditEntry.id))
    assert [(r.action, r.actor, r.org_id) for r in rows] == [
        ("agent.online", f"agent:{agent_id}", org.id),
        ("agent.offline", f"agent:{agent_id}", org.id),
    ]
    assert audit.verify().ok
