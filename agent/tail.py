"""What a group's mocks are doing right now, on the appliance's request (like ``logs -f``).

The engine appends every message it sends to ``GroupRunner.trace`` when that is
set (preview uses the same hook). A :class:`Tap` set there keeps the last few
messages and each device's last payload; it is attached at the first request and
lets go by itself a minute after the last one, so a group nobody watches pays
nothing on its send path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import aiomqtt

from agent import wire

if TYPE_CHECKING:
    from agent.engine import GroupRunner

log = logging.getLogger(__name__)

WATCH_S = 60.0
"""A tap lets go this long after the last request."""
RING = 200
"""Messages kept per range (the most a request gets)."""
MAX_DEVICES = 500
"""Device states per reply."""
PAYLOAD_CHARS = 1000
FIRST_WAIT_S = 1.0
"""A new tap has seen nothing yet: wait this long for a first message before answering."""


class Tap:
    """Set as ``runner.trace``; the engine calls ``append((at, slot, topic, data, status))``."""

    def __init__(self, runner: GroupRunner, seq: Iterable[int], now: float) -> None:
        self.runner = runner
        self.since = now
        self.until = now + WATCH_S
        self.ring: deque[tuple[int, float, int, str, bytes, str]] = deque(maxlen=RING)
        self.last: dict[int, tuple[float, bytes]] = {}
        self._seq = iter(seq)
        self.seen = asyncio.Event()

    def append(self, item: tuple[float, int, str, bytes, str]) -> None:
        at, slot, topic, data, status = item
        if at > self.until:
            self.runner.trace = None  # nobody asked for a minute: off the send path
            return
        self.ring.append((next(self._seq), at, slot, topic, data, status))
        self.last[slot] = (at, data)
        if not self.seen.is_set():
            self.seen.set()


def _text(data: bytes, limit: int = PAYLOAD_CHARS) -> tuple[str, bool]:
    text = data.decode("utf-8", errors="replace")
    return (text, False) if len(text) <= limit else (text[:limit], True)


class Inspector:
    """Answers :class:`wire.InspectRequest` for the runners of one agent."""

    def __init__(
        self,
        runners: Callable[[], Iterable[GroupRunner]],
        client: Callable[[], aiomqtt.Client | None],
        reply_topic: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runners = runners
        self._client = client
        self._reply_topic = reply_topic
        self._clock = clock
        self._seq = itertools.count(1)  # one sequence for the agent: n never repeats
        self._tasks: set[asyncio.Task[None]] = set()

    def answer_soon(self, request: wire.InspectRequest) -> None:
        """Reply in a task of its own: the control loop keeps reading meanwhile."""
        task = asyncio.create_task(self._reply(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, request: wire.InspectRequest) -> None:
        reply = await self.answer(request)
        client = self._client()
        if client is None:
            return  # the appliance times out and says this agent did not answer
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(self._reply_topic, wire.encode(reply), qos=1)

    def _tap(self, runner: GroupRunner, now: float) -> tuple[Tap, bool]:
        trace = runner.trace
        if isinstance(trace, Tap):
            trace.until = now + WATCH_S
            return trace, False
        tap = Tap(runner, self._seq, now)
        runner.trace = tap  # type: ignore[assignment]  # the engine only calls append()
        return tap, True

    async def answer(self, request: wire.InspectRequest) -> wire.InspectReply:
        now = self._clock()
        runners = [
            r
            for r in self._runners()
            if r.assignment.group_id == request.group_id and r.assignment.run_id == request.run_id
        ]
        reply = wire.InspectReply(id=request.id, group_id=request.group_id, run_id=request.run_id)
        if not runners:
            return reply
        taps = [self._tap(r, now) for r in runners]
        fresh = [t for t, new in taps if new]
        if fresh and (request.messages > 0 or request.devices > 0):
            waits = [asyncio.create_task(t.seen.wait()) for t in fresh]
            try:
                await asyncio.wait(waits, timeout=FIRST_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
        reply.running = True
        reply.watching_since = min(t.since for t, _ in taps)
        reply.last_error = next((r.report.last_error for r in runners if r.report.last_error), "")
        if request.devices > 0:
            reply.devices = self._devices(runners, taps, request)
        if request.messages > 0:
            reply.messages = self._messages(runners, taps, min(request.messages, RING))
        return reply

    def _devices(
        self, runners: list[GroupRunner], taps: list[tuple[Tap, bool]], req: wire.InspectRequest
    ) -> list[wire.DeviceState]:
        want = range(req.devices_from, req.devices_from + min(req.devices, MAX_DEVICES))
        now = self._clock()
        out: list[wire.DeviceState] = []
        for runner, (tap, _) in zip(runners, taps, strict=True):
            a = runner.assignment
            lo, hi = max(want.start, a.index_start), min(want.stop, a.index_end)
            for index in range(lo, hi):
                slot = index - a.index_start
                out.append(_device_state(runner, tap, slot, now))
        out.sort(key=lambda d: d.index)
        return out[: len(want)]

    def _messages(
        self, runners: list[GroupRunner], taps: list[tuple[Tap, bool]], limit: int
    ) -> list[wire.SentMessage]:
        rows: list[wire.SentMessage] = []
        for runner, (tap, _) in zip(runners, taps, strict=True):
            for n, at, slot, topic, data, status in list(tap.ring)[-limit:]:
                text, cut = _text(data)
                rows.append(
                    wire.SentMessage(
                        n=n,
                        at=at,
                        device_id=runner.device_ids[slot],
                        topic=topic,
                        status=status,
                        payload=text,
                        truncated=cut,
                    )
                )
        rows.sort(key=lambda m: m.n)
        return rows[-limit:]


def _device_state(runner: GroupRunner, tap: Tap, slot: int, now: float) -> wire.DeviceState:
    d: Any = runner.devices[slot]
    last = tap.last.get(slot)
    sending = not d.dropped and now >= d.silent_until and not runner.silent[d.status]
    return wire.DeviceState(
        index=d.index,
        device_id=d.id,
        status=runner.model.statuses[d.status].name,
        connected=bool(runner.sender.is_connected(slot)),
        sending=sending,
        last_at=None if last is None else last[0],
        last_payload=None if last is None else _text(last[1], 300)[0],
    )
