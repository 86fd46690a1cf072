"""Bytes per device of the per-device path with behaviours (not part of the test run).

    uv run python -m tests.perf.device_memory                       # 20,000 devices, --streams
    uv run python -m tests.perf.device_memory --devices 5000 --top 15

behaviour_bench's template with its two streams (statuses, faults, commands, a
heartbeat and an event stream), each device its own MQTT client, built by the
real engine and sender and run for ``--seconds`` of virtual time into in-memory
transports (tests/perf/hotpath.py): no broker, no sockets. Reported: what
tracemalloc sees allocated per device (Python objects: engine, payloads,
gmqtt clients), or with ``--rss`` the RSS growth per device. The sockets, asyncio
transports and gmqtt connection objects of live connections come on top: ``--broker``
runs the same template through the bench's own code (agent.bench.run_bench) against a
private Mosquitto for ``--seconds`` of real time, without the command load, and reports
its RSS per device (bounded: the open-files limit caps the devices).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import tracemalloc
from pathlib import Path

from tests.perf.hotpath import Rig, behaviour_template


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measure(devices: int, seconds: float, top: int, rss_only: bool) -> dict:
    template = behaviour_template()
    Rig(template, count=10, seed=7)  # imports and caches before the baseline
    gc.collect()
    rss0 = _rss()
    if rss_only:  # tracemalloc's own bookkeeping would be most of the RSS
        rig = Rig(template, count=devices, seed=7, keep=False)
        await rig.run(seconds, command_rate=devices * 0.05)
        gc.collect()
        return {"devices": devices, "rss_bytes_per_device": round((_rss() - rss0) / devices)}
    tracemalloc.start(1)
    snap0 = tracemalloc.take_snapshot()
    base, _ = tracemalloc.get_traced_memory()
    rig = Rig(template, count=devices, seed=7, keep=False)
    built, _ = tracemalloc.get_traced_memory()
    await rig.run(seconds, command_rate=devices * 0.05)
    gc.collect()
    ran, _ = tracemalloc.get_traced_memory()
    lines = []
    if top:
        diff = tracemalloc.take_snapshot().compare_to(snap0, "lineno")
        lines = [str(s) for s in diff[:top]]
    tracemalloc.stop()
    return {
        "devices": devices,
        "virtual_seconds": seconds,
        "sent": rig.runner.report.sent,
        "traced_bytes_per_device_built": round((built - base) / devices),
        "traced_bytes_per_device_after_run": round((ran - base) / devices),
        "top": lines,
    }


async def with_broker(devices: int, seconds: float) -> dict:
    """The same template through ``mockmock-agent bench``'s own code against a private
    Mosquitto (no command load): RSS per device with live connections."""
    from agent.bench import run_bench
    from agent.template import load_scenario
    from tests.perf import behaviour_bench
    from tests.perf.mqtt_bench import HOST, raise_fd_limit, start_broker

    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="mm-mem-") as tmp:
        broker = start_broker(Path(tmp))
        try:
            path = Path(tmp) / "behave.yaml"
            streams = behaviour_bench.STREAMS.format()
            path.write_text(
                behaviour_bench.SCENARIO.format(
                    host=HOST, port=broker.port, count=devices, streams=streams
                )
            )
            r = await run_bench(load_scenario(path), seconds, connect_timeout_s=90)
        finally:
            broker.stop()
    return {
        "devices": devices,
        "rss_kb_per_device": r["rss_kb_per_device"],
        "sent": r["sent"],
        "lateness_ms": r["lateness_ms"],
        "connect_s": r["connect_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="virtual time to run")
    parser.add_argument("--top", type=int, default=0, help="print the N biggest allocation sites")
    parser.add_argument("--rss", action="store_true", help="RSS growth only, no tracemalloc")
    parser.add_argument("--broker", action="store_true", help="live connections (bench code)")
    args = parser.parse_args()
    if args.broker:
        print(json.dumps(asyncio.run(with_broker(args.devices, args.seconds))))
        return
    r = asyncio.run(measure(args.devices, args.seconds, args.top, args.rss))
    for line in r.pop("top", ()):
        print(line)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
