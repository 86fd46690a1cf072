"""Instructions per message on the shared-connection send path (not part of the test run).

    uv run python -m tests.perf.hotpath_callgrind               # both cases under callgrind
    uv run python -m tests.perf.hotpath_callgrind --case shared --messages 20000
    uv run python -m tests.perf.hotpath_callgrind --inner --messages 20000   # no valgrind

Wall-clock figures on a shared machine are noise; instruction counts are not.
Each case runs twice under ``valgrind --tool=callgrind`` (the same set-up and
warm-up, then ``--messages`` and a tenth of them through the real engine and
MQTT sender into an in-memory transport, tests/perf/hotpath.py) and the
difference of the two totals, divided by the difference in messages, is the
cost of one message with the set-up taken out. Every run is bounded in time.

Cases: ``shared`` is mqtt_bench's shared case (1,000 devices every 10 ms, 6
fields, QoS 0, one connection); ``behaviour`` is behaviour_bench's template
with --streams (statuses, faults, commands, two streams) on a shared connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.perf.hotpath import Rig, behaviour_template, shared_template

WARMUP = 2_000
TIMEOUT_S = 300.0


def template(case: str) -> dict:
    if case == "shared":
        return shared_template()
    tpl = behaviour_template()
    tpl["transport"]["mqtt"]["connection"] = "shared"
    tpl["interval"] = "10ms"
    tpl["statuses"]["degraded"]["interval"] = "5ms"
    return tpl


async def inner(case: str, messages: int) -> dict:
    rig = Rig(template(case), count=1000, seed=7, keep=False)
    await rig.run(3600, messages=WARMUP)
    before = rig.runner.report.sent
    t = time.process_time()
    await rig.run(3600, messages=messages, command_rate=50 if case == "behaviour" else 0)
    cpu = time.process_time() - t
    sent = rig.runner.report.sent - before
    return {
        "case": case,
        "messages": sent,
        "bytes": sum(s.bytes for s in rig.sinks),
        "writes": sum(s.writes for s in rig.sinks),
        "cpu_us_per_message": round(cpu * 1e6 / max(sent, 1), 2),
    }


def callgrind(case: str, messages: int) -> tuple[int, dict]:
    with tempfile.TemporaryDirectory(prefix="mm-cg-") as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, "-m", "tests.perf.hotpath_callgrind", "--inner",
             "--case", case, "--messages", str(messages)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"callgrind failed ({proc.returncode}): {proc.stderr[-2000:]}")
    m = re.search(r"Collected : (\d+)", proc.stderr)
    if m is None:
        raise SystemExit(f"no instruction count in: {proc.stderr[-2000:]}")
    return int(m.group(1)), json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=["shared", "behaviour"])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--inner", action="store_true", help="one run, no valgrind")
    args = parser.parse_args()
    cases = args.case or ["shared", "behaviour"]
    if args.inner:
        for case in cases:
            print(json.dumps(asyncio.run(inner(case, args.messages))), flush=True)
        return
    for case in cases:
        small = max(args.messages // 10, 1)
        ir_big, big = callgrind(case, args.messages)
        ir_small, little = callgrind(case, small)
        per = (ir_big - ir_small) / max(big["messages"] - little["messages"], 1)
        print(
            json.dumps(
                {
                    "case": case,
                    "instructions_per_message": round(per),
                    "messages": big["messages"],
                    "instructions_total": ir_big,
                    "bytes_per_message": round(big["bytes"] / max(big["messages"], 1), 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
