"""Enrollment end to end on `mockmock up`: a one-time token becomes an agent with its
own bus credentials, which the embedded broker checks.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.fleet import agent_proc, online, wait
from tests.fixtures.processes import Appliance, mockmock_agent

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def enroll_cli(app: Appliance, token: str, agent_dir: Path, *extra: str):
    return subprocess.run(
        mockmock_agent("enroll", app.url, token, "--data-dir", str(agent_dir), *extra),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_enroll_run_and_only_real_credentials_get_on_the_bus(
    appliance_up: Appliance, tmp_path: Path
) -> None:
    app = appliance_up
    # `mockmock up`'s own agent and bus client went through the same path.
    assert (app.data_dir / "bus.secret").stat().st_mode & 0o777 == 0o600
    local = json.loads((app.data_dir / "agent" / "agent.json").read_text())
    assert local["username"] == local["agent_id"] and local["password"]
    wait(lambda: online(app) == 1, 20, "the local agent online")

    grant = app.api("POST", "/api/v1/enrollment-tokens")
    assert grant["command"] == (
        f"curl -sfL {app.url}/agent/install.sh | sudo sh -s -- --token {grant['token']}"
    )
    assert grant["enroll_command"] == f"mockmock-agent enroll {app.url} {grant['token']}"
    assert "--http-host 0.0.0.0" in grant["warning"]  # `up` serves this machine only
    board = tmp_path / "board"
    done = enroll_cli(app, grant["token"], board, "--capacity", "40")
    assert done.returncode == 0, done.stderr
    cfg_file = board / "agent.json"
    assert cfg_file.stat().st_mode & 0o777 == 0o600
    cfg = json.loads(cfg_file.read_text())
    assert cfg["username"] == cfg["agent_id"] and len(cfg["password"]) >= 24
    assert cfg["mqtt_url"].startswith("mqtt://127.0.0.1:") and "@" not in cfg["mqtt_url"]
    # the appliance keeps a hash only
    assert cfg["password"].encode() not in (app.data_dir / "mockmock.sqlite3").read_bytes()

    # single use: the same token again is one clear line, exit 2
    again = enroll_cli(app, grant["token"], tmp_path / "other")
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "error: enrollment refused (401): enrollment token unknown or already used"
    )
    assert not (tmp_path / "other" / "agent.json").exists()
    # a board already enrolled is not silently re-keyed
    fresh = app.api("POST", "/api/v1/enrollment-tokens")["token"]
    twice = enroll_cli(app, fresh, board)
    assert twice.returncode == 2 and "already enrolled" in twice.stderr
    assert json.loads(cfg_file.read_text()) == cfg

    agent = agent_proc(board).start()
    try:
        wait(lambda: online(app) == 2, 30, "the enrolled agent online", agent.log())
        row = next(a for a in app.api("GET", "/api/v1/agents") if a["agent_id"] == cfg["agent_id"])
        assert row["capacity"] == 40 and row["cores"] >= 1 and row["mem_mb"] > 0
    finally:
        agent.stop()
    wait(lambda: online(app) == 1, 20, "the agent offline after it stopped")

    # a wrong password never gets on the bus
    cfg_file.write_text(json.dumps({**cfg, "password": "not-the-password"}))
    impostor = agent_proc(board)
    impostor.start()
    try:
        time.sleep(4)
        assert online(app) == 1
        row = next(a for a in app.api("GET", "/api/v1/agents") if a["agent_id"] == cfg["agent_id"])
        assert row["online"] is False
        assert "control bus" in impostor.log()  # it says why it cannot connect
    finally:
        impostor.stop()


def test_bad_enrollment_input_is_a_4xx_naming_the_field(appliance_up: Appliance) -> None:
    import urllib.error

    app = appliance_up
    with pytest.raises(urllib.error.HTTPError) as e:
        app.api("POST", "/api/v1/enrollment-tokens?ttl_seconds=5")
    assert e.value.code == 400 and "ttl_seconds" in json.loads(e.value.read())["detail"]
    token = app.api("POST", "/api/v1/enrollment-tokens")["token"]
    with pytest.raises(urllib.error.HTTPError) as e:
        app.api("POST", "/api/v1/agents/enroll", {"token": token, "capacity": 0}, auth=False)
    assert e.value.code == 400 and "capacity" in json.loads(e.value.read())["detail"]
    # the refused attempt did not burn the token
    ok = app.api("POST", "/api/v1/agents/enroll", {"token": token, "capacity": 5}, auth=False)
    assert ok["username"] == ok["agent_id"]
