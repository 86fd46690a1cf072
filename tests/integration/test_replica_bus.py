"""Two replicas on one broker and one database: the bus and placement under concurrency.

- Usage records and reports reach the replicas through one MQTT 5 shared
  subscription: each is handled by exactly one of them. Presence goes to every
  replica, in order, retained replay included: an agent's offline will left while
  no replica ran is read, and its state is right after a flap.
- Placing from two threads at once (two replicas' API calls) never hands out the
  same range or the same free capacity twice.
- Desired states published by both replicas, racing, end up with the broker
  retaining the newest one for every agent.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import aiomqtt
import pytest

from agent import wire
from appliance import cluster, models
from appliance.bus.control import Bus
from appliance.db import database
from appliance.entitlements.models import EntitlementInterval
from appliance.errors import Conflict
from appliance.fleet import desired
from appliance.groups import service as groups
from appliance.targets.policy import Rules
from tests.unit.appliance.factories import group, online_agent

pytestmark = pytest.mark.mqtt

V5 = aiomqtt.ProtocolVersion.V5


class CountingBus(Bus):
    """A replica's bus that also counts the agent messages it handled."""

    def __init__(self, url: str, share: str) -> None:
        super().__init__(url)
        self.share = share
        self.handled: Counter[str] = Counter()

    async def _dispatch_many(self, batch: list[tuple[str, object]]) -> None:
        for topic, _ in batch:
            split = wire.agent_of(topic)
            if split is not None:
                self.handled[split[1]] += 1
        await super()._dispatch_many(batch)


async def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


@pytest.fixture
async def replicas(appliance_db: str, mosquitto) -> AsyncIterator[list[CountingBus]]:
    share = cluster.share_group()
    assert share == cluster.share_group() and share.startswith("mm-")  # made once, then read
    made = [CountingBus(mosquitto.url, share) for _ in range(2)]
    yield made
    for bus in made:
        await bus.stop()


def agent_client(mosquitto, agent_id: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        mosquitto.host, mosquitto.port, identifier=f"t-{uuid.uuid4().hex[:8]}", protocol=V5
    )


async def test_each_usage_record_and_report_is_handled_by_one_replica(
    org: models.Org, mosquitto, replicas: list[CountingBus]
) -> None:
    agent_id = online_agent(org)
    g = group(org, "g", 10)
    # The agent died while no replica ran: its offline will is retained.
    async with agent_client(mosquitto, agent_id) as c:
        offline = wire.encode(wire.Presence(status="offline"))
        await c.publish(wire.topic(agent_id, wire.PRESENCE), offline, qos=1, retain=True)
    for bus in replicas:
        bus.start()
    for bus in replicas:
        await asyncio.wait_for(bus.connected.wait(), 10)
    await until(lambda: not models.Agent.get(models.Agent.agent_id == agent_id).online)

    n = 60
    async with agent_client(mosquitto, agent_id) as c:
        online = wire.encode(wire.Presence(status="online", capacity=100))
        await c.publish(wire.topic(agent_id, wire.PRESENCE), online, qos=1, retain=True)
        for seq in range(1, n + 1):
            line = wire.UsageLine(
                group_id=g.id, run_id=0, devices=1, start_ms=seq * 1000, end_ms=seq * 1000 + 1000
            )
            rec = wire.UsageRecord(seq=seq, lines=[line])
            await c.publish(wire.topic(agent_id, wire.USAGE), wire.encode(rec), qos=1)
        for _ in range(n):
            rep = wire.Reported(revision=0)
            await c.publish(wire.topic(agent_id, wire.REPORTED), wire.encode(rep), qos=1)

        # A flap: offline and online again at once; every replica applies both in order.
        await c.publish(wire.topic(agent_id, wire.PRESENCE), offline, qos=1, retain=True)
        await c.publish(wire.topic(agent_id, wire.PRESENCE), online, qos=1, retain=True)

    def live() -> Counter[str]:
        return sum((bus.handled for bus in replicas), Counter())

    await until(lambda: live()["usage"] >= n and live()["reported"] >= n)
    await asyncio.sleep(0.5)  # anything handled twice would show up by now
    assert live()["usage"] == n and live()["reported"] == n
    assert all(bus.handled["usage"] > 0 for bus in replicas)  # the broker split the load
    assert models.UsageRecord.select().count() == n
    assert models.Agent.get(models.Agent.agent_id == agent_id).acked_seq == n
    await until(lambda: all(bus.handled["presence"] >= 4 for bus in replicas))
    assert models.Agent.get(models.Agent.agent_id == agent_id).online


def test_concurrent_starts_never_share_a_range_or_overbook_an_agent(org: models.Org) -> None:
    for _ in range(2):
        online_agent(org, capacity=50)
    for round_ in range(6):
        names = [f"a{round_}", f"b{round_}"]
        for name in names:
            group(org, name, 60)  # 60 + 60 > 100: only one of the two fits
        same = f"s{round_}"
        group(org, same, 10)
        outcomes: dict[str, object] = {}
        gate = threading.Barrier(4)

        def start(name: str, key: str, outcomes=outcomes, gate=gate) -> None:
            gate.wait()
            try:
                outcomes[key] = groups.start_group(org.id, name, 60, Rules())[0].run_id
            except Conflict as e:
                outcomes[key] = e
            finally:
                database.close()

        jobs = [
            threading.Thread(target=start, args=(names[0], "a")),
            threading.Thread(target=start, args=(names[1], "b")),
            threading.Thread(target=start, args=(same, "s1")),
            threading.Thread(target=start, args=(same, "s2")),
        ]
        for t in jobs:
            t.start()
        for t in jobs:
            t.join(30)
        # Of the two big groups exactly one started; the other did not fit.
        conflicts = [k for k in ("a", "b") if isinstance(outcomes[k], Conflict)]
        assert len(conflicts) == 1, outcomes
        # One start of the same group: one run, one billed interval, every index once.
        assert outcomes["s1"] == outcomes["s2"] == 1
        s = models.Group.get(models.Group.name == same)
        intervals = EntitlementInterval.select().where(EntitlementInterval.group_id == s.id)
        assert intervals.count() == 1
        a = models.Assignment
        covered = sorted(
            i for r in a.select().where(a.group == s.id) for i in range(r.index_start, r.index_end)
        )
        assert covered == list(range(10))
        # No agent carries more than its capacity.
        used = Counter()
        running = a.select(a).join(models.Group).where(models.Group.state == "running")
        for r in running:
            used[r.agent_id] += r.index_end - r.index_start
        assert max(used.values()) <= 50
        for name in (*names, same):
            groups.stop_group(org.id, name)


def test_revisions_are_never_handed_out_twice(org: models.Org) -> None:
    agent_id = online_agent(org)
    seen: list[int] = []
    gate = threading.Barrier(4)

    def bump() -> None:
        gate.wait()
        try:
            for _ in range(20):
                seen.append(desired.next_states([agent_id])[agent_id].revision)
        finally:
            database.close()

    jobs = [threading.Thread(target=bump) for _ in range(4)]
    for t in jobs:
        t.start()
    for t in jobs:
        t.join(60)
    assert sorted(seen) == list(range(1, 81))


async def test_racing_replicas_leave_the_newest_desired_state_retained(
    org: models.Org, mosquitto, replicas: list[CountingBus]
) -> None:
    agents = [online_agent(org, capacity=1000) for _ in range(3)]
    for bus in replicas:
        bus.start()
    for bus in replicas:
        await asyncio.wait_for(bus.connected.wait(), 10)
    for i in range(8):
        group(org, f"r{i}", 30)
    for i in range(8):
        # Each change is published by one replica while the other republishes everything.
        touched = (await asyncio.to_thread(groups.start_group, org.id, f"r{i}", 60, Rules()))[1]
        await asyncio.gather(
            replicas[i % 2].publish_desired(touched), replicas[1 - i % 2].publish_desired(agents)
        )

    retained: dict[str, wire.Desired] = {}
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, protocol=V5) as c:
        await c.subscribe(wire.topic("+", wire.DESIRED), qos=1)
        async with asyncio.timeout(10):
            async for m in c.messages:
                aid = wire.agent_of(str(m.topic))[0]  # type: ignore[index]
                if aid in agents:
                    retained[aid] = wire.decode(wire.Desired, m.payload)  # type: ignore[arg-type]
                if len(retained) == len(agents):
                    break
    for aid in agents:
        row = models.Agent.get(models.Agent.agent_id == aid)
        assert retained[aid].revision == row.revision
        running = {(a.group, a.index_start, a.index_end) for a in retained[aid].assignments}
        want = {
            (r.group.name, r.index_start, r.index_end)
            for r in models.Assignment.select(models.Assignment, models.Group)
            .join(models.Group)
            .where(models.Assignment.agent == row.id)
        }
        assert running == want and len(want) == 8
