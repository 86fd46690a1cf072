"""Operations: health tells degraded from ok, readiness answers 503 while degraded,
the Prometheus rules use metrics the appliance exports, journald-style log lines.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from agent.log_format import JournalFormatter
from tests.e2e.fleet import serve, wait
from tests.fixtures.mosquitto import FreshMosquitto

PROMETHEUS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


def ready(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/ready", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.mqtt
@pytest.mark.slow
def test_bus_down_is_degraded_and_not_ready_until_it_is_back(
    fresh_mosquitto: FreshMosquitto, tmp_path: Path
) -> None:
    broker = fresh_mosquitto()
    app = serve(tmp_path, broker.url).start()
    try:
        health = app.api("GET", "/api/v1/health", auth=False)
        assert health["status"] == "ok" and health["problems"] == [] and health["database_ok"]
        assert ready(app.url) == (200, health)

        broker.kill()
        wait(
            lambda: app.api("GET", "/api/v1/health", auth=False)["status"] == "degraded",
            20,
            "health degraded with the bus down",
            app.proc.log(),
        )
        health = app.api("GET", "/api/v1/health", auth=False)  # still 200: alive
        assert health["bus_connected"] is False
        assert health["problems"] == ["control bus: not connected (see the appliance log)"]
        code, body = ready(app.url)
        assert code == 503 and body["status"] == "degraded"

        broker.start()
        wait(lambda: ready(app.url)[0] == 200, 30, "ready again", app.proc.log())
    finally:
        app.proc.stop()


@pytest.mark.mqtt
@pytest.mark.slow
def test_alert_rules_are_valid_and_name_exported_metrics(
    fresh_mosquitto: FreshMosquitto, tmp_path: Path
) -> None:
    rules_file = PROMETHEUS / "mockmock.rules.yml"
    promtool = shutil.which("promtool")
    if promtool is not None:
        for args in (["check", "rules", str(rules_file)], ["check", "config", "prometheus.yml"]):
            done = subprocess.run(
                [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load(rules_file.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    names = {r["alert"] for r in alerts}
    assert {
        "MockmockControlBusDown",
        "MockmockAgentOfflineWithMocks",
        "MockmockUsageIngestLag",
        "MockmockChargeFailed",
    } <= names
    for r in alerts:
        assert r["expr"] and r["labels"]["severity"] in ("critical", "warning", "info"), r
        assert r["annotations"]["summary"] and re.fullmatch(r"\d+[smhd]", r["for"]), r
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["mockmock.rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["authorization"]["credentials_file"]

    # Every mockmock_* series the rules use is a family /metrics exposes.
    broker = fresh_mosquitto()
    app = serve(tmp_path, broker.url).start()
    try:
        req = urllib.request.Request(
            f"{app.url}/metrics", headers={"Authorization": f"Bearer {app.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            exposition = r.read().decode()
    finally:
        app.proc.stop()
    exported = set(re.findall(r"^# TYPE (\w+) ", exposition, re.M))
    used = {m for r in alerts for m in re.findall(r"\bmockmock_\w+", r["expr"])}
    assert used and used <= exported, used - exported


def test_journal_lines_carry_the_priority_and_no_timestamp() -> None:
    fmt = JournalFormatter()

    def line(level: int, msg: str) -> str:
        return fmt.format(
            logging.LogRecord("appliance.bus.control", level, __file__, 1, msg, (), None)
        )

    assert (
        line(logging.ERROR, "control bus: refused")
        == "<3>appliance.bus.control: control bus: refused"
    )
    assert line(logging.WARNING, "x") == "<4>appliance.bus.control: x"
    assert line(logging.INFO, "x") == "<6>appliance.bus.control: x"
    assert line(logging.DEBUG, "x") == "<7>appliance.bus.control: x"
    assert line(logging.ERROR, "a\nb") == "<3>appliance.bus.control: a\n<3>b"


def test_under_systemd_the_log_is_in_the_journals_format(tmp_path: Path) -> None:
    import os
    import sys

    err = tmp_path / "stderr"
    err.touch()
    st = os.stat(err)
    code = (
        "import logging; from agent.log_format import configure; configure(False); "
        "logging.getLogger('appliance.bus.control').warning('control bus: refused')"
    )
    with open(err, "wb") as f:
        for stream in (f"{st.st_dev}:{st.st_ino}", ""):  # the journal, then a terminal
            env = {**os.environ, "JOURNAL_STREAM": stream}
            subprocess.run([sys.executable, "-c", code], stderr=f, env=env, check=True, timeout=60)
    journal, terminal = err.read_text().splitlines()
    assert journal == "<4>appliance.bus.control: control bus: refused"
    assert terminal.endswith(" WARNING appliance.bus.control: control bus: refused")
    assert not terminal.startswith("<")
