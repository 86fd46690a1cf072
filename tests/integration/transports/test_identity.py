"""Per-device client certificates from the test CA, accepted by a Mosquitto that
requires a certificate and takes its CN as the username."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from tests.fixtures.ports import free_port
from tests.integration.transports.conftest import Certs

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]


def cli(
    *args: str | Path, module: str = "appliance.command.main"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=60
    )


def mtls_broker(fresh_mosquitto, certs: Certs, ca_pem: Path):
    port = free_port()
    acl = (
        "topic read id/#\n"  # anonymous: the test's own subscriber
        "pattern write id/%u/#\n"  # a device may write under its own name only
    )
    broker = fresh_mosquitto(
        [
            f"listener {port} 127.0.0.1",
            f"cafile {ca_pem}",
            f"certfile {certs.server_cert}",
            f"keyfile {certs.server_key}",
            "require_certificate true",
            "use_identity_as_username true",
        ],
        acl=acl,
    )
    return broker, port


SCENARIO = """
templates:
  thing:
    transport:
      mqtt: {{url: "mqtts://127.0.0.1:{port}", topic: "{topic}", version: 5, qos: 1,
              identity: per_device, ca: "{ca}"}}
    interval: 200ms
    payload: {{n: {{counter: {{}}}}}}
groups:
  - {{name: thing, template: thing, count: 5}}
"""


async def test_n_devices_n_usernames(fresh_mosquitto, certs: Certs, tmp_path: Path) -> None:
    data = tmp_path / "appliance"
    done = cli("ca", "init", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((data / "ca" / "ca.key").stat().st_mode) == 0o600
    ca_pem = tmp_path / "mocks-ca.pem"
    assert cli("ca", "export", "--data-dir", data, "--out", ca_pem).returncode == 0
    assert ca_pem.read_text().startswith("-----BEGIN CERTIFICATE-----")
    again = cli("ca", "init", "--data-dir", data)
    assert again.returncode == 2 and "already holds a CA" in again.stderr

    broker, port = mtls_broker(fresh_mosquitto, certs, ca_pem)
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(port=port, topic="id/{device_id}/t", ca=certs.ca))
    agent_dir = tmp_path / "board"
    got: list[str] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier="id-sub") as c:
        await c.subscribe("id/#", qos=1)

        async def consume() -> None:
            async for m in c.messages:
                got.append(str(m.topic))

        task = asyncio.create_task(consume())
        bench = ("bench", path, "--duration", "1s", "--json", "--ca", data / "ca")
        proc = await asyncio.to_thread(cli, *bench, "--data-dir", agent_dir, module="agent.cli")
        await asyncio.sleep(0.5)
        task.cancel()
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["errors"] == 0 and result["sent"] > 0
    ids = {f"thing-{i:05d}" for i in range(5)}
    assert {t.split("/")[1] for t in got} == ids
    users = set(re.findall(r"u'([^']+)'", broker.log(tail=200_000)))
    assert users == ids, "each device connected as its own username (its certificate's CN)"

    # The board's key pair is its own (0600) and the certificates are cached.
    key = agent_dir / "identity" / "device.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    certs_dir = agent_dir / "identity" / "certs"
    cached = {p.name: p.stat().st_mtime_ns for p in certs_dir.iterdir()}
    assert set(cached) == {f"{i}.pem" for i in ids}
    # Writing under another device's name is refused: identities are distinct.
    path.write_text(SCENARIO.format(port=port, topic="id/someone-else/t", ca=certs.ca))
    proc = cli(*bench, "--data-dir", agent_dir, module="agent.cli")
    result = json.loads(proc.stdout)
    assert result["sent"] == 0 and result["errors"] > 0
    assert "not authorized" in result["groups"][0]["last_error"]
    again_cached = {
        p.name: p.stat().st_mtime_ns for p in (agent_dir / "identity" / "certs").iterdir()
    }
    assert again_cached == cached, "reused, not issued again"


def test_identity_needs_tls_and_an_issuer(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(port=1, topic="x", ca=tmp_path).replace("mqtts", "mqtt")
                    .replace(f', ca: "{tmp_path}"', ""))  # fmt: skip
    proc = cli("bench", path, "--json", module="agent.cli")
    assert proc.returncode == 2
    assert "transport.mqtt.identity: only with TLS" in proc.stderr


async def test_identities_from_a_file_log_in_as_themselves(fresh_mosquitto, tmp_path) -> None:
    from agent.template import load_scenario
    from tests.integration.agent.conftest import listening, running

    users = {"meter-a": "pw-a", "meter-b": "pw-b", "reader": "pw-r"}
    acl = "user reader\ntopic read m/#\npattern write m/%u/#\n"
    broker = fresh_mosquitto(anonymous=False, users=users, acl=acl)
    (tmp_path / "devices.jsonl").write_text(
        '{"id": "meter-a", "username": "meter-a", "password": "pw-a", "serial": 7}\n'
        '{"id": "meter-b", "username": "meter-b", "password": "pw-b", "serial": 8}\n'
    )
    doc = tmp_path / "s.yaml"
    doc.write_text(
        f"""
templates:
  meter:
    transport: {{mqtt: {{url: "{broker.url}", topic: "m/{{device_id}}/v", qos: 1}}}}
    identities: {{file: devices.jsonl}}
    interval: 200ms
    payload: {{serial: {{device_field: serial}}}}
groups: [{{name: meters, template: meter, count: 2}}]
"""
    )
    raw = load_scenario(doc).templates["meter"].raw
    async with (
        listening(broker, "m/#", username="reader", password="pw-r") as sub,
        running(raw, group="meters", count=2) as r,
    ):
        await asyncio.sleep(1.0)
    assert r.report.errors == 0 and len(sub.messages) == r.report.sent > 5
    assert {(m.topic, m.json()["serial"]) for m in sub.messages} == {
        ("m/meter-a/v", 7),
        ("m/meter-b/v", 8),
    }
    assert {"meter-a", "meter-b"} <= set(re.findall(r"u'([^']+)'", broker.log(tail=200_000)))
