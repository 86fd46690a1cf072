"""The data directory is 0700 and every file in it 0600, whatever the umask.

Under a permissive umask the SQLite database and its -wal/-shm, localstripe's
state and log, the local agent's folder and journal came out 0644/0755. Here
``mockmock up --headless`` starts under umask 000 on a data dir an older version
left 0755 with a 0644 file, runs a group, and every path under it is checked while
it runs (WAL and SHM exist then) and after it stopped.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from tests.fixtures.ports import free_port
from tests.fixtures.processes import Appliance, mockmock

pytestmark = [pytest.mark.slow]


def loose_modes(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) that is not 0700 (dirs) or 0600 (files)."""
    bad = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if stat.S_IMODE(st.st_mode) != want:
            bad.append(f"{oct(stat.S_IMODE(st.st_mode))} {path.relative_to(root)}")
    return bad


@pytest.mark.timeout(120)
def test_everything_under_the_data_dir_is_private_under_umask_000(tmp_path: Path) -> None:
    data = tmp_path / "appliance"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    old = data / "left-by-an-older-version.log"
    old.write_text("x")
    os.chmod(old, 0o644)
    http, mqtt = free_port(), free_port()
    args = mockmock(
        "up", "--headless", "--data-dir", str(data), "--http-port", str(http),
        "--mqtt-port", str(mqtt),
    )  # fmt: skip
    app = Appliance(data, http, ["sh", "-c", 'umask 000 && exec "$@"', "sh", *args])
    app.start()
    try:
        app.api(
            "PUT",
            "/api/v1/templates/t",
            {
                "transport": {
                    "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt}", "topic": "lab/{device_id}"}
                },
                "interval": "100ms",
                "payload": {"n": {"counter": {}}},
            },
        )
        app.api("PUT", "/api/v1/groups/g", {"template": "t", "count": 3})
        app.api("POST", "/api/v1/groups/g/start")
        app.wait_for(lambda: app.api("GET", "/api/v1/groups/g")["sent"] > 0, what="traffic")
        app.wait_for(lambda: app.api("GET", "/api/v1/groups/g")["device_seconds"] > 0, what="usage")
        app.api("POST", "/api/v1/groups/g/stop")
        time.sleep(0.5)
        names = {p.name for p in data.rglob("*")}
        assert {"mockmock.sqlite3-wal", "mockmock.sqlite3-shm", "admin.token"} <= names, names
        assert loose_modes(data) == []
    finally:
        app.proc.stop()
    assert loose_modes(data) == []
