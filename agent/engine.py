"""The mock engine: one heap-scheduled loop per group, not a task per device.

Every device has a due time; the loop sleeps until the earliest, sends every
device that is due, measures how late each send is against its schedule and
pushes the device's next due time. Thousands of devices cost one task and a
heap, which is what lets a small board keep time.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import Callable

from agent import wire
from agent.generators import compile_payload
from agent.template import Template, device_id, expand_topic, parse_template
from agent.transports import Sender, open_sender

log = logging.getLogger(__name__)


class GroupRunner:
    """Runs one assignment (a slice of a group's devices) until stopped."""

    def __init__(
        self,
        assignment: wire.Assignment,
        *,
        sender_factory: Callable[[Template, list[str]], Sender] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.assignment = assignment
        self.template = parse_template(assignment.template_name, assignment.template)
        self.clock = clock
        a = assignment
        self.device_ids = [
            device_id(self.template, a.group, i) for i in range(a.index_start, a.index_end)
        ]
        mqtt = self.template.transport.mqtt
        pattern = mqtt.topic if mqtt is not None else ""
        self.topics = [
            expand_topic(pattern, device_id=d, group=a.group, index=i)
            for d, i in zip(self.device_ids, range(a.index_start, a.index_end), strict=True)
        ]
        self.payloads = [
            compile_payload(self.template, group=a.group, index=i, device_id=d, seed=a.seed)
            for d, i in zip(self.device_ids, range(a.index_start, a.index_end), strict=True)
        ]
        factory = sender_factory or (lambda t, ids: open_sender(t.transport, ids))
        self.sender = factory(self.template, self.device_ids)
        self.report = wire.GroupReport(
            group_id=a.group_id, run_id=a.run_id, running=0, state="starting"
        )
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.started_at: float | None = None

    @property
    def key(self) -> tuple[int, int]:
        return self.assignment.key

    @property
    def running(self) -> int:
        return self.report.running

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"group-{self.assignment.group}")

    async def _run(self) -> None:
        try:
            await self.sender.open()
            self.started_at = self.clock()
            self.report.running = len(self.device_ids)
            self.report.state = "running"
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a broken mock must not take the agent down
            log.exception("group %s failed", self.assignment.group)
            self.report.last_error = f"{type(e).__name__}: {e}"
            self.report.errors += 1
        finally:
            self.report.running = 0

    async def _loop(self) -> None:
        interval = self.template.interval_ms / 1000
        jitter = self.template.jitter_ms / 1000
        n = len(self.device_ids)
        now = self.clock()
        # Stagger the first sends across one interval: real fleets are not in lockstep.
        heap = [(now + interval * i / max(n, 1), i) for i in range(n)]
        heapq.heapify(heap)
        rng = random.Random()
        rep = self.report
        hist = rep.lateness
        sender = self.sender
        while not self._stopped.is_set():
            due, slot = heap[0]
            wait = due - self.clock()
            if wait > 0:
                try:
                    await asyncio.wait_for(self._stopped.wait(), wait)
                    break
                except TimeoutError:
                    pass
            now = self.clock()
            # Send everything that is due, then yield once.
            while heap and heap[0][0] <= now:
                due, slot = heap[0]
                payload = self.payloads[slot].encode(now)
                if sender.send(slot, self.topics[slot], payload):
                    rep.sent += 1
                else:
                    rep.errors += 1
                    rep.last_error = getattr(sender, "last_error", "") or "not connected"
                hist.add(int((now - due) * 1_000_000))
                nxt = due + interval
                if jitter:
                    nxt += rng.uniform(-jitter, jitter)
                if nxt < now - interval:  # fell far behind: skip rather than burst
                    nxt = now + interval
                heapq.heapreplace(heap, (nxt, slot))
            await asyncio.sleep(0)

    async def stop(self, reason: str = "") -> None:
        self._stopped.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except TimeoutError:
                self._task.cancel()
        await self.sender.close()
        self.report.running = 0
        self.report.state = "stopped"
        self.report.reason = reason
