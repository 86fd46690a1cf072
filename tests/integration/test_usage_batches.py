"""Batched usage ingest (what the bus does with the records that queued up) follows the
rules of ingesting them one by one, in a fixed number of statements per batch."""

from __future__ import annotations

import json

from playhouse.test_utils import count_queries

from agent import wire
from appliance import models
from appliance.fleet import service as fleet
from appliance.usage import service as usage


def agents_and_group(org: models.Org, n: int) -> tuple[list[str], models.Group]:
    ids = [
        fleet.local_agent(org.id, capacity=100, mqtt_url="mqtt://127.0.0.1:1").agent_id
        for _ in range(n)
    ]
    tpl = models.Template.create(org=org, name="t", body=json.dumps({}))
    return ids, models.Group.create(org=org, name="g", template=tpl, count=10, run_id=1)


def rec(seq: int, group_id: int, devices: int = 10) -> wire.UsageRecord:
    line = wire.UsageLine(
        group_id=group_id, run_id=1, devices=devices, start_ms=seq * 1000, end_ms=seq * 1000 + 1000
    )
    return wire.UsageRecord(seq=seq, lines=[line])


def test_a_batch_acks_and_bills_like_one_record_at_a_time(org: models.Org) -> None:
    (a, b, c), g = agents_and_group(org, 3)
    other = models.Org.create(name="other")
    tpl = models.Template.create(org=other, name="t", body="{}")
    foreign = models.Group.create(org=other, name="g", template=tpl, count=1, run_id=1)
    assert usage.ingest_many([(a, rec(1, g.id)), (b, rec(1, g.id))]) == {a: 1, b: 1}
    batch = [
        (a, rec(3, g.id)),  # a gap: 2 is missing, so no ack of 3
        (a, rec(1, g.id)),  # a replay from before the ack
        (b, rec(2, g.id)),
        (b, rec(2, g.id)),  # the same record twice in one batch
        (b, rec(3, g.id)),
        (c, rec(1, foreign.id)),  # another org's group: acked, never billed
        ("nobody", rec(1, g.id)),  # an unknown agent: nothing
    ]
    assert usage.ingest_many(batch) == {a: 1, b: 3, c: 1}
    assert usage.ingest_many([(a, rec(2, g.id))]) == {a: 3}  # the gap fills
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
        batch = [(agent, rec(seq, g.id)) for seq in seqs for agent in agents]
        with count_queries() as counted:
            acked = usage.ingest_many(batch)
        counts.append(counted.count)
        assert acked == {agent: seqs[-1] for agent in agents}
    assert counts[0] == counts[1]
    assert models.Usage.select().count() == 110
