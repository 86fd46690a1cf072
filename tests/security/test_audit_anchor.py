"""Audit chain anchor: whoever can write the database cannot rewrite history unseen.

Two attacks with nothing but database access (SQL on SQLite or PostgreSQL):
drop the newest rows and roll ``audit_head`` back to match; or change a row and
re-chain every hash after it. Both pass a hash chain alone. The data dir's key
(``audit.key``, never in the database) seals every row, and the newest committed
row is anchored in ``audit.anchor``: ``mockmock audit verify`` and
``GET /api/v1/audit/verify`` name both.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.audit import anchor
from appliance.audit import service as audit
from appliance.audit.models import AuditEntry, AuditHead
from appliance.errors import ApplianceError
from tests.integration.control.conftest import Api, running_api

FIELDS = ("id", "at", "actor", "org_id", "action", "target", "before", "after")


def verify_cli(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    command = ["audit", "verify", "--db-url", url, "--data-dir", str(data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "appliance.command", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(n: int, who: str = "user:a") -> None:
    for i in range(n):
        audit.record("thing.do", actor=who, target=f"t{i}", after={"i": i})


def drop_tail_and_roll_back_head(keep: int) -> None:
    AuditEntry.delete().where(AuditEntry.id > keep).execute()
    last = AuditEntry.get_by_id(keep)
    AuditHead.update(seq=keep, hash=last.hash).where(AuditHead.id == 1).execute()


def rechain_from(first: int) -> None:
    """Change row ``first`` and recompute every hash after it, as a hash chain allows."""
    prev = AuditEntry.get_by_id(first - 1).hash
    for row in AuditEntry.select().where(AuditEntry.id >= first).order_by(AuditEntry.id):
        if row.id == first:
            row.actor = "user:mallory"
        digest = audit.entry_hash(prev, {k: getattr(row, k) for k in FIELDS})
        AuditEntry.update(actor=row.actor, prev_hash=prev, hash=digest).where(
            AuditEntry.id == row.id
        ).execute()
        prev = digest
    AuditHead.update(hash=prev).where(AuditHead.id == 1).execute()


@pytest.fixture
def data_dir(appliance_db: str, tmp_path: Path) -> Path:
    path = tmp_path / "data"
    anchor.configure(path)  # what the appliance does at start
    return path


def test_dropping_the_tail_and_rolling_back_the_head_is_caught(
    appliance_db: str, data_dir: Path
) -> None:
    write(8)
    assert audit.verify().line() == "ok: 8 rows"
    drop_tail_and_roll_back_head(keep=6)
    verdict = audit.verify()
    assert not verdict.ok
    assert verdict.broken_id == 7
    assert "anchor outside the database records 8 rows" in verdict.reason
    done = verify_cli(appliance_db, data_dir)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("broken at row 7: the anchor outside the database records 8")


def test_rechaining_the_log_is_caught(appliance_db: str, data_dir: Path) -> None:
    write(6)
    rechain_from(3)
    verdict = audit.verify()
    assert (verdict.ok, verdict.broken_id) == (False, 3)
    assert "seal does not match the audit key" in verdict.reason
    # Re-chaining everything, rows removed too: still the first rewritten row.
    drop_tail_and_roll_back_head(keep=5)
    assert audit.verify().broken_id == 3
    done = verify_cli(appliance_db, data_dir)
    assert done.returncode == 1
    assert done.stdout.startswith("broken at row 3: its seal does not match"), done.stdout


def test_the_key_and_anchor_are_0600_and_a_rollback_is_no_truncation(
    appliance_db: str, data_dir: Path
) -> None:
    write(3)
    for name in (anchor.KEY_FILE, anchor.ANCHOR_FILE):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    with pytest.raises(RuntimeError), audit.write_transaction():
        write(2)
        raise RuntimeError("the caller's work failed after it logged")
    with audit.write_transaction():
        try:
            with audit.write_transaction():  # a savepoint that rolls back alone
                write(1)
                raise RuntimeError
        except RuntimeError:
            pass
        write(1)
    assert audit.verify().line() == "ok: 4 rows"
    assert anchor.current().read().seq == 4


def test_replicas_share_the_key_and_one_without_it_refuses_to_start(
    appliance_db: str, data_dir: Path, tmp_path: Path
) -> None:
    write(3)
    replica = tmp_path / "replica"
    with pytest.raises(ApplianceError, match="missing, but the audit log is sealed"):
        anchor.configure(replica)
    assert not (replica / anchor.KEY_FILE).exists()
    replica.mkdir(exist_ok=True)
    shutil.copy2(data_dir / anchor.KEY_FILE, replica / anchor.KEY_FILE)
    anchor.configure(replica)
    write(3, "user:b")
    assert audit.verify().line() == "ok: 6 rows"
    anchor.configure(data_dir)
    write(1)  # the first replica's anchor follows the newest committed row: 7
    assert audit.verify().line() == "ok: 7 rows"
    drop_tail_and_roll_back_head(keep=5)  # rows of both replicas
    assert audit.verify().broken_id == 6


@pytest.fixture
def api(appliance_db: str, mosquitto, tmp_path: Path) -> Iterator[Api]:
    with running_api(appliance_db, mosquitto.url, tmp_path / "app") as running:
        yield running


def test_the_api_verify_catches_a_truncation(api: Api) -> None:
    for name in ("ann", "bob", "cid"):
        assert api.call("POST", "/api/v1/users", json={"name": name}).status_code == 201
    verdict = api.call("GET", "/api/v1/audit/verify").json()
    assert verdict["ok"], verdict
    rows = verdict["rows"]
    drop_tail_and_roll_back_head(keep=rows - 2)
    verdict = api.call("GET", "/api/v1/audit/verify").json()
    assert (verdict["ok"], verdict["broken_id"]) == (False, rows - 1), verdict
    assert "removed" in verdict["reason"]


def test_reanchor_accepts_a_restored_older_log_but_never_a_rewritten_one(
    appliance_db: str, data_dir: Path
) -> None:
    write(6)
    drop_tail_and_roll_back_head(keep=4)  # what restoring an older backup looks like
    assert not audit.verify().ok
    command = ["audit", "reanchor", "--db-url", appliance_db, "--data-dir", str(data_dir)]
    done = subprocess.run(
        [sys.executable, "-m", "appliance.command", *command], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok: 5 rows"), done.stderr
    assert AuditEntry.get_by_id(5).action == "audit.reanchor"
    assert audit.verify().line() == "ok: 5 rows"
    rechain_from(2)
    assert audit.reanchor().broken_id == 2  # a rewrite is never accepted
