"""Benchmark: the bus ingest in one process, as the bus thread runs it for a big fleet.

N agents with a range each of one running group, on a private PostgreSQL (or SQLite):
batches of what queued up on the bus (usage records of distinct agents, with one agent
report in ten messages, as ``tests/perf/fleet_agents.py`` sends them) go through
``appliance.bus.control._handle_all``, the function the bus thread calls. Prints records/s,
ms per message and, with ``--profile``, where the time goes.

    uv run python -m tests.perf.ingest_bench --agents 1000 --batches 50
    uv run python -m tests.perf.ingest_bench --agents 1000 --batches 20 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time

from agent import wire
from appliance import models
from appliance.bus import control as bus
from appliance.fleet import history
from appliance.fleet import service as fleet
from tests.perf.fleet_setup import database

DEVICES = 100  # per agent


def setup(n: int) -> tuple[list[str], models.Group]:
    org = models.Org.create(name="bench")
    ids = [
        fleet.local_agent(org.id, capacity=2 * DEVICES, mqtt_url="mqtt://127.0.0.1:1").agent_id
        for _ in range(n)
    ]
    tpl = models.Template.create(org=org, name="t", body=json.dumps({}))
    group = models.Group.create(
        org=org, name="g", template=tpl, count=DEVICES * n, run_id=1, state="running"
    )
    for i, agent_id in enumerate(ids):
        agent = models.Agent.get(models.Agent.agent_id == agent_id)
        row = models.Assignment.create(
            group=group,
            agent=agent,
            run_id=1,
            index_start=DEVICES * i,
            index_end=DEVICES * (i + 1),
            lease_until=0,
        )
        history.opened(row, at_ms=0)
    return ids, group


def batches(ids: list[str], group: models.Group, count: int, size: int) -> list[list]:
    """``count`` batches of ``size`` messages; each agent's seq and window move on."""
    seq = dict.fromkeys(ids, 0)
    now_ms = int(time.time() * 1000) - 3_600_000  # inside the assignment, not in the future
    out, k = [], 0
    for _ in range(count):
        batch = []
        for j in range(size):
            agent_id = ids[k % len(ids)]
            k += 1
            if j % 10 == 9:
                rep = wire.Reported(
                    revision=1,
                    groups=[wire.GroupReport(group_id=group.id, run_id=1, running=DEVICES)],
                    at=time.time(),
                )
                batch.append((wire.topic(agent_id, wire.REPORTED), wire.encode(rep)))
                continue
            seq[agent_id] += 1
            start = now_ms + 1000 * seq[agent_id]
            line = wire.UsageLine(
                group_id=group.id,
                run_id=1,
                devices=DEVICES,
                start_ms=start,
                end_ms=start + 1000,
            )
            rec = wire.UsageRecord(seq=seq[agent_id], lines=[line])
            batch.append((wire.topic(agent_id, wire.USAGE), wire.encode(rec)))
        out.append(batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--size", type=int, default=bus.BATCH, help="messages per batch")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if not 0 < args.agents <= 100_000 or not 0 < args.batches <= 10_000:
        parser.error("--agents: 1..100000, --batches: 1..10000")
    with database(args.sqlite) as kind:
        t0 = time.perf_counter()
        ids, group = setup(args.agents)
        print(f"# {args.agents} agents set up in {time.perf_counter() - t0:.1f}s ({kind})")
        work = batches(ids, group, args.batches, args.size)
        prof = cProfile.Profile() if args.profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        acks = 0
        for batch in work:
            acks += len(bus._handle_all(batch))
        if prof:
            prof.disable()
        secs = time.perf_counter() - t0
        messages = args.batches * args.size
        records = models.UsageRecord.select().count()
        print(
            json.dumps(
                {
                    "database": "sqlite" if args.sqlite else "postgresql",
                    "agents": args.agents,
                    "messages": messages,
                    "usage_stored": records,
                    "acks": acks,
                    "seconds": round(secs, 2),
                    "messages_per_s": round(messages / secs),
                    "ms_per_message": round(1000 * secs / messages, 3),
                }
            )
        )
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
