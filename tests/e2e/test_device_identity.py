"""Per-device certificates through the appliance: the local agent of ``mockmock up``
asks the test CA for its devices' certificates; Mosquitto sees N usernames."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.test_walking_skeleton import run_cli
from tests.fixtures.processes import Appliance
from tests.integration.transports.conftest import Certs, certs  # noqa: F401 - the fixture
from tests.integration.transports.test_identity import SCENARIO, mtls_broker

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(120)]


def _post(app: Appliance, agent: dict, body: dict, password: str | None = None) -> int:
    creds = f"{agent['username']}:{password or agent['password']}".encode()
    req = urllib.request.Request(
        f"{app.url}/api/v1/agents/{agent['agent_id']}/certificates",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(creds).decode(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_run_with_per_device_certificates(
    appliance_up: Appliance,
    fresh_mosquitto,
    certs: Certs,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    done = run_cli("ca", "init", "--data-dir", str(appliance_up.data_dir))
    assert done.returncode == 0, done.stderr
    ca_pem = tmp_path / "mocks-ca.pem"
    run_cli("ca", "export", "--data-dir", str(appliance_up.data_dir), "--out", str(ca_pem))
    broker, port = mtls_broker(fresh_mosquitto, certs, ca_pem)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.format(port=port, topic="id/{device_id}/t", ca=certs.ca))
    done = run_cli(
        "run", str(scenario), "--duration", "2s", "--url", appliance_up.url,
        "--token-file", str(appliance_up.data_dir / "admin.token"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["errors"] == 0 and report["sent"] > 0
    users = set(re.findall(r"u'([^']+)'", broker.log(tail=200_000)))
    assert users == {f"thing-{i:05d}" for i in range(5)}

    # The route: only the agent itself, and only for devices assigned to it.
    agent = json.loads((appliance_up.data_dir / "agent" / "agent.json").read_text())
    key = subprocess.run(
        ["openssl", "ecparam", "-genkey", "-name", "prime256v1"], capture_output=True, check=True
    ).stdout
    pub = subprocess.run(
        ["openssl", "ec", "-pubout"], input=key, capture_output=True, check=True
    ).stdout.decode()
    body = {"public_key": pub, "devices": ["thing-00000"]}
    assert _post(appliance_up, agent, body, password="wrong") == 401
    # the group stopped with the run: nothing is assigned to the agent any more
    assert _post(appliance_up, agent, body) == 403
