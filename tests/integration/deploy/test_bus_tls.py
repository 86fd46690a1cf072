"""TLS on the control bus: ``mqtts://`` is verified end to end and never plaintext.

A real Mosquitto with a TLS listener (certificate from a throwaway CA), a real
``mockmock serve`` and a real enrolled agent process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.fleet import agent_proc, enroll, serve, wait
from tests.fixtures.mosquitto import FreshMosquitto, Mosquitto
from tests.fixtures.tls import CertAuthority

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def tls_broker(fresh: FreshMosquitto, ca: CertAuthority, *extra: str) -> Mosquitto:
    cert, key = ca.issue("broker")
    return fresh(
        [f"cafile {ca.cert}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2", *extra]
    )


def mqtts(broker: Mosquitto) -> str:
    return f"mqtts://127.0.0.1:{broker.port}"


def bus_connected(app) -> bool:
    return bool(app.api("GET", "/api/v1/health", auth=False)["bus_connected"])


def test_appliance_and_agent_talk_over_verified_tls(
    fresh_mosquitto: FreshMosquitto, test_ca: CertAuthority, tmp_path: Path
) -> None:
    broker = tls_broker(fresh_mosquitto, test_ca)
    app = serve(tmp_path, mqtts(broker), mqtt_ca=test_ca.cert).start()
    try:
        wait(lambda: bus_connected(app), 20, "the appliance on the TLS bus", app.proc.log())
        board = tmp_path / "board"
        enroll(app, board, capacity=10)
        cfg = json.loads((board / "agent.json").read_text())
        assert cfg["mqtt_url"] == mqtts(broker)
        assert cfg["mqtt_ca"] == test_ca.cert.read_text()  # handed over at enrollment
        agent = agent_proc(board).start()
        try:
            wait(
                lambda: app.api("GET", "/api/v1/health", auth=False)["agents_online"] == 1,
                30,
                "the agent online over TLS",
                agent.log(),
            )
        finally:
            agent.stop()
    finally:
        app.proc.stop()


def test_mutual_tls_with_a_client_certificate(
    fresh_mosquitto: FreshMosquitto, test_ca: CertAuthority, tmp_path: Path
) -> None:
    broker = tls_broker(fresh_mosquitto, test_ca, "require_certificate true")
    cert, key = test_ca.issue("appliance-client", "DNS:appliance", client=True)
    app = serve(tmp_path, mqtts(broker), mqtt_ca=test_ca.cert, mqtt_cert=cert, mqtt_key=key).start()
    try:
        wait(lambda: bus_connected(app), 20, "the appliance on the mTLS bus", app.proc.log())
    finally:
        app.proc.stop()


def test_mqtts_to_a_plaintext_listener_never_connects(
    fresh_mosquitto: FreshMosquitto, test_ca: CertAuthority, tmp_path: Path
) -> None:
    plain = fresh_mosquitto()
    app = serve(tmp_path, mqtts(plain), mqtt_ca=test_ca.cert).start(degraded_ok=True)
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            assert not bus_connected(app)
            time.sleep(0.5)
        assert "control bus" in app.proc.log()  # it says why
        # The broker never saw an MQTT CONNECT from it (no plaintext fallback).
        assert "New client connected" not in plain.log()
    finally:
        app.proc.stop()


def test_no_banner_or_log_line_shows_the_bus_password(
    fresh_mosquitto: FreshMosquitto, test_ca: CertAuthority, tmp_path: Path
) -> None:
    broker = tls_broker(fresh_mosquitto, test_ca)
    secret = "S3cr3t-never-printed"
    url = f"mqtts://someone:{secret}@127.0.0.1:{broker.port}"
    app = serve(tmp_path, url, mqtt_ca=test_ca.cert).start()
    try:
        time.sleep(1)
        log = app.proc.log()
        assert f"control bus: mqtts://someone:***@127.0.0.1:{broker.port}" in log
        assert secret not in log
    finally:
        app.proc.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--mqtt-url", "mqtt://127.0.0.1:1", "--mqtt-ca", "CA"), "--mqtt-ca: given, but"),
        (("--mqtt-url", "mqtts://127.0.0.1:1", "--mqtt-ca", "/nonexistent/ca.pem"), "cannot read"),
        (("--mqtt-url", "mqtts://127.0.0.1:1", "--mqtt-ca", "NOTPEM"), "holds no PEM"),
        (("--mqtt-url", "tcp://127.0.0.1:1"), "--mqtt-url: tcp scheme"),
        (("--mqtt-url", "mqtts://127.0.0.1:1", "--mqtt-key", "CA"), "--mqtt-key: given without"),
        (("--mqtt-url", "mqtt://127.0.0.1:1", "--tls-cert", "CA"), "--tls-key: HTTPS needs both"),
        (("--mqtt-url", "mqtt://127.0.0.1:1", "--public-url", "x y"), "--public-url:"),
    ],
)
def test_bad_tls_options_are_one_line(
    tmp_path: Path, test_ca: CertAuthority, args: tuple[str, ...], message: str
) -> None:
    notpem = tmp_path / "not.pem"
    notpem.write_text("hello\n")
    args = tuple({"CA": str(test_ca.cert), "NOTPEM": str(notpem)}.get(a, a) for a in args)
    serve_cmd = [
        sys.executable,
        "-m",
        "appliance.command",
        "serve",
        "--data-dir",
        str(tmp_path / "d"),
    ]
    done = subprocess.run(
        [*serve_cmd, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
