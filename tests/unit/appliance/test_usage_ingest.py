"""Usage ingest is idempotent and acks the highest contiguous seq (both databases)."""

from __future__ import annotations

import json

import pytest

from agent import wire
from appliance import db, models
from appliance.fleet import service as fleet
from appliance.usage import service as usage


@pytest.fixture
def agent_and_group(org: models.Org) -> tuple[str, models.Group]:
    agent_id = fleet.local_agent(org.id, capacity=100, mqtt_url="mqtt://127.0.0.1:1").agent_id
    tpl = models.Template.create(org=org, name="t", body=json.dumps({}))
    group = models.Group.create(org=org, name="g", template=tpl, count=10, run_id=1)
    return agent_id, group


def rec(seq: int, group: models.Group, devices: int = 10, ms: int = 1000) -> wire.UsageRecord:
    start = seq * ms
    return wire.UsageRecord(
        seq=seq,
        lines=[
            wire.UsageLine(
                group_id=group.id, run_id=1, devices=devices, start_ms=start, end_ms=start + ms
            )
        ],
    )


def test_replays_count_once(agent_and_group) -> None:
    agent_id, group = agent_and_group
    assert usage.ingest(agent_id, rec(1, group)) == 1
    assert usage.ingest(agent_id, rec(2, group)) == 2
    # A replay after a lost ack, and one from before the last ack.
    assert usage.ingest(agent_id, rec(2, group)) == 2
    assert usage.ingest(agent_id, rec(1, group)) == 2
    assert usage.group_device_ms(group.id) == 2 * 10 * 1000
    assert usage.summary(group.org_id) == {"device_seconds": 20.0, "groups": {"g": 20.0}}


def test_out_of_order_acks_only_contiguous(agent_and_group) -> None:
    agent_id, group = agent_and_group
    assert usage.ingest(agent_id, rec(1, group)) == 1
    assert usage.ingest(agent_id, rec(3, group)) == 1  # 2 is missing: do not ack 3
    assert usage.ingest(agent_id, rec(3, group)) == 1  # and a replay of 3 adds nothing
    assert usage.ingest(agent_id, rec(2, group)) == 3  # the gap fills: ack jumps to 3
    assert usage.group_device_ms(group.id) == 3 * 10 * 1000
    assert models.UsageRecord.select().count() == 3


def test_unknown_agent_and_foreign_group_are_not_billed(agent_and_group) -> None:
    agent_id, group = agent_and_group
    assert usage.ingest("nobody", rec(1, group)) is None
    other = models.Org.create(name="other")
    tpl = models.Template.create(org=other, name="t", body="{}")
    foreign = models.Group.create(org=other, name="g", template=tpl, count=1, run_id=1)
    assert usage.ingest(agent_id, rec(1, foreign)) == 1  # acked, so the agent moves on ...
    assert usage.group_device_ms(foreign.id) == 0  # ... but nothing is billed to the victim


def test_migrations_are_idempotent(appliance_db: str) -> None:
    before = db.current_version()
    assert db.migrate() == before == len(db.MIGRATIONS)
