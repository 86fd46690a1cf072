"""Usage ingest is idempotent and acks the highest contiguous seq (both databases)."""

from __future__ import annotations

import pytest

from agent import wire
from appliance import db, models
from appliance.contract.usage import Usage
from appliance.fleet import history
from appliance.migrations import MIGRATIONS
from appliance.usage import service as usage
from tests.unit.appliance import factories


@pytest.fixture
def agent_and_group(org: models.Org) -> tuple[str, models.Group]:
    agent_id = factories.online_agent(org, capacity=100)
    factories.group(org, "g", 10)
    return agent_id, factories.start(org, "g")


def assigned_at(group: models.Group) -> int:
    s = history.AssignmentSpan
    since = s.select(s.since_ms).where(s.group == group.id).order_by(s.since_ms).first()
    return history.now_ms() if since is None else since.since_ms


def rec(seq: int, group: models.Group, devices: int = 10, ms: int = 1000) -> wire.UsageRecord:
    start = assigned_at(group) + seq * ms
    return wire.UsageRecord(
        seq=seq,
        lines=[
            wire.UsageLine(
                group_id=group.id,
                run_id=group.run_id,
                index_start=0,
                devices=devices,
                start_ms=start,
                end_ms=start + ms,
            )
        ],
    )


def ingest(agent_id: str, record: wire.UsageRecord) -> int | None:
    # The appliance reads its clock a minute on: the records' seconds are all past.
    ack = usage.ingest(agent_id, record, now_ms=history.now_ms() + 60_000)
    return None if ack is None else ack.seq


def test_replays_count_once(agent_and_group) -> None:
    agent_id, group = agent_and_group
    assert ingest(agent_id, rec(1, group)) == 1
    assert ingest(agent_id, rec(2, group)) == 2
    # A replay after a lost ack, and one from before the last ack.
    assert ingest(agent_id, rec(2, group)) == 2
    assert ingest(agent_id, rec(1, group)) == 2
    assert usage.group_device_ms(group.id) == 2 * 10 * 1000
    assert usage.summary(group.org_id) == Usage(device_seconds=20.0, groups={"g": 20.0})


def test_out_of_order_acks_only_contiguous(agent_and_group) -> None:
    agent_id, group = agent_and_group
    assert ingest(agent_id, rec(1, group)) == 1
    assert ingest(agent_id, rec(3, group)) == 1  # 2 is missing: do not ack 3
    assert ingest(agent_id, rec(3, group)) == 1  # and a replay of 3 adds nothing
    assert ingest(agent_id, rec(2, group)) == 3  # the gap fills: ack jumps to 3
    assert usage.group_device_ms(group.id) == 3 * 10 * 1000
    assert models.UsageRecord.select().count() == 3


def test_unknown_agent_and_foreign_group_are_not_billed(agent_and_group) -> None:
    agent_id, group = agent_and_group
    assert ingest("nobody", rec(1, group)) is None
    other = models.Org.create(name="other")
    tpl = models.Template.create(org=other, name="t", body="{}")
    foreign = models.Group.create(org=other, name="g", template=tpl, count=1, run_id=1)
    assert ingest(agent_id, rec(1, foreign)) == 1  # acked, so the agent moves on ...
    assert usage.group_device_ms(foreign.id) == 0  # ... but nothing is billed to the victim


def test_migrations_are_idempotent(appliance_db: str) -> None:
    before = db.current_version()
    assert db.migrate() == before == len(MIGRATIONS)
