"""Benchmark: one failover of a big fleet, in one process, as the scheduler runs it.

N agents, one group placed on them by the real service, V of them offline past
the grace period: times ``placement.failover`` and the ``desired.next_states`` of
the agents it touched (the scheduler's failover job is the two), with the count of
queries of each, on a private PostgreSQL (or SQLite).

    uv run python -m tests.perf.failover_bench --agents 1000 --mocks 100000 --vanish 100
    uv run python -m tests.perf.failover_bench --sqlite --profile
"""

from __future__ import annotations

import cProfile
import datetime as dt
import json
import pstats
import time

from appliance import models
from appliance.fleet import desired, placement
from appliance.groups import service as groups
from tests.perf.fleet_setup import arguments, database, fleet, measure

GRACE_S = 5


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--vanish", type=int, default=100)
    parser.add_argument("--capacity", type=int, default=0, help="per agent (2x its share)")
    args = parser.parse_args()
    if not 0 < args.agents <= 10_000 or not 0 <= args.vanish < args.agents:
        parser.error("--agents: 1..10000, --vanish: 0..agents-1")
    capacity = args.capacity or max(2 * args.mocks // args.agents, 10)
    with database(args.sqlite) as kind:
        t0 = time.perf_counter()
        _, group, ids = fleet(args.agents, args.mocks, capacity)
        print(
            f"# {args.agents} agents, {args.mocks} mocks placed in "
            f"{time.perf_counter() - t0:.1f}s ({kind})"
        )
        gone = ids[: args.vanish]
        models.Agent.update(
            online=False, offline_since=models.utcnow() - dt.timedelta(seconds=GRACE_S + 1)
        ).where(models.Agent.agent_id.in_(gone)).execute()
        prof = cProfile.Profile() if args.profile else None
        if prof:
            prof.enable()
        renew, _ = measure(groups.renew_leases, 60)  # the scheduler's other placement job
        failover, touched = measure(placement.failover, GRACE_S, 60)
        publish, _ = measure(desired.next_states, touched)
        if prof:
            prof.disable()
        a = models.Assignment
        left = a.select().join(models.Agent).where(models.Agent.agent_id.in_(gone)).count()
        covered = sum(r.index_end - r.index_start for r in a.select().where(a.group == group.id))
        ranges = a.select().where(a.group == group.id).count()
        group = models.Group.get_by_id(group.id)
        half = args.mocks // 2
        shrink, _ = measure(placement.rescale, group, args.mocks, half, time.time() + 60)
        print(
            json.dumps(
                {
                    "database": kind,
                    "agents": args.agents,
                    "mocks": args.mocks,
                    "vanished": args.vanish,
                    "renew_leases": renew,
                    "failover": failover,
                    "next_states": publish,
                    "rescale_to_half": shrink,
                    "touched": len(touched),
                    "ranges": ranges,
                    "left_on_vanished": left,
                    "covered_after_failover": covered,
                }
            )
        )
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
