"""From scenario file to real MQTT traffic, through real processes.

`mockmock up` (embedded broker + local agent) drives 50 mocks at a separately
started Mosquitto; an independent subscriber checks what arrives. Its local agent is a
child process (`mockmock-agent run`), stopped with `up`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import aiomqtt
import pytest

from tests.fixtures.processes import Appliance, mockmock

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SCENARIO = """
templates:
  thermo:
    transport:
      mqtt: {{url: "{url}", topic: "lab/{{device_id}}/telemetry", qos: 1}}
    interval: 1s
    payload:
      device: {{device_id: {{}}}}
      seq: {{counter: {{}}}}
      temp: {{uniform: {{min: 18.0, max: 26.0}}}}
      state: {{choice: {{values: [ok, warn, ng], weights: [90, 8, 2]}}}}
      ts: {{timestamp: {{format: epoch_ms}}}}
      fw: {{const: "1.4.2"}}
groups:
  - {{name: thermo-fleet, template: thermo, count: 50}}
"""


class Subscriber:
    """An independent MQTT subscriber on its own thread and event loop."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run(host, port, topic)), daemon=True
        )

    async def _run(self, host: str, port: int, topic: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with aiomqtt.Client(host, port, identifier="independent-subscriber") as c:
            await c.subscribe(topic, qos=1)
            self._ready.set()

            async def consume() -> None:
                async for m in c.messages:
                    self.messages.append((str(m.topic), bytes(m.payload)))

            task = asyncio.create_task(consume())
            await self._stop.wait()
            task.cancel()

    def __enter__(self) -> Subscriber:
        self._thread.start()
        assert self._ready.wait(10), "subscriber did not connect"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        mockmock(*args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_run_delivers_the_scenario_to_a_real_broker(
    appliance_up: Appliance, mosquitto, tmp_path: Path
) -> None:
    scenario = tmp_path / "thermo.yaml"
    scenario.write_text(SCENARIO.format(url=mosquitto.url))
    report_file = tmp_path / "report.json"
    with Subscriber(mosquitto.host, mosquitto.port, "lab/+/telemetry") as sub:
        done = run_cli(
            "run",
            str(scenario),
            "--duration",
            "10s",
            "--url",
            appliance_up.url,
            "--token-file",
            str(appliance_up.data_dir / "admin.token"),
            "--report",
            str(report_file),
        )
        # Allow the last in-flight QoS 1 messages to land.
        deadline = 3.0
        while deadline > 0 and len(sub.messages) < done_sent(done):
            time.sleep(0.2)
            deadline -= 0.2
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert json.loads(report_file.read_text()) == report
    group = report["groups"]["thermo-fleet"]

    # ~500 messages: 50 devices x 10 s at 1 s, give or take the first/last tick.
    assert 400 <= report["sent"] <= 600, report
    assert group["errors"] == 0 and report["errors"] == 0
    assert set(report["lateness_ms"]) >= {"p50", "p99"}

    by_device: dict[str, list[dict]] = defaultdict(list)
    for topic, payload in sub.messages:
        msg = json.loads(payload)  # every payload is valid JSON
        assert set(msg) == {"device", "seq", "temp", "state", "ts", "fw"}
        assert topic == f"lab/{msg['device']}/telemetry"  # topic expanded per device
        assert 18.0 <= msg["temp"] <= 26.0
        assert msg["state"] in ("ok", "warn", "ng")
        assert msg["fw"] == "1.4.2"
        assert isinstance(msg["ts"], int) and msg["ts"] > 1_600_000_000_000
        by_device[msg["device"]].append(msg)
    assert len(by_device) == 50
    assert set(by_device) == {f"thermo-fleet-{i:05d}" for i in range(50)}
    for msgs in by_device.values():
        seqs = [m["seq"] for m in msgs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # strictly increasing
    # What the report counts as sent is what the independent subscriber received.
    assert len(sub.messages) == report["sent"]

    # The run's usage is in the database: ~50 devices x 10 s per group and org.
    used = appliance_up.api("GET", "/api/v1/usage")
    assert 350 <= used["groups"]["thermo-fleet"] <= 650, used
    assert used["device_seconds"] == used["groups"]["thermo-fleet"]
    assert group["device_seconds"] == pytest.approx(used["groups"]["thermo-fleet"])


def done_sent(done: subprocess.CompletedProcess[str]) -> int:
    try:
        return int(json.loads(done.stdout)["sent"])
    except (ValueError, KeyError):
        return 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        (
            ("{uniform: {min: 18.0, max: 26.0}}", "{unifrom: {min: 18.0, max: 26.0}}"),
            "templates.thermo.payload.temp",
        ),
        (("count: 50", "count: -5"), "groups[0].count"),
        (("interval: 1s", "interval: 1x"), "templates.thermo.interval"),
    ],
)
def test_bad_scenario_is_one_line_exit_2_and_starts_nothing(
    appliance_up: Appliance, mosquitto, tmp_path: Path, patch: tuple[str, str], field: str
) -> None:
    bad = SCENARIO.format(url=mosquitto.url).replace(*patch)
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(bad)
    done = run_cli(
        "run",
        str(scenario),
        "--duration",
        "2s",
        "--url",
        appliance_up.url,
        "--token-file",
        str(appliance_up.data_dir / "admin.token"),
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert appliance_up.api("GET", "/api/v1/groups") == []
    assert appliance_up.api("GET", "/api/v1/templates") == []


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that does not reap (a container's init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    """The PIDs whose parent is ``pid`` now."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            out.append(int(stat.parent.name))
    return out


def _local_agent(app: Appliance) -> int:
    """The PID of `up`'s local agent, once it is online."""
    pid_file = app.data_dir / "agent" / "agent.pid"
    app.wait_for(lambda: app.api("GET", "/api/v1/health")["agents_online"] == 1, what="agent")
    return int(pid_file.read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_up_runs_its_agent_as_a_child_process_that_stops_with_it(
    appliance_up: Appliance, sig: signal.Signals
) -> None:
    assert appliance_up.proc.proc is not None
    up = appliance_up.proc.proc.pid
    agent = _local_agent(appliance_up)
    assert agent != up
    cmdline = Path(f"/proc/{agent}/cmdline").read_bytes().split(b"\0")
    # What a board runs: `mockmock-agent run` with the enrolled data dir.
    assert cmdline[1:6] == [b"-m", b"agent.cli", b"run", b"--data-dir",
                            str(appliance_up.data_dir / "agent").encode()]  # fmt: skip
    assert Path(f"/proc/{agent}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(up)
    assert os.getpgid(agent) == agent  # its own group: stopped by PID with its children

    children = _children(up)
    assert agent in children
    appliance_up.proc.proc.send_signal(sig)
    appliance_up.proc.proc.wait(30)
    deadline = time.monotonic() + 10
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(agent), appliance_up.proc.log()
    # Every child of `up` (the agent, demo localstripe) is gone, even after kill -9.
    assert [p for p in children if _alive(p)] == [], appliance_up.proc.log()
    if sig != signal.SIGKILL:  # stopped in order: it said goodbye and cleaned up
        assert not (appliance_up.data_dir / "agent" / "agent.pid").exists()
        assert appliance_up.proc.proc.returncode == 0, appliance_up.proc.log()
