"""``mockmock-agent bench``: the engine alone, through the real command line."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from tests.fixtures.mosquitto import FreshMosquitto, Mosquitto
from tests.fixtures.ports import free_port
from tests.integration.agent import counts
from tests.integration.transports.conftest import HttpTarget

pytestmark = pytest.mark.timeout(60)

SCENARIO = """
templates:
  probe:
    transport:
      {transport}
    interval: 100ms
    payload:
      device: {{device_id: {{}}}}
      seq: {{counter: {{}}}}
      temp: {{uniform: {{min: 18.0, max: 26.0}}}}
groups:
  - {{name: north, template: probe, count: 6}}
  - {{name: south, template: probe, count: 2}}
"""


def bench(*args: str | Path, timeout: float = 45) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "bench", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scenario(tmp_path: Path, transport: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.format(transport=transport))
    return path


@pytest.mark.mqtt
async def test_bench_json_counts_what_the_broker_delivers(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    path = scenario(tmp_path, f'mqtt: {{url: "{mosquitto.url}", topic: "bench/{{device_id}}"}}')
    received: list[str] = []
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="bench-count") as c:
        await c.subscribe("bench/#")

        async def count() -> None:
            async for m in c.messages:
                received.append(str(m.topic))

        task = asyncio.create_task(count())
        proc = await asyncio.to_thread(bench, path, "--duration", "2s", "--json")
        await asyncio.sleep(0.5)
        task.cancel()
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("sent", "duration_s", "sent_per_s", "errors", "rss_mb", "cpu_percent"):
        assert key in result
    assert set(result["lateness_ms"]) >= {"p50", "p99", "max"}
    assert result["errors"] == 0
    assert result["devices"] == 8
    # 8 devices at 10/s for ~2 s; the window excludes connecting and stopping.
    assert 100 <= result["sent"] <= 200
    assert result["sent_total"] >= result["sent"]
    assert len(received) == result["sent_total"], "every message sent reached the broker"
    assert [(g["name"], g["devices"]) for g in result["groups"]] == [("north", 6), ("south", 2)]
    assert sum(g["sent"] for g in result["groups"]) == result["sent"]


@pytest.mark.mqtt
def test_bench_devices_override_scales_the_groups(mosquitto: Mosquitto, tmp_path: Path) -> None:
    path = scenario(tmp_path, f'mqtt: {{url: "{mosquitto.url}", topic: "scale/{{device_id}}"}}')
    proc = bench(path, "--duration", "500ms", "--devices", "20")
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.splitlines()
    assert table[0].split()[:3] == ["group", "devices", "sent"]
    assert table[1].split()[:2] == ["north", "15"]
    assert table[2].split()[:2] == ["south", "5"]
    assert table[3].split()[:2] == ["total", "20"]


def test_bench_http_counts_failed_requests_as_errors(
    http_target: Callable[..., HttpTarget], tmp_path: Path
) -> None:
    target = http_target()
    path = scenario(tmp_path, f'http: {{url: "{target.url}/fail/{{device_id}}"}}')
    proc = bench(path, "--duration", "1s", "--json")
    result = json.loads(proc.stdout)
    assert result["sent"] > 0
    assert result["errors"] > 0, "every answer is a 500"
    paths = {r.path for r in target.received()}
    assert "/fail/north-00000" in paths and "/fail/south-00001" in paths


def test_bad_scenario_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = scenario(tmp_path, 'mqtt: {url: "ftp://127.0.0.1:1", topic: "x"}')
    proc = bench(path, "--duration", "1s", "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: templates.probe.transport.mqtt.url")


def test_bad_duration_is_exit_2(tmp_path: Path) -> None:
    path = scenario(tmp_path, 'mqtt: {url: "mqtt://127.0.0.1:1", topic: "x"}')
    proc = bench(path, "--duration", "soon")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --duration")


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_failed_group_ends_the_run(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: the verify subscriber cannot connect
    path = scenario(tmp_path, f'mqtt: {{url: "mqtt://127.0.0.1:{port}", topic: "v/{{device_id}}"}}')
    path.write_text(
        path.read_text().replace("    interval: 100ms", "    verify: true\n    interval: 100ms")
    )
    line = _one_error_line(bench(path, "--duration", "5s", "--json", timeout=40))
    assert "group north failed: verify subscriber" in line or "group south failed" in line
    assert "0 of 8 devices connected" in line


def test_a_connect_phase_that_cannot_finish_is_bounded(tmp_path: Path) -> None:
    port = free_port()
    path = scenario(tmp_path, f'mqtt: {{url: "mqtt://127.0.0.1:{port}", topic: "c/{{device_id}}"}}')
    proc = bench(path, "--duration", "5s", "--connect-timeout", "2s", "--json", timeout=40)
    line = _one_error_line(proc)
    assert "0 of 8 devices connected within 2s" in line
    assert f"127.0.0.1:{port}" in line  # why: the last connect error


@pytest.mark.mqtt
def test_more_devices_than_open_files_is_one_line_at_start(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    path = scenario(tmp_path, f'mqtt: {{url: "{mosquitto.url}", topic: "fd/{{device_id}}"}}')

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    proc = subprocess.run(
        [sys.executable, "-m", "agent.cli", "bench", str(path), "--devices", "1000", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=low_limit,
    )
    line = _one_error_line(proc)
    assert "1000 devices: 1000 connections need" in line and "of 256" in line
    assert "ulimit -n" in line


@pytest.mark.mqtt
async def test_bench_json_verify_equals_a_subscribers_own_counts(
    fresh_mosquitto: FreshMosquitto, tmp_path: Path
) -> None:
    broker = fresh_mosquitto(counts.LOSSY)
    path = tmp_path / "lossy.yaml"
    path.write_text(counts.scenario(broker.url))
    got: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(broker.host, broker.port, identifier="bench-own-counts") as c:
        await c.subscribe("rep/#", qos=1)

        async def count() -> None:
            async for m in c.messages:
                got.append((str(m.topic), bytes(m.payload)))  # type: ignore[arg-type]

        task = asyncio.create_task(count())
        proc = await asyncio.to_thread(bench, path, "--duration", "3s", "--json")
        await asyncio.sleep(0.5)
        task.cancel()
    assert proc.returncode == 0, proc.stderr
    group = json.loads(proc.stdout)["groups"][0]
    mine = counts.own_counts(got)
    v = group["verify"]
    assert mine["lost"] > 5 and mine["duplicates"] > 5, mine  # the test injects both
    assert {k: v[k] for k in mine} == mine
    # Injected: those that arrived, and those of a message the broker dropped.
    assert group["faults"]["duplicate"] >= mine["duplicates"]
    assert set(v["latency_ms"]) == {"p50", "p99", "max"}
    sent_msgs = mine["received"] - mine["duplicates"] + mine["lost"]
    assert v["loss_rate"] == pytest.approx(mine["lost"] / sent_msgs, abs=1e-6)
    st = group["statuses"]
    assert st["tail"]["devices"] == 4 and st["normal"]["devices"] == 0
    assert group["transitions"] == {"total": 4, "by": {"normal>tail": 4}}
    # 4 devices x 2 s in normal, the rest of the run in tail; sends counted per status
    assert st["normal"]["seconds"] == pytest.approx(8, abs=1.0)
    published = sent_msgs + group["faults"]["duplicate"]  # every copy went out
    assert st["normal"]["sends"] + st["tail"]["sends"] == published
