"""Batched usage ingest (what the bus does with the records that queued up) follows the
rules of ingesting them one by one, in a fixed number of statements per batch."""

from __future__ import annotations

import json

from playhouse.test_utils import count_queries

from agent import wire
from appliance import models
from appliance.fleet import history
from appliance.fleet import service as fleet
from appliance.usage import service as usage

NOW_MS = 1_000_000
START: dict[str, int] = {}  # each agent's range of the group starts here


def agents_and_group(org: models.Org, n: int) -> tuple[list[str], models.Group]:
    """``n`` agents, each assigned ten devices of one running group since t=0."""
    ids = [
        fleet.local_agent(org.id, capacity=100, mqtt_url="mqtt://127.0.0.1:1").agent_id
        for _ in range(n)
    ]
    tpl = models.Template.create(org=org, name="t", body=json.dumps({}))
    group = models.Group.create(org=org, name="g", template=tpl, count=10 * n, run_id=1)
    for i, agent_id in enumerate(ids):
        agent = models.Agent.get(models.Agent.agent_id == agent_id)
        row = models.Assignment.create(
            group=group,
            agent=agent,
            run_id=1,
            index_start=10 * i,
            index_end=10 * i + 10,
            lease_until=0,
        )
        history.opened(row, at_ms=0)
        START[agent_id] = 10 * i
    return ids, group


def rec(seq: int, group_id: int, agent_id: str = "", devices: int = 10) -> wire.UsageRecord:
    line = wire.UsageLine(
        group_id=group_id,
        run_id=1,
        devices=devices,
        start_ms=seq * 1000,
        end_ms=seq * 1000 + 1000,
        index_start=START.get(agent_id, 0),
    )
    return wire.UsageRecord(seq=seq, lines=[line])


def acked_seqs(acks: dict[str, wire.UsageAck]) -> dict[str, int]:
    return {agent_id: ack.seq for agent_id, ack in acks.items()}


def test_a_batch_acks_and_bills_like_one_record_at_a_time(org: models.Org) -> None:
    (a, b, c), g = agents_and_group(org, 3)
    other = models.Org.create(name="other")
    tpl = models.Template.create(org=other, name="t", body="{}")
    foreign = models.Group.create(org=other, name="g", template=tpl, count=1, run_id=1)
    first = usage.ingest_many([(a, rec(1, g.id, a)), (b, rec(1, g.id, b))], now_ms=NOW_MS)
    assert acked_seqs(first) == {a: 1, b: 1}
    batch = [
        (a, rec(3, g.id, a)),  # a gap: 2 is missing, so no ack of 3
        (a, rec(1, g.id, a)),  # a replay from before the ack
        (b, rec(2, g.id, b)),
        (b, rec(2, g.id, b)),  # the same record twice in one batch
        (b, rec(3, g.id, b)),
        (c, rec(1, foreign.id, c)),  # another org's group: acked, never billed
        ("nobody", rec(1, g.id)),  # an unknown agent: nothing
    ]
    assert acked_seqs(usage.ingest_many(batch, now_ms=NOW_MS)) == {a: 1, b: 3, c: 1}
    # the gap fills
    assert acked_seqs(usage.ingest_many([(a, rec(2, g.id, a))], now_ms=NOW_MS)) == {a: 3}
    assert models.UsageRecord.select().count() == 7
    assert usage.group_device_ms(g.id) == 6 * 10 * 1000
    assert usage.group_device_ms(foreign.id) == 0
    assert {x.agent_id: x.acked_seq for x in models.Agent.select()} == {a: 3, b: 3, c: 1}


def test_a_batch_costs_the_same_statements_for_ten_records_as_for_a_hundred(
    org: models.Org,
) -> None:
    agents, g = agents_and_group(org, 10)
    counts = []
    for seqs in (range(1, 2), range(2, 12)):  # 10 records, then 100, one per agent and seq
        batch = [(agent, rec(seq, g.id, agent)) for seq in seqs for agent in agents]
        with count_queries() as counted:
            acked = usage.ingest_many(batch, now_ms=NOW_MS)
        counts.append(counted.count)
        assert {agent: ack.seq for agent, ack in acked.items()} == {
            agent: seqs[-1] for agent in agents
        }
    assert counts[0] == counts[1]
    assert models.Usage.select().count() == 110
