"""agent/tail.py: the last messages and device states of a group, from the real engine."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import orjson

from agent import tail, wire
from agent.engine import GroupRunner
from tests.unit.agent.test_engine import T0, FakeSender

TEMPLATE = {
    "transport": {"mqtt": {"url": "mqtt://127.0.0.1:1", "topic": "lab/{device_id}/t"}},
    "interval": "1s",
    "payload": {"seq": {"counter": {}}, "temp": {"uniform": {"min": 18, "max": 26}}},
    "statuses": {"normal": {}, "hot": {"payload": {"temp": 99}}},
    "initial": {"normal": 1, "hot": 1},
}


class Board:
    """One range of a group on a virtual clock, with the agent's inspector over it."""

    def __init__(self, start: int = 0, count: int = 4, run_id: int = 1) -> None:
        self.now = T0
        self.sender: FakeSender | None = None
        a = wire.Assignment(
            group_id=1,
            group="lab",
            run_id=run_id,
            template_name="t",
            template=TEMPLATE,
            index_start=start,
            index_end=start + count,
            seed=3,
            lease_until=math.inf,
        )

        def factory(_t: Any, ids: list[str], options: Any) -> FakeSender:
            self.sender = FakeSender(ids, options, lambda: self.now)
            return self.sender

        self.runner = GroupRunner(a, sender_factory=factory, clock=lambda: self.now)
        self.runner.begin(self.now)
        self.inspector = tail.Inspector(
            lambda: [self.runner], lambda: None, "unused", clock=lambda: self.now
        )

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while self.runner._heap and self.runner._heap[0][0] <= end:
            self.now = self.runner._heap[0][0]
            self.runner.fire(self.now)
        self.now = end

    async def ask(self, **kw: Any) -> wire.InspectReply:
        req = wire.InspectRequest(id="r1", group_id=1, run_id=kw.pop("run_id", 1), **kw)
        task = asyncio.create_task(self.inspector.answer(req))
        await asyncio.sleep(0)  # the request arrives and attaches its tap
        self.run_for(kw.get("messages", 0) and 3.0)
        return await task


async def test_the_first_request_starts_the_tail_and_shows_what_was_sent() -> None:
    board = Board()
    board.run_for(5)  # nobody watching: nothing kept
    assert board.runner.trace is None
    reply = await board.ask(messages=50)
    assert board.sender is not None
    sent_while_watched = [s for s in board.sender.sent if s[0] > T0 + 5]
    assert reply.running and reply.watching_since == T0 + 5
    assert len(reply.messages) == len(sent_while_watched) > 0
    for m, (at, slot, topic, data, _) in zip(reply.messages, sent_while_watched, strict=True):
        assert (m.at, m.device_id, m.topic) == (at, board.runner.device_ids[slot], topic)
        assert orjson.loads(m.payload) == orjson.loads(data)
        assert m.status in ("normal", "hot")
    assert [m.n for m in reply.messages] == sorted({m.n for m in reply.messages})

    board.run_for(2)
    again = await board.ask(messages=3)
    assert len(again.messages) == 3 and again.messages[-1].n > reply.messages[-1].n


async def test_device_states_with_their_last_payload() -> None:
    board = Board(start=10, count=4)
    await board.ask(messages=1)  # watching from now
    board.run_for(3)
    assert board.sender is not None
    board.sender.down.add(1)  # device 11's connection is down
    reply = await board.ask(devices=3, devices_from=9)
    assert [d.index for d in reply.devices] == [10, 11]
    assert [d.device_id for d in reply.devices] == ["lab-00010", "lab-00011"]
    assert [d.connected for d in reply.devices] == [True, False]
    last = [p for _, s, _, p, _ in board.sender.sent if s == 0][-1]
    assert reply.devices[0].last_payload is not None
    assert orjson.loads(reply.devices[0].last_payload) == orjson.loads(last)
    statuses = {d.status for d in (await board.ask(devices=4, devices_from=10)).devices}
    assert statuses <= {"normal", "hot"} and statuses


async def test_another_run_is_not_running_here() -> None:
    board = Board()
    reply = await board.ask(messages=10, run_id=2)
    assert not reply.running and reply.messages == [] and board.runner.trace is None


async def test_the_tail_lets_go_a_minute_after_the_last_request() -> None:
    board = Board()
    await board.ask(messages=1)
    assert isinstance(board.runner.trace, tail.Tap)
    board.run_for(tail.WATCH_S + 2)
    assert board.runner.trace is None  # off the send path again


async def test_the_ring_is_bounded() -> None:
    board = Board(count=50)
    await board.ask(messages=1)
    board.run_for(10)  # 500 messages
    reply = await board.ask(messages=10_000)
    assert len(reply.messages) == tail.RING
