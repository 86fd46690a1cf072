"""Benchmark: agent reports through the bus thread's ``_handle_all``, in one process.

N agents running one group placed by the real service; every agent reports (one
group each, counters growing, as every 10 s) in batches of ``--size`` messages, the
most the bus takes at once. Prints queries and ms per batch and reports/s, on a
private PostgreSQL (or SQLite).

    uv run python -m tests.perf.reports_bench --agents 1000 --rounds 3
"""

from __future__ import annotations

import cProfile
import json
import pstats
import time

from playhouse.test_utils import count_queries

from agent import wire
from appliance import models
from appliance.bus import control as bus
from tests.perf.fleet_setup import arguments, database, fleet


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="reports per agent")
    parser.add_argument("--size", type=int, default=bus.BATCH, help="messages per batch")
    args = parser.parse_args()
    if not 0 < args.agents <= 10_000 or not 0 < args.rounds <= 100:
        parser.error("--agents: 1..10000, --rounds: 1..100")
    with database(args.sqlite) as kind:
        _, group, ids = fleet(args.agents, args.mocks, 2 * args.mocks // args.agents)
        per = args.mocks // args.agents
        work = []
        for n in range(args.rounds + 1):  # round 0: each process's first report, not timed
            for agent_id in ids:
                report = wire.GroupReport(
                    group_id=group.id,
                    run_id=group.run_id,
                    running=per,
                    sent=1000 * n,
                    lateness=wire.Histogram(buckets={10: n, 12: 2}, count=n + 2, max_us=900),
                )
                r = wire.Reported(revision=1, groups=[report], incarnation="p", started_at=1.0)
                work.append((wire.topic(agent_id, wire.REPORTED), wire.encode(r)))
        t0 = time.perf_counter()
        with count_queries() as first:
            for i in range(0, len(ids), args.size):
                bus._handle_all(work[i : i + args.size])
        first_s = time.perf_counter() - t0
        first_batches = -(-len(ids) // args.size)
        work = work[len(ids) :]
        batches = [work[i : i + args.size] for i in range(0, len(work), args.size)]
        prof = cProfile.Profile() if args.profile else None
        if prof:
            prof.enable()
        t0 = time.perf_counter()
        with count_queries() as counted:
            for batch in batches:
                bus._handle_all(batch)
        secs = time.perf_counter() - t0
        if prof:
            prof.disable()
        gs = models.GroupStats
        print(
            json.dumps(
                {
                    "database": kind,
                    "agents": args.agents,
                    "first_reports": {  # every process starts: its predecessors stop
                        "queries_per_batch": round(first.count / first_batches, 1),
                        "ms_per_batch": round(1000 * first_s / first_batches, 1),
                    },
                    "reports": len(work),
                    "batches": len(batches),
                    "queries_per_batch": round(counted.count / len(batches), 1),
                    "ms_per_batch": round(1000 * secs / len(batches), 1),
                    "reports_per_s": round(len(work) / secs),
                    "stats_rows": gs.select().count(),
                    "sent": gs.select().where(gs.sent == 1000 * args.rounds).count(),
                }
            )
        )
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
