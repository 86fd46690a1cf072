"""MQTT data-plane benchmarks against a private Mosquitto (not part of the test run).

    uv run python -m tests.perf.mqtt_bench                      # all three, 3 runs each
    uv run python -m tests.perf.mqtt_bench --case shared --runs 5 --duration 10

Cases (the issue's targets):

- ``ceiling``: the C clients alone, ``mosquitto_pub -l`` fed N ~110-byte lines
  → Mosquitto → ``mosquitto_sub -C N``: the delivered rate the broker and the
  loopback allow on this machine, measured in the same session.
- ``shared``: ``mockmock-agent bench``, one shared connection, QoS 0, 1,000
  devices every 10 ms (``--shared-interval``) with 6 generated fields;
  ``mosquitto_sub`` counts what is delivered while the bench measures. Target:
  >= 0.8 x the ceiling — ask for more than the agent can send (``--shared-interval
  3ms``: 333,000/s) to measure its own ceiling rather than the rate asked.
- ``per_device``: 10,000 devices, each its own connection, one message a
  second, one agent process. Targets: >= 99.9 % delivered, send lateness p99
  <= 10 ms, <= 30 KB RSS per device.

Every wait is bounded; each broker, subscriber and bench is a child process
that is stopped at the end. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.mosquitto import Mosquitto, find_mosquitto

HOST = "127.0.0.1"
FIELDS = """
      device: {device_id: {}}
      seq: {counter: {}}
      temp: {uniform: {min: 18.0, max: 26.0}}
      hum: {normal: {mean: 45.0, stddev: 5.0, decimals: 1}}
      state: {choice: {values: [ok, warn, ng], weights: [90, 8, 2]}}
      ts: {timestamp: {format: epoch_ms}}
"""
SCENARIO = """
templates:
  perf:
    transport:
      mqtt: {{url: "mqtt://{host}:{port}", topic: "perf/{{device_id}}", qos: 0,
             connection: {connection}}}
    interval: {interval}
    payload:{fields}
groups:
  - {{name: perf, template: perf, count: {count}}}
"""


def raise_fd_limit() -> int:
    """10,000 connections need 10,000 descriptors in the agent and in the broker."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 65536
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class QuietMosquitto(Mosquitto):
    """The test broker without per-connection log lines: 10,000 connects would make
    the log the benchmark."""

    def config(self) -> str:
        drop = {"log_type information", "log_type notice", "connection_messages true"}
        return "".join(f"{line}\n" for line in super().config().splitlines() if line not in drop)


def start_broker(workdir: Path) -> Mosquitto:
    binary = find_mosquitto()
    if binary is None:
        sys.exit("mosquitto not found: install the Debian package 'mosquitto'")
    broker = QuietMosquitto(
        binary,
        workdir / f"broker-{time.monotonic_ns()}",
        # No connection limit, and never drop a message for a slow subscriber
        # (0 = unlimited): a loss must be the agent's, not the broker's policy.
        extra_config=["max_connections -1", "max_queued_messages 0"],
    )
    return broker.start()


@dataclass
class Counter:
    """``mosquitto_sub`` printing one line per message; a thread counts the lines and
    keeps (time, count) samples so a rate can be read over any window."""

    port: int
    topic: str
    limit: int | None = None
    times: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        args = ["mosquitto_sub", "-h", HOST, "-p", str(self.port), "-t", self.topic, "-q", "0"]
        if self.limit:
            args += ["-C", str(self.limit)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.total = 0
        self.thread = threading.Thread(target=self._count, daemon=True)
        self.thread.start()
        time.sleep(0.3)  # subscribed before anything is published

    def _count(self) -> None:
        assert self.proc.stdout is not None
        read = self.proc.stdout.read1  # type: ignore[attr-defined]
        while chunk := read(1 << 16):
            self.total += chunk.count(b"\n")
            self.times.append(time.time())
            self.counts.append(self.total)

    def at(self, t: float) -> int:
        """Messages counted by time ``t``."""
        i = bisect.bisect_right(self.times, t)
        return self.counts[i - 1] if i else 0

    def wait(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.thread.join(5)


def ceiling(port: int, n: int) -> dict[str, Any]:
    """C publisher → broker → C subscriber: the delivered rate."""
    payload = (
        '{"device":"perf-00042","seq":%d,"temp":21.37,"hum":44.9,'
        '"state":"ok","ts":1795612076075,"fw":"1.4.2","x":0}'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for i in range(n):
            f.write(payload % i + "\n")
        lines = Path(f.name)
    counter = Counter(port, "perf/ceiling", limit=n)
    started = time.time()
    with open(lines, "rb") as stdin:
        subprocess.run(
            ["mosquitto_pub", "-h", HOST, "-p", str(port), "-t", "perf/ceiling", "-l"],
            stdin=stdin,
            check=True,
            timeout=300,
        )
    counter.wait(timeout=30)
    lines.unlink()
    last = counter.times[-1] if counter.times else time.time()
    return {
        "messages": n,
        "delivered": counter.total,
        "delivered_per_s": round(counter.total / max(last - started, 1e-9)),
        "payload_bytes": len(payload % 0),
    }


def run_bench(
    port: int, workdir: Path, *, connection: str, count: int, interval: str, duration: float
) -> dict[str, Any]:
    path = workdir / f"{connection}-{count}.yaml"
    path.write_text(
        SCENARIO.format(
            host=HOST,
            port=port,
            connection=connection,
            interval=interval,
            count=count,
            fields=FIELDS,
        )
    )
    counter = Counter(port, "perf/#")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli", "bench", str(path), "--duration",
             f"{duration}s", "--json"],
            capture_output=True,
            text=True,
            timeout=duration + 600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"bench failed ({proc.returncode}): {proc.stderr[-2000:]}")
        result = json.loads(proc.stdout)
        time.sleep(2)  # let the broker deliver what is in flight
    finally:
        counter.stop()
    window = result["ended_at"] - result["started_at"]
    in_window = counter.at(result["ended_at"]) - counter.at(result["started_at"])
    result["delivered_per_s"] = round(in_window / window)
    result["delivered_total"] = counter.total
    result["delivered_ratio"] = round(counter.total / max(result["sent_total"], 1), 5)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=["ceiling", "shared", "per_device"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="bench window, seconds")
    parser.add_argument("--ceiling-messages", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=10_000, help="per_device case")
    parser.add_argument("--json", type=Path, help="also write every run here")
    parser.add_argument(
        "--shared-interval",
        default="10ms",
        help="shared case: each of the 1,000 devices sends this often (10ms: 100,000/s asked;"
        " 3ms asks more than one core can send, so the figure is the agent's ceiling)",
    )
    args = parser.parse_args()
    cases = args.case or ["ceiling", "shared", "per_device"]
    fds = raise_fd_limit()
    print(f"# {os.cpu_count()} CPUs, RLIMIT_NOFILE {fds}, load {os.getloadavg()}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory(prefix="mm-perf-") as tmp:
        workdir = Path(tmp)
        for i in range(args.runs):
            for case in cases:
                broker = start_broker(workdir)  # a fresh broker per run: no leftovers
                load = os.getloadavg()[0]
                try:
                    if case == "ceiling":
                        r = ceiling(broker.port, args.ceiling_messages)
                    elif case == "shared":
                        every = args.shared_interval
                        r = run_bench(broker.port, workdir, connection="shared", count=1000,
                                      interval=every, duration=args.duration)  # fmt: skip
                    else:
                        r = run_bench(broker.port, workdir, connection="per_device",
                                      count=args.devices, interval="1s",
                                      duration=args.duration)  # fmt: skip
                finally:
                    broker.stop()
                r["load_1m_before"] = load
                runs[case].append(r)
                print(f"run {i + 1} {case}: {_line(case, r)}", flush=True)
    print()
    print(_table(runs))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))


def _line(case: str, r: dict[str, Any]) -> str:
    if case == "ceiling":
        return f"{r['delivered']:,}/{r['messages']:,} delivered, {r['delivered_per_s']:,}/s"
    lat = r["lateness_ms"]
    return (
        f"sent {r['sent_per_s']:,.0f}/s delivered {r['delivered_per_s']:,}/s "
        f"({r['delivered_ratio']:.4%} of {r['sent_total']:,}), lateness p50 {lat['p50']} "
        f"p99 {lat['p99']} max {lat['max']} ms, CPU {r['cpu_percent']}%, "
        f"RSS {r['rss_mb']} MB ({r['rss_kb_per_device']} KB/device), "
        f"connect {r['connect_s']}s, load {r['load_1m_before']:.2f}"
    )


def _table(runs: dict[str, list[dict[str, Any]]]) -> str:
    out = ["| case | figure | best | median | runs |", "|---|---|---|---|---|"]

    def row(case: str, name: str, values: list[float], higher: bool = True) -> None:
        best = max(values) if higher else min(values)
        out.append(
            f"| {case} | {name} | {best:,.1f} | {statistics.median(values):,.1f} | {len(values)} |"
        )

    ceil = runs.get("ceiling", [])
    if ceil:
        row("ceiling", "delivered msg/s", [r["delivered_per_s"] for r in ceil])
    for case in ("shared", "per_device"):
        rs = runs.get(case, [])
        if not rs:
            continue
        row(case, "sent msg/s", [r["sent_per_s"] for r in rs])
        row(case, "delivered msg/s", [r["delivered_per_s"] for r in rs])
        row(case, "delivered %", [100 * r["delivered_ratio"] for r in rs])
        row(case, "lateness p50 ms", [r["lateness_ms"]["p50"] for r in rs], higher=False)
        row(case, "lateness p99 ms", [r["lateness_ms"]["p99"] for r in rs], higher=False)
        row(case, "CPU % of a core", [r["cpu_percent"] for r in rs], higher=False)
        row(case, "RSS KB/device", [r["rss_kb_per_device"] for r in rs], higher=False)
    if ceil and runs.get("shared"):
        c = statistics.median(r["delivered_per_s"] for r in ceil)
        s = statistics.median(r["delivered_per_s"] for r in runs["shared"])
        out.append(f"\nshared delivered / ceiling (medians): {s / c:.2f}x (target >= 0.8x)")
    return "\n".join(out)


if __name__ == "__main__":
    main()
