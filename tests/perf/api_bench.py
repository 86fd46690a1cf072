"""Benchmark: the documents of GET /groups, /groups/{name} and /agents for a big fleet.

N agents running one group placed by the real service, each with a report (lateness
histogram, statuses, faults) and a usage record stored: times the service calls
behind the three routes and the JSON encoding of their answers, with the count of
queries, on a private PostgreSQL (or SQLite).

    uv run python -m tests.perf.api_bench --agents 1000
    uv run python -m tests.perf.api_bench --sqlite --profile
"""

from __future__ import annotations

import cProfile
import json
import pstats
import statistics

import msgspec

from agent import wire
from appliance import models
from appliance.fleet import history
from appliance.fleet import service as fleet
from appliance.groups import service as groups
from appliance.usage import service as usage
from tests.perf.fleet_setup import arguments, database, measure
from tests.perf.fleet_setup import fleet as make_fleet


def reports(group: models.Group, ids: list[str], per: int) -> None:
    batch = []
    for i, agent_id in enumerate(ids):
        report = wire.GroupReport(
            group_id=group.id,
            run_id=group.run_id,
            running=per,
            sent=1000 + i,
            errors=i % 3,
            lateness=wire.Histogram(
                buckets={b: 1 + (b * i) % 7 for b in range(20, 60)}, count=200, max_us=90_000
            ),
            statuses={"ok": per - 1, "degraded": 1},
            faults={"drop": i % 5},
            commands=3,
            last_error="timeout" if i % 100 == 0 else "",
        )
        batch.append((agent_id, wire.Reported(revision=1, groups=[report], incarnation="p")))
    for i in range(0, len(batch), 100):
        fleet.on_reported_many(batch[i : i + 100])
    now = history.now_ms()
    lines = []
    a = models.Assignment
    for row in a.select(a, models.Agent).join(models.Agent).where(a.group == group.id):
        line = wire.UsageLine(
            group_id=group.id,
            run_id=group.run_id,
            devices=row.index_end - row.index_start,
            start_ms=now - 1000,
            end_ms=now,
            index_start=row.index_start,
        )
        lines.append((row.agent.agent_id, wire.UsageRecord(seq=1, lines=[line])))
    for i in range(0, len(lines), 100):
        usage.ingest_many(lines[i : i + 100])


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not 0 < args.agents <= 10_000 or not 0 < args.repeat <= 100:
        parser.error("--agents: 1..10000, --repeat: 1..100")
    with database(args.sqlite) as kind:
        org, group, ids = make_fleet(args.agents, args.mocks, 2 * args.mocks // args.agents)
        reports(group, ids, args.mocks // args.agents)
        calls = {
            "GET /groups": lambda: msgspec.json.encode(groups.list_groups(org.id)),
            "GET /groups/bench": lambda: msgspec.json.encode(
                groups.group_doc(groups.get_group(org.id, "bench"))
            ),
            "GET /agents": lambda: msgspec.json.encode(fleet.list_agents(org.id)),
        }
        prof = cProfile.Profile() if args.profile else None
        out: dict[str, object] = {"database": kind, "agents": args.agents}
        for name, call in calls.items():
            runs = []
            for _ in range(args.repeat):
                if prof:
                    prof.enable()
                figures, body = measure(call)
                if prof:
                    prof.disable()
                runs.append(figures)
            out[name] = {
                "queries": runs[0]["queries"],
                "ms_median": round(statistics.median(r["ms"] for r in runs), 1),
                "bytes": len(body),
            }
        print(json.dumps(out))
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
