"""Production Mosquitto on the files `mockmock mosquitto-config` writes, run the way a
distribution runs it: started as root, it drops to the `mosquitto` user before it
reads them. TLS-only control listener (a throwaway CA), a real `mockmock serve`
over mqtts://, enrolled agents over TLS, client ids bound to accounts.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from agent.tls import control_context
from tests.e2e.fleet import agent_proc, enroll, serve, wait
from tests.fixtures.mosquitto import find_mosquitto
from tests.fixtures.ports import free_port, wait_port
from tests.fixtures.tls import CertAuthority

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def _skip_unless_root_with_mosquitto_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: Mosquitto drops privileges only when started as root")
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no `mosquitto` user on this machine (Debian's package creates it)")
    if find_mosquitto() is None:
        pytest.skip("mosquitto not installed")


@dataclass
class Broker:
    conf: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *ports: int) -> Broker:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(find_mosquitto()), "-c", str(self.conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        for port in ports:
            wait_port("127.0.0.1", port, 15, proc=self.proc, what=f"mosquitto\n{self.text()}")
        return self

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def uid(self) -> int:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1])

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def etc() -> Iterator[Path]:
    """A folder like /etc/mosquitto: root's, 0755 (pytest's tmp folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="mockmock-etc-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def mosquitto_config(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.command", "mosquitto-config", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def hold_connection(
    port: int, ca: str, username: str, password: str, client_id: str, seconds: float
) -> None:
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=client_id,
        username=username,
        password=password,
        tls_context=control_context(ca),
        protocol=aiomqtt.ProtocolVersion.V311,
    ):
        await asyncio.sleep(seconds)


async def anonymous_sees(port: int, publish_to: list[str]) -> list[str]:
    async with aiomqtt.Client("127.0.0.1", port) as sub, aiomqtt.Client("127.0.0.1", port) as pub:
        await sub.subscribe("#", qos=1)
        for topic in publish_to:
            await pub.publish(topic, b"x", qos=1)
        seen: list[str] = []
        try:
            async with asyncio.timeout(1.5):
                async for msg in sub.messages:
                    seen.append(str(msg.topic))
        except TimeoutError:
            pass
        return seen


def test_root_started_mosquitto_on_generated_tls_config(
    etc: Path, test_ca: CertAuthority, tmp_path: Path
) -> None:
    _skip_unless_root_with_mosquitto_user()
    out = etc / "mockmock"
    data = tmp_path / "appliance"
    cert, key = test_ca.issue("broker")
    bus_port, mock_port = free_port(), free_port()
    args = ["--out", str(out), "--data-dir", str(data), "--tls-cert", str(cert)]
    args += ["--tls-key", str(key), "--listen", f"127.0.0.1:{bus_port}"]
    args += ["--mock-listen", f"127.0.0.1:{mock_port}", "--persistence-dir", ""]
    done = mosquitto_config(*args)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    mosquitto_gid = pwd.getpwnam("mosquitto").pw_gid
    for name in ("passwd", "acl", "acl-mock"):
        st = (out / name).stat()
        assert st.st_mode & 0o777 == 0o640 and st.st_gid == mosquitto_gid, name
    assert out.stat().st_mode & 0o777 == 0o750
    conf = (out / "mosquitto.conf").read_text()
    assert "use_username_as_clientid true" in conf and "user root" not in conf

    broker = Broker(out / "mosquitto.conf", etc / "mosquitto.log").start(bus_port, mock_port)
    app = None
    agent = None
    try:
        assert broker.uid() == pwd.getpwnam("mosquitto").pw_uid  # it dropped root
        app = serve(
            tmp_path, f"mqtts://127.0.0.1:{bus_port}", mqtt_ca=test_ca.cert, mosquitto_dir=out
        ).start()

        def bus_up() -> bool:
            return app.api("GET", "/api/v1/health", auth=False)["bus_connected"]

        wait(bus_up, 20, "serve on the TLS listener", app.proc.log() + broker.text())

        # Two boards enroll; the appliance rewrote the files itself, a reload picks them up.
        board_a, board_b = tmp_path / "board-a", tmp_path / "board-b"
        enroll(app, board_a, capacity=10)
        enroll(app, board_b, capacity=10)
        a = json.loads((board_a / "agent.json").read_text())
        b = json.loads((board_b / "agent.json").read_text())
        assert f"{b['username']}:" in (out / "passwd").read_text()
        assert (out / "passwd").stat().st_gid == mosquitto_gid  # still, after the rewrite
        broker.reload()
        time.sleep(0.5)

        agent = agent_proc(board_a).start()

        def a_online() -> bool:
            rows = app.api("GET", "/api/v1/agents")
            return any(r["agent_id"] == a["agent_id"] and r["online"] for r in rows)

        wait(a_online, 30, "agent A online over TLS", agent.log() + broker.text())

        # Agent B connects with A's client id: the broker renames it after B's
        # account, so A is not knocked off.
        asyncio.run(
            hold_connection(
                bus_port, a["mqtt_ca"], b["username"], b["password"], f"mm-agent-{a['agent_id']}", 3
            )
        )
        log = broker.text()
        assert "already connected, closing old connection" not in log
        assert f"as {b['username']} " in log or f"as {b['username']}\n" in log
        assert a_online()
        assert "Unable to open" not in log

        # A rerun of mosquitto-config (it used to leave root-only files) and a reload.
        assert mosquitto_config(*args).returncode == 0
        broker.reload()
        time.sleep(0.5)
        asyncio.run(
            hold_connection(bus_port, b["mqtt_ca"], b["username"], b["password"], "anything", 0.2)
        )
        assert "Unable to open" not in broker.text()
        assert broker.proc is not None and broker.proc.poll() is None

        # Mock traffic on the anonymous listener never sees the control bus.
        seen = asyncio.run(anonymous_sees(mock_port, ["lab/t", f"mm/v1/agents/{a['agent_id']}/x"]))
        assert seen == ["lab/t"]
    finally:
        if agent is not None:
            agent.stop()
        if app is not None:
            app.proc.stop()
        broker.stop()


def test_mqtts_against_the_plaintext_listener_does_not_connect(
    etc: Path, test_ca: CertAuthority, tmp_path: Path
) -> None:
    _skip_unless_root_with_mosquitto_user()
    out = etc / "mockmock"
    data = tmp_path / "appliance"
    bus_port = free_port()
    done = mosquitto_config(
        "--out", str(out), "--data-dir", str(data), "--listen", f"127.0.0.1:{bus_port}",
        "--persistence-dir", "",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "plaintext" in done.stderr  # no TLS files: it says so
    broker = Broker(out / "mosquitto.conf", etc / "mosquitto.log").start(bus_port)
    app = None
    try:
        app = serve(tmp_path, f"mqtts://127.0.0.1:{bus_port}", mqtt_ca=test_ca.cert)
        app.start(degraded_ok=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert not app.api("GET", "/api/v1/health", auth=False)["bus_connected"]
            time.sleep(0.5)
        assert "New client connected" not in broker.text()
    finally:
        if app is not None:
            app.proc.stop()
        broker.stop()


def test_mosquitto_config_refuses_half_tls_in_one_line(tmp_path: Path) -> None:
    cases = {
        ("--tls-cert", "/etc/hostname"): "--tls-key: a TLS listener needs both files",
        ("--tls-cert", "/nope", "--tls-key", "/nope"): "--tls-cert: /nope is not a file",
        ("--require-client-cert",): "--require-client-cert: needs --tls-ca",
        ("--listen", "8883"): "--listen: '8883' is not HOST:PORT",
    }
    for extra, message in cases.items():
        done = mosquitto_config("--out", str(tmp_path / "o"), "--data-dir", str(tmp_path), *extra)
        assert done.returncode == 2, (extra, done.stderr)
        assert done.stderr.strip() == f"error: {message}" or message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
