"""Real devices at scale on one box: N per-device MQTT connections at 1 msg/s, spread over
several agent processes and several private Mosquitto brokers.

    uv run python -m tests.perf.devices_bench --devices 50000 --agents 3 --brokers 3  # full
    uv run python -m tests.perf.devices_bench --devices 5000 --duration 10            # smoke

One process may hold only so many connections (the open-files limit: 20,000 on
the development VM), and so may one broker: the devices are split evenly over
``--agents`` ``mockmock-agent bench`` processes, agent i on broker i mod
``--brokers``, each device its own connection and client id. A ``mosquitto_sub``
per broker counts what is delivered while the agents measure. Printed: delivered
share (target >= 99 %), send lateness p50/p99 of each agent (target p99 <= 10 ms),
CPU of each agent and RSS per device.

Every wait is bounded; brokers, counters and agents are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.perf.mqtt_bench import FIELDS, HOST, SCENARIO, Counter, raise_fd_limit, start_broker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--agents", type=int, default=3, help="agent processes")
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0, help="measured window, s")
    parser.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="s each agent waits after connecting, so no window overlaps another's connecting",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    fds = raise_fd_limit()
    per_agent = -(-args.devices // args.agents)
    per_broker = -(-args.agents // args.brokers) * per_agent
    if per_agent + 64 > fds or per_broker + 64 > fds:
        sys.exit(
            f"--devices: {per_agent:,} connections per agent and {per_broker:,} per broker do "
            f"not fit the open-files limit ({fds:,}); use more --agents and --brokers"
        )
    print(f"# {os.cpu_count()} CPUs, RLIMIT_NOFILE {fds}, load {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mm-devices-") as tmp:
        work = Path(tmp)
        brokers = [start_broker(work) for _ in range(args.brokers)]
        counters: list[Counter] = []
        benches: list[subprocess.Popen[str]] = []
        try:
            counters = [Counter(b.port, "perf/#") for b in brokers]
            shares = [per_agent] * (args.agents - 1)
            shares.append(args.devices - sum(shares))
            for i, count in enumerate(shares):
                broker = brokers[i % len(brokers)]
                path = work / f"agent{i}.yaml"
                scenario = SCENARIO.format(
                    host=HOST,
                    port=broker.port,
                    connection="per_device",
                    interval="1s",
                    count=count,
                    fields=FIELDS,
                ).replace("name: perf,", f"name: perf{i},")
                path.write_text(scenario)
                benches.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "agent.cli", "bench", str(path), "--duration",
                         f"{args.duration}s", "--settle", f"{args.settle}s", "--json"],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        stdin=subprocess.DEVNULL,
                        text=True,
                    )
                )  # fmt: skip
            results = []
            for i, p in enumerate(benches):
                out, _ = p.communicate(timeout=args.duration + 900)
                if p.returncode != 0:
                    raise SystemExit(f"agent {i} failed ({p.returncode})")
                results.append(json.loads(out))
            time.sleep(2)  # what is in flight arrives
        finally:
            for p in benches:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
            for c in counters:
                c.stop()
            for b in brokers:
                b.stop()
        report = summary(args, results, counters)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": report, "agents": results}, indent=2))


def summary(args: argparse.Namespace, results: list[dict[str, Any]], counters: list[Counter]):
    # Everything each agent sent, from its first connection to its stop, against
    # everything the counters saw.
    sent = sum(r["sent_total"] for r in results)
    delivered = sum(c.total for c in counters)
    agents = [
        {
            "sent_per_s": r["sent_per_s"],
            "lateness_ms": r["lateness_ms"],
            "cpu_percent": r["cpu_percent"],
            "rss_mb": r["rss_mb"],
            "connect_s": r["connect_s"],
        }
        for r in results
    ]
    rss = sum(r["rss_mb"] for r in results)
    return {
        "devices": args.devices,
        "agents": len(results),
        "brokers": len(counters),
        "window_s": args.duration,
        "sent": sent,
        "delivered": delivered,
        "delivered_percent": round(100 * delivered / max(sent, 1), 3),
        "lateness_p99_ms_worst": max(r["lateness_ms"]["p99"] for r in results),
        "lateness_p50_ms_worst": max(r["lateness_ms"]["p50"] for r in results),
        # The agents' own figure (RSS over their start-up size, per device), and the
        # whole processes' RSS over all devices.
        "rss_kb_per_device": round(sum(r["rss_kb_per_device"] for r in results) / len(results), 1),
        "rss_kb_per_device_total": round(1000 * rss / args.devices, 1),
        "cpu_percent_per_agent": [r["cpu_percent"] for r in results],
        "per_agent": agents,
    }


if __name__ == "__main__":
    main()
