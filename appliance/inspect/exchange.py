"""Request and reply over the control bus: ask agents about a group, gather their answers.

The bus hands every ``.../inspect/reply`` to :meth:`Exchange.deliver`; a reply is
taken only from the agent that was asked, for a request id this appliance made.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable

import msgspec

from agent import wire

log = logging.getLogger(__name__)

TIMEOUT_S = 3.0

Publish = Callable[..., Awaitable[bool]]


class Exchange:
    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._pending: dict[tuple[str, str], asyncio.Future[wire.InspectReply]] = {}

    def deliver(self, agent_id: str, payload: bytes | bytearray) -> None:
        try:
            reply = wire.decode(wire.InspectReply, payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            log.warning("dropped a malformed inspect reply from %s: %s", agent_id, e)
            return
        waiter = self._pending.get((agent_id, reply.id))
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    async def ask(
        self,
        agent_ids: Iterable[str],
        request: Callable[[str], wire.InspectRequest],
        timeout: float = TIMEOUT_S,
    ) -> dict[str, wire.InspectReply | None]:
        """Send ``request(id)`` to each agent at once; None for those silent past ``timeout``."""
        loop = asyncio.get_running_loop()
        asked: dict[str, tuple[str, asyncio.Future[wire.InspectReply]]] = {}
        try:
            for agent_id in sorted(set(agent_ids)):
                rid = secrets.token_hex(8)
                waiter: asyncio.Future[wire.InspectReply] = loop.create_future()
                self._pending[(agent_id, rid)] = waiter
                asked[agent_id] = (rid, waiter)
                sent = await self._publish(
                    wire.topic(agent_id, wire.INSPECT),
                    wire.encode(request(rid)),
                    retain=False,
                )
                if not sent:
                    waiter.cancel()
            waiting = [w for _, w in asked.values() if not w.done()]
            if waiting:
                await asyncio.wait(waiting, timeout=timeout)
            return {
                agent_id: (w.result() if w.done() and not w.cancelled() else None)
                for agent_id, (_, w) in asked.items()
            }
        finally:
            for agent_id, (rid, w) in asked.items():
                self._pending.pop((agent_id, rid), None)
                w.cancel()
