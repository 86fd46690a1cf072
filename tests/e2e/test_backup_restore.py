"""Backup while the appliance runs, restore elsewhere: same tokens, same agents, a
verifying audit chain; a damaged or misplaced restore is one line and writes nothing.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.fleet import agent_proc, enroll, wait
from tests.fixtures.ports import free_port
from tests.fixtures.processes import Appliance, mockmock

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(mockmock(*args), capture_output=True, text=True, timeout=120)


def modes(root: Path) -> set[tuple[str, int]]:
    return {
        ("dir" if p.is_dir() else "file", p.stat().st_mode & 0o777)
        for p in [root, *root.rglob("*")]
    }


def test_backup_while_running_then_restore_with_the_same_tokens_and_agents(
    appliance_up: Appliance, tmp_path: Path
) -> None:
    app = appliance_up
    operator = app.api("POST", "/api/v1/users", {"name": "ci", "role": "operator"})["token"]
    board = tmp_path / "board"
    enroll(app, board, capacity=5)
    agents = {a["agent_id"] for a in app.api("GET", "/api/v1/agents")}
    assert len(agents) == 2  # the local agent and the board

    out = tmp_path / "backups" / "mockmock.tar.gz"
    env_file = tmp_path / "mockmock.env"
    env_file.write_text("MOCKMOCK_STRIPE_WEBHOOK_SECRET=whsec_kept\n")
    done = cli(
        "backup", "--data-dir", str(app.data_dir), "--out", str(out), "--env-file", str(env_file)
    )  # while it runs
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "database/mockmock.sqlite3", "data/bus.secret"} <= names
    assert "data/admin.token" in names and "data/agent/agent.json" in names
    assert not any(n.endswith((".sqlite3-wal", "usage-journal.sqlite3")) for n in names)
    app.api("POST", "/api/v1/users", {"name": "after-the-backup", "role": "viewer"})

    restored = tmp_path / "restored"
    done = cli("restore", str(out), "--data-dir", str(restored))
    assert done.returncode == 0, done.stderr
    assert modes(restored) <= {("dir", 0o700), ("file", 0o600)}
    assert (restored / "mockmock.env").read_text() == env_file.read_text()
    assert "mockmock.env" in done.stdout  # it says where the settings went
    verify = cli("audit", "verify", "--data-dir", str(restored))
    assert verify.returncode == 0 and verify.stdout.startswith("ok"), verify.stdout + verify.stderr

    http, mqtt = free_port(), free_port()
    app2 = Appliance(
        restored,
        http,
        mockmock(
            "up", "--headless", "--no-demo-billing", "--data-dir", str(restored),
            "--http-port", str(http), "--mqtt-port", str(mqtt),
        ),
    )  # fmt: skip
    assert app2.token == app.token
    app2.start()
    agent = None
    try:
        assert app2.api("GET", "/api/v1/me")["role"] == "admin"
        req = urllib.request.Request(
            f"{app2.url}/api/v1/me", headers={"Authorization": f"Bearer {operator}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["role"] == "operator"
        users = {u["name"] for u in app2.api("GET", "/api/v1/users")}
        assert "ci" in users and "after-the-backup" not in users
        assert {a["agent_id"] for a in app2.api("GET", "/api/v1/agents")} == agents
        # The board's bus account came along: it gets on the restored appliance's broker.
        cfg = json.loads((board / "agent.json").read_text())
        (board / "agent.json").write_text(
            json.dumps({**cfg, "mqtt_url": f"mqtt://127.0.0.1:{mqtt}"})
        )
        agent = agent_proc(board).start()

        def board_online() -> bool:
            rows = app2.api("GET", "/api/v1/agents")
            return any(r["agent_id"] == cfg["agent_id"] and r["online"] for r in rows)

        wait(board_online, 30, "the board on the restored appliance", agent.log())
    finally:
        if agent is not None:
            agent.stop()
        app2.proc.stop()


def test_restore_refuses_a_used_directory_and_a_damaged_file(
    appliance_up: Appliance, tmp_path: Path
) -> None:
    out = tmp_path / "b.tar.gz"
    assert (
        cli("backup", "--data-dir", str(appliance_up.data_dir), "--out", str(out)).returncode == 0
    )

    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    done = cli("restore", str(out), "--data-dir", str(used))
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"error: --data-dir: {used} is not empty; restore into a new directory"
    )

    # One byte of the database changed inside the archive: its checksum catches it.
    with tarfile.open(out) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        for info, data in members:
            if info.name == "database/mockmock.sqlite3":
                data = data[:-1] + bytes([data[-1] ^ 1])
            tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "target"
    done = cli("restore", str(damaged), "--data-dir", str(target))
    assert done.returncode == 1
    assert "database/mockmock.sqlite3 does not match its checksum" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not target.exists()

    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar at all")
    done = cli("restore", str(junk), "--data-dir", str(target))
    assert done.returncode == 1 and "not a mockmock backup" in done.stderr
    assert not target.exists()
