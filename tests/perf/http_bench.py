"""HTTP data-plane benchmark against a minimal local keep-alive server (not part of the
test run).

    uv run python -m tests.perf.http_bench --runs 3 --devices 100 --interval 10ms

The target is a tiny asyncio server in its own process (204 for every request, so it
is as cheap as a server gets in Python); it counts the requests it answered. The
figure is what one agent process pushes through ``connections`` keep-alive
connections, and whether the server saw every request the agent counted as sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.fixtures.ports import HOST, free_port, wait_port

SCENARIO = """
templates:
  perf:
    transport:
      http: {{url: "http://{host}:{port}/ingest/{{device_id}}", connections: {connections}}}
    interval: {interval}
    payload:
      device: {{device_id: {{}}}}
      seq: {{counter: {{}}}}
      temp: {{uniform: {{min: 18.0, max: 26.0}}}}
      hum: {{normal: {{mean: 45.0, stddev: 5.0, decimals: 1}}}}
      state: {{choice: {{values: [ok, warn, ng], weights: [90, 8, 2]}}}}
      ts: {{timestamp: {{format: epoch_ms}}}}
groups:
  - {{name: perf, template: perf, count: {count}}}
"""


async def serve(port: int, out: Path) -> None:
    count = 0
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                count += 1
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, HOST, port)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()
    out.write_text(str(count))


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    counted = workdir / f"count-{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.perf.http_bench", "--serve", str(port), str(counted)]
    )
    try:
        wait_port(HOST, port, 10, proc=server, what="http server")
        path = workdir / "http.yaml"
        path.write_text(
            SCENARIO.format(
                host=HOST,
                port=port,
                connections=args.connections,
                interval=args.interval,
                count=args.devices,
            )
        )
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli", "bench", str(path), "--duration",
             f"{args.duration}s", "--json"],
            capture_output=True,
            text=True,
            timeout=args.duration + 120,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"bench failed ({proc.returncode}): {proc.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(proc.stdout)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    result["server_answered"] = int(counted.read_text()) if counted.exists() else -1
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "COUNT_FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--interval", default="10ms")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(int(args.serve[0]), Path(args.serve[1])))
        return
    print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="mm-perf-http-") as tmp:
        for i in range(args.runs):
            load = os.getloadavg()[0]
            r = run(args, Path(tmp))
            results.append(r)
            lat = r["lateness_ms"]
            print(
                f"run {i + 1}: sent {r['sent_per_s']:,.0f}/s, errors {r['errors']}, "
                f"server answered {r['server_answered']:,} of {r['sent_total']:,} sent, "
                f"lateness p50 {lat['p50']} p99 {lat['p99']} ms, CPU {r['cpu_percent']}%, "
                f"load {load:.2f}",
                flush=True,
            )
            time.sleep(1)
    rates = [r["sent_per_s"] for r in results]
    print(
        f"\nHTTP, {args.devices} devices every {args.interval}, {args.connections} "
        f"keep-alive connections: best {max(rates):,.0f} req/s, "
        f"median {statistics.median(rates):,.0f} req/s"
    )


if __name__ == "__main__":
    main()
