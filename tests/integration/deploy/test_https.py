"""HTTPS on the API: `serve --tls-cert/--tls-key`, a board enrolling over verified TLS."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port
from tests.fixtures.processes import Proc, mockmock, mockmock_agent
from tests.fixtures.tls import CertAuthority

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def get(url: str, ca: Path, *, token: str | None = None, method: str = "GET") -> dict:
    ctx = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        return json.loads(r.read())


def test_api_over_https_and_a_board_enrolls_through_it(
    mosquitto: Mosquitto, test_ca: CertAuthority, tmp_path: Path
) -> None:
    cert, key = test_ca.issue("appliance")
    port = free_port()
    data = tmp_path / "appliance"
    proc = Proc(
        mockmock(
            "serve", "--data-dir", str(data), "--http-port", str(port),
            "--mqtt-url", mosquitto.url, "--tls-cert", str(cert), "--tls-key", str(key),
        ),
        tmp_path / "appliance.log",
    ).start()  # fmt: skip
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = get(f"{base}/api/v1/health", test_ca.cert)
                break
            except (urllib.error.URLError, OSError):
                assert proc.proc is not None and proc.proc.poll() is None, proc.log()
                assert time.monotonic() < deadline, proc.log()
                time.sleep(0.2)
        assert health["version"]
        # The banner follows the first answers by a moment: wait for it, bounded.
        while f"ready at {base}" not in proc.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"ready at {base}" in proc.log()

        # Plain HTTP on the TLS port gets no API answer.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).read()
        # Nor does a client that does not trust the appliance's CA.
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(f"{base}/api/v1/health", timeout=5)

        token = (data / "admin.token").read_text().strip()
        grant = get(f"{base}/api/v1/enrollment-tokens", test_ca.cert, token=token, method="POST")
        assert grant["url"].startswith("https://") and "https://" in grant["command"]
        board = tmp_path / "board"
        done = subprocess.run(
            mockmock_agent(
                "enroll", base, grant["token"], "--data-dir", str(board), "--ca", str(test_ca.cert)
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        # Without the CA the board refuses the appliance's certificate: one line.
        other = get(f"{base}/api/v1/enrollment-tokens", test_ca.cert, token=token, method="POST")
        refused = subprocess.run(
            mockmock_agent("enroll", base, other["token"], "--data-dir", str(tmp_path / "b2")),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 2
        assert refused.stderr.strip().startswith("error: cannot reach the appliance")
        assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        proc.stop()


def test_half_a_key_pair_is_one_line(tmp_path: Path, test_ca: CertAuthority) -> None:
    cert, _ = test_ca.issue("appliance")
    _, other_key = test_ca.issue("other")
    args = ["--mqtt-url", "mqtt://127.0.0.1:1", "--tls-cert", str(cert)]
    args += ["--tls-key", str(other_key)]
    done = subprocess.run(
        [sys.executable, "-m", "appliance.command", "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --tls-cert:") and "pair" in done.stderr
