"""``mockmock run`` reports and gates: what the engine kept, merged by the appliance,
equals what an independent subscriber counted; gates fail by name; JUnit parses."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.test_walking_skeleton import Subscriber, run_cli
from tests.fixtures.processes import Appliance
from tests.integration.agent import counts

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(120)]


def test_run_report_gates_and_junit(appliance_up: Appliance, fresh_mosquitto, tmp_path: Path):
    broker = fresh_mosquitto(counts.LOSSY)
    scenario = tmp_path / "lossy.yaml"
    scenario.write_text(counts.scenario(broker.url, group="lossy", topic="runrep", listen=True))
    junit = tmp_path / "junit.xml"
    with Subscriber(broker.host, broker.port, "runrep/#") as sub:
        done = run_cli(
            "run", str(scenario), "--duration", "4s",
            "--url", appliance_up.url,
            "--token-file", str(appliance_up.data_dir / "admin.token"),
            "--max-loss", "0.1%", "--max-p99-latency", "5s", "--junit", str(junit),
        )  # fmt: skip
        time.sleep(0.5)
    report = json.loads(done.stdout)
    group = report["groups"]["lossy"]
    mine = counts.own_counts(sub.messages)
    assert mine["lost"] > 5 and mine["duplicates"] > 5, mine

    # The report's verify figures are the subscriber's own counts.
    assert {k: group["verify"][k] for k in mine} == mine
    assert report["verify"]["lost"] == mine["lost"]
    assert group["faults"]["duplicate"] >= mine["duplicates"]
    assert group["transitions"]["by"] == {"normal>tail": 4}
    assert group["statuses"]["tail"]["devices"] == 4
    assert group["commands"] == {"received": 0, "replied_ok": 0, "replied_error": 0}
    # The window began once every device had its command subscription acknowledged.
    assert group["ready_s"] is not None and group["ready_s"] > 0

    # The loss gate fails and says so by name; the others pass.
    assert done.returncode == 1, done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and failed[0].startswith("failed: gate max-loss: group lossy: lost")

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"sent", "complete", "ready", "max-error-rate", "max-loss",
                          "max-p99-latency"}  # fmt: skip
    assert all(c.get("classname") == "mockmock.lossy" for c in cases.values())
    assert cases["max-loss"].find("failure") is not None
    assert [n for n, c in cases.items() if c.find("failure") is not None] == ["max-loss"]
    assert suite.get("tests") == "6" and suite.get("failures") == "1"

    # GET /api/v1/groups carries the same merged figures.
    listed = {g["name"]: g for g in appliance_up.api("GET", "/api/v1/groups")}
    assert listed["lossy"]["verify"]["lost"] == mine["lost"]
    assert listed["lossy"]["faults"] == group["faults"]


def test_a_bad_gate_is_one_line_exit_2(appliance_up: Appliance, mosquitto, tmp_path: Path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(counts.scenario(mosquitto.url))
    done = run_cli("run", str(scenario), "--max-loss", "lots", "--url", appliance_up.url)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --max-loss: 'lots' is not a share (e.g. 0.1% or 0.001)"
