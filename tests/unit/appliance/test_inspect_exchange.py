"""The drill-down's request/reply: a reply counts only from the agent asked, for its id."""

from __future__ import annotations

import asyncio

from agent import wire
from appliance.inspect.exchange import Exchange


async def test_replies_are_matched_to_the_agent_and_request() -> None:
    sent: list[tuple[str, wire.InspectRequest]] = []

    async def publish(topic: str, payload: bytes, *, retain: bool) -> bool:
        assert not retain
        req = wire.decode(wire.InspectRequest, payload)
        sent.append((topic, req))
        agent = wire.agent_of(topic)
        assert agent is not None and agent[1] == wire.INSPECT
        reply = wire.InspectReply(id=req.id, group_id=req.group_id, run_id=req.run_id)
        if agent[0] == "a1":
            # Another agent answering for a1 (or echoing a1's id) is not taken.
            loop.call_soon(ex.deliver, "a2", wire.encode(reply))
            loop.call_soon(ex.deliver, "a1", b"{not json")
            loop.call_soon(ex.deliver, "a1", wire.encode(reply))
        return True

    loop = asyncio.get_running_loop()
    ex = Exchange(publish)
    got = await ex.ask(
        ["a1", "a3"],
        lambda rid: wire.InspectRequest(id=rid, group_id=7, run_id=2, messages=5),
        timeout=0.3,
    )
    assert [t for t, _ in sent] == [wire.topic("a1", wire.INSPECT), wire.topic("a3", wire.INSPECT)]
    assert got["a1"] is not None and got["a1"].group_id == 7
    assert got["a3"] is None  # silent: the caller lists it as unanswered
    assert ex._pending == {}


async def test_an_unsent_request_is_no_wait() -> None:
    async def publish(topic: str, payload: bytes, *, retain: bool) -> bool:
        return False  # the bus is down

    ex = Exchange(publish)
    got = await ex.ask(["a1"], lambda rid: wire.InspectRequest(id=rid, group_id=1, run_id=1))
    assert got == {"a1": None}
