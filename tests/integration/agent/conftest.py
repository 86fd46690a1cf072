"""Helpers for on-the-wire tests of the engine: a real Mosquitto, an independent
aiomqtt subscriber, and a GroupRunner driven directly (no appliance)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import orjson

from agent.engine import GroupRunner
from tests.perf.hotpath import assignment


def unique_group() -> str:
    """Group names (and so topics) of one test: the session broker is shared."""
    return "it" + uuid.uuid4().hex[:8]


def template(broker: Any, **extra: Any) -> dict[str, Any]:
    mqtt = {"url": broker.url, "topic": "{group}/{device_id}/telemetry", "qos": 1}
    mqtt.update(extra.pop("mqtt", {}))
    return {
        "transport": {"mqtt": mqtt},
        "interval": extra.pop("interval", "100ms"),
        "payload": extra.pop("payload", {"seq": {"counter": {"start": 1}}}),
        **extra,
    }


@dataclass
class Received:
    topic: str
    payload: bytes
    at: float  # receive time, epoch seconds

    def json(self) -> Any:
        return orjson.loads(self.payload)


@dataclass
class Listener:
    messages: list[Received] = field(default_factory=list)

    def on(self, suffix: str) -> list[Received]:
        return [m for m in self.messages if m.topic.endswith(suffix)]

    async def wait_for(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            await asyncio.sleep(0.05)
        return predicate(self)


@asynccontextmanager
async def listening(
    broker: Any, *topics: str, username: str | None = None, password: str | None = None
) -> AsyncIterator[Listener]:
    """An independent subscriber (its own client id and connection) recording
    everything on ``topics`` with the time it arrived."""
    listener = Listener()
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"it-listener-{uuid.uuid4().hex[:6]}",
        username=username,
        password=password,
    ) as c:
        for t in topics:
            await c.subscribe(t, qos=1)

        async def consume() -> None:
            async for m in c.messages:
                data = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                listener.messages.append(Received(str(m.topic), data, time.time()))

        task = asyncio.create_task(consume())
        try:
            yield listener
            await asyncio.sleep(0.3)  # what the mocks sent last is still in flight
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def running(
    tpl: dict[str, Any], *, group: str, count: int = 3, seed: int | None = 1
) -> AsyncIterator[GroupRunner]:
    """A GroupRunner for ``count`` devices of ``tpl``, started and stopped around the block."""
    a = assignment(tpl, count=count, seed=seed, group=group, lease_until=time.time() + 3600)
    runner = GroupRunner(a)
    runner.start()
    deadline = time.monotonic() + 10
    while runner.report.state != "running" and time.monotonic() < deadline:
        assert runner._task is not None
        if runner._task.done():
            break
        await asyncio.sleep(0.02)
    assert runner.report.state == "running", runner.report.last_error
    try:
        yield runner
    finally:
        await runner.stop("test over")
