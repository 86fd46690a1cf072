"""Lateness with statuses, faults and a 5 % command-reply load (not part of the test run).

    uv run python -m tests.perf.behaviour_bench --devices 10000 --duration 20 --runs 2
    uv run python -m tests.perf.behaviour_bench --devices 20000 --streams   # issue 12

10,000 devices, each its own connection, one message a second, run by
``mockmock-agent bench`` against a private Mosquitto on 127.0.0.1, with:

- statuses: normal → degraded (probability per send) → normal (after 20 s); degraded
  changes a field and halves the interval;
- faults on every device: duplicate, out-of-order, missing field, wrong type,
  malformed JSON, clock skew (each 0.5-1 % of sends);
- commands: a separate process publishes commands to random devices at 5 % of the
  telemetry rate; devices answer after 50 ms and fail 5 % of them.

With ``--streams`` every device also sends a heartbeat every 60 s and an event on
each status change (two more message streams, their own topics and payloads).

Targets: issue 3, send lateness p99 <= 10 ms at 10,000 devices; issue 12, 20,000
devices with ``--streams``: p99 <= 5 ms and <= 25 KB RSS per device. Prints one JSON
line per run and a summary. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.perf.mqtt_bench import HOST, Counter, raise_fd_limit, start_broker

SCENARIO = """
templates:
  behave:
    transport:
      mqtt: {{url: "mqtt://{host}:{port}", topic: "behave/{{device_id}}", qos: 0}}
    interval: 1s
    payload:
      device: {{device_id: {{}}}}
      seq: {{counter: {{}}}}
      temp: {{uniform: {{min: 18.0, max: 26.0}}}}
      hum: {{normal: {{mean: 45.0, stddev: 5.0, decimals: 1}}}}
      state: {{choice: {{values: [ok, warn, ng], weights: [90, 8, 2]}}}}
      ts: {{timestamp: {{format: epoch_ms}}}}
    statuses:
      normal: {{}}
      degraded: {{payload: {{state: {{const: degraded}}}}, interval: 500ms}}
    transitions:
      - {{from: normal, to: degraded, probability: 0.01}}
      - {{from: degraded, to: normal, after: 20s}}
    faults:
      duplicate: {{rate: 0.01}}
      out_of_order: {{rate: 0.01}}
      missing_field: {{rate: 0.01, fields: [hum]}}
      wrong_type: {{rate: 0.01, fields: [temp]}}
      malformed_json: {{rate: 0.005}}
      clock_skew: {{offset: 30s}}
    commands:
      topic: "behave/{{device_id}}/cmd"
      reply_after: 50ms
      fail_rate: 0.05
{streams}groups:
  - {{name: behave, template: behave, count: {count}}}
"""

STREAMS = """    streams:
      heartbeat:
        topic: "behave/{{device_id}}/hb"
        interval: 60s
        payload: {{up: {{counter: {{}}}}, status: {{status: {{}}}}}}
      event:
        topic: "behave/{{device_id}}/event"
        when: status_change
        payload: {{event: {{format: "{{device_id}} {{status}}"}}, ts: {{timestamp: {{}}}}}}
"""

COMMANDER = r"""
import asyncio, json, random, sys, time
import aiomqtt

async def main(port, count, rate, seconds):
    rnd = random.Random(7)
    async with aiomqtt.Client("127.0.0.1", port, identifier="behave-commander") as c:
        end = time.monotonic() + seconds
        n = 0
        t0 = time.monotonic()
        while time.monotonic() < end and n < rate * seconds + 1:
            dev = f"behave-{rnd.randrange(count):05d}"
            await c.publish(f"behave/{dev}/cmd", json.dumps({"id": n, "command": "ping"}))
            n += 1
            ahead = t0 + n / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        print(n, flush=True)

asyncio.run(main(*[int(a) for a in sys.argv[1:5]]))
"""


def run_once(
    port: int, workdir: Path, devices: int, duration: float, streams: bool = False
) -> dict[str, Any]:
    path = workdir / "behave.yaml"
    extra = STREAMS.format() if streams else ""
    path.write_text(SCENARIO.format(host=HOST, port=port, count=devices, streams=extra))
    replies = Counter(port, "behave/+/cmd/reply")
    bench = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "bench", str(path), "--duration", f"{duration}s",
         "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # Commands start once the devices are connected and subscribed (connecting 10,000
    # takes a few seconds); they go on for the measured window.
    time.sleep(min(15.0, 2 + devices / 2000))
    rate = max(1, round(devices * 0.05))  # 5 % of 1 msg/s per device
    commander = subprocess.Popen(
        [sys.executable, "-c", COMMANDER, str(port), str(devices), str(rate), str(int(duration))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = bench.communicate(timeout=duration + 600)
        sent_cmds = int((commander.communicate(timeout=duration + 60)[0] or "0").strip() or 0)
    finally:
        for p in (bench, commander):
            if p.poll() is None:
                p.kill()
        time.sleep(1)
        replies.stop()
    if bench.returncode != 0:
        raise SystemExit(f"bench failed ({bench.returncode}): {err[-2000:]}")
    result = json.loads(out)
    group = next(g for g in result["groups"] if g["name"] == "behave")
    return {
        "devices": devices,
        "sent_per_s": result.get("sent_per_s"),
        "lateness_ms": result.get("lateness_ms"),
        "cpu_percent": result.get("cpu_percent"),
        "rss_kb_per_device": result.get("rss_kb_per_device"),
        "commands_sent": sent_cmds,
        "replies_seen": replies.total,
        "faults": group.get("faults"),
        "transitions": group.get("transitions"),
        "statuses": group.get("statuses"),
        "commands": group.get("commands"),  # received, replied_ok, replied_error
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--streams", action="store_true", help="add heartbeat and event streams")
    args = parser.parse_args()
    raise_fd_limit()
    p99s = []
    with tempfile.TemporaryDirectory(prefix="mm-behave-") as tmp:
        broker = start_broker(Path(tmp))
        try:
            for i in range(args.runs):
                r = run_once(broker.port, Path(tmp), args.devices, args.duration, args.streams)
                p99s.append(r["lateness_ms"]["p99"])
                print(f"run {i + 1}: {json.dumps(r)}", flush=True)
        finally:
            broker.stop()
    print(
        json.dumps(
            {
                "lateness_p99_ms_median": statistics.median(p99s),
                "lateness_p99_ms_best": min(p99s),
                "target_p99_ms": 10,
            }
        )
    )


if __name__ == "__main__":
    main()
