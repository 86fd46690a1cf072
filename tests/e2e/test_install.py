"""A board provisioned from the appliance alone: install.sh, the wheelhouse, enrollment.

The package registries are unreachable here on purpose (every index variable pip
and uv read points at a dead port), as they are in an air-gapped lab.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.fleet import wait
from tests.fixtures.processes import Appliance, Proc

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

DEAD = "http://127.0.0.1:9/"
"""Nothing listens on the discard port: any registry lookup fails at once."""


def offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOCKMOCK_", "PIP_", "UV_"))}
    env.update(
        HOME=str(home),
        PIP_INDEX_URL=DEAD,
        PIP_EXTRA_INDEX_URL=DEAD,
        UV_INDEX_URL=DEAD,
        UV_DEFAULT_INDEX=DEAD,
        UV_EXTRA_INDEX_URL=DEAD,
        PIP_NO_CACHE_DIR="1",
    )
    return env


def base_python() -> str:
    # The interpreter behind the test venv; install.sh makes its own venv from it.
    return getattr(sys, "_base_executable", sys.executable)


def sh(script: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script), *args],
        env=offline_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def test_a_board_installs_from_the_appliance_and_comes_online(
    appliance_up: Appliance, tmp_path: Path
) -> None:
    app = appliance_up
    grant = app.api("POST", "/api/v1/enrollment-tokens")
    script = tmp_path / "install.sh"
    script.write_text(fetch(app.url + "/agent/install.sh"))
    # The appliance baked in the URL the script was fetched from.
    assert f"MOCKMOCK_URL='{app.url}'" in script.read_text()
    prefix, data = tmp_path / "board", tmp_path / "board-state"
    home = tmp_path / "home"
    home.mkdir()
    private = ["--prefix", str(prefix), "--data-dir", str(data), "--no-service"]
    done = sh(
        script,
        *private,
        *("--token", grant["token"], "--python", base_python(), "--capacity", "30"),
        home=home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    agent = prefix / "bin" / "mockmock-agent"
    assert agent.is_file()
    cfg = json.loads((data / "agent.json").read_text())
    assert (data / "agent.json").stat().st_mode & 0o777 == 0o600
    assert data.stat().st_mode & 0o777 == 0o700

    # The board got the agent and its dependencies only, none of the appliance's.
    listed = subprocess.run(
        [str(prefix / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        env=offline_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"mockmock-agent", "aiomqtt", "gmqtt", "msgspec"} <= installed
    assert not installed & {"litestar", "peewee", "textual", "stripe", "mockmock", "uvicorn"}

    proc = Proc([str(agent), "run", "--data-dir", str(data)], tmp_path / "board.log")
    proc.env = offline_env(home)
    proc.start()
    try:

        def board_online() -> bool:
            rows = app.api("GET", "/api/v1/agents")
            return any(a["agent_id"] == cfg["agent_id"] and a["online"] for a in rows)

        wait(board_online, 30, "the installed agent online", proc.log())
        row = next(a for a in app.api("GET", "/api/v1/agents") if a["agent_id"] == cfg["agent_id"])
        assert row["capacity"] == 30
    finally:
        proc.stop()

    # Run again on the enrolled board: an upgrade in place, no token needed, same identity.
    again = sh(script, *private, "--python", base_python(), home=home)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already enrolled" in again.stdout
    assert json.loads((data / "agent.json").read_text())["agent_id"] == cfg["agent_id"]


def test_install_sh_refuses_bad_options_in_one_line(appliance_up: Appliance, tmp_path: Path):
    script = tmp_path / "install.sh"
    script.write_text(fetch(appliance_up.url + "/agent/install.sh"))

    prefix = ["--prefix", str(tmp_path / "p")]
    cases = {
        ("--bogus",): "--bogus: unknown option",
        (*prefix,): "--prefix: installs without systemd; add --no-service",
        (*prefix, "--no-service", "--capacity", "lots"): "--capacity: lots is not a whole number",
        (*prefix, "--no-service", "--url", "ftp://x"): "--url: ftp://x is not an http",
        (*prefix, "--no-service", "--python", "/nonexistent/python"): "--python: /nonexistent",
        (*prefix, "--no-service", "--token"): "--token: needs a value",
    }
    for args, message in cases.items():
        done = sh(script, *args, home=tmp_path)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, done.stderr)
    assert not (tmp_path / "p" / "bin").exists()  # nothing half-installed


def test_wheelhouse_lists_hashed_wheels_and_serves_only_those(appliance_up: Appliance) -> None:
    import hashlib
    import re
    import urllib.error

    index = fetch(appliance_up.url + "/agent/wheels/")
    links = dict(re.findall(r'href="/agent/wheels/([^"#]+)#sha256=([0-9a-f]{64})"', index))
    assert any(n.startswith("mockmock_agent-") for n in links)
    assert any(n.startswith("msgspec-") for n in links)
    name = next(n for n in links if n.startswith("mockmock_agent-"))
    with urllib.request.urlopen(f"{appliance_up.url}/agent/wheels/{name}", timeout=30) as r:
        assert hashlib.sha256(r.read()).hexdigest() == links[name]
    for bad in ("..%2F..%2Fadmin.token", "admin.token", "nope.whl"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{appliance_up.url}/agent/wheels/{bad}", timeout=30)
        assert e.value.code == 404
