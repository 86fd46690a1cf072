"""MQTT data plane on gmqtt.

gmqtt, not aiomqtt, because its publish is a synchronous write into the
socket buffer: DESIGN §8 measured ~125,000 msg/s on one connection against
~11,000-16,000 for aiomqtt, and 10,000 per-device connections in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

log = logging.getLogger(__name__)
logging.getLogger("gmqtt").setLevel(logging.WARNING)

CONNECT_CONCURRENCY = 200


class MqttSender:
    """``per_device``: one client (id = device id) per device; ``shared``: one for all."""

    def __init__(self, spec: Any, device_ids: list[str], options: Any = None) -> None:
        self.spec = spec
        self.options = options
        self.device_ids = device_ids
        self.shared = spec.connection == "shared"
        ids = [f"{device_ids[0]}-shared"] if self.shared and device_ids else device_ids
        self.clients = [self._client(cid) for cid in ids]
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.last_error = ""

    def _client(self, client_id: str) -> gmqtt.Client:
        c = gmqtt.Client(client_id)
        username = getattr(self.spec, "username", None)
        if username:
            c.set_auth_credentials(username, getattr(self.spec, "password", None) or None)
        # gmqtt reconnects by itself after a lost connection; keep retrying.
        c.set_config({"reconnect_retries": -1, "reconnect_delay": 2})
        return c

    async def open(self) -> None:
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def first(c: gmqtt.Client) -> None:
            async with sem:
                ok = await self._connect(c)
            if not ok and not self._closing:
                t = asyncio.create_task(self._retry(c))
                self._tasks.add(t)
                t.add_done_callback(self._tasks.discard)

        await asyncio.gather(*(first(c) for c in self.clients))

    async def _connect(self, c: gmqtt.Client) -> bool:
        version = MQTTv50 if str(self.spec.version) == "5" else MQTTv311
        tls: bool | ssl.SSLContext = ssl.create_default_context() if self.spec.tls else False
        try:
            await c.connect(self.spec.host, self.spec.port, ssl=tls, keepalive=60, version=version)
            return True
        except (TimeoutError, OSError, gmqtt.mqtt.handler.MQTTConnectError) as e:
            self.last_error = f"connect {self.spec.host}:{self.spec.port}: {e}"
            return False

    async def _retry(self, c: gmqtt.Client) -> None:
        delay = 1.0
        while not self._closing:
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            if await self._connect(c):
                return
            delay = min(delay * 2, 30.0)

    def send(self, slot: int, topic: str, payload: bytes) -> bool:
        c = self.clients[0] if self.shared else self.clients[slot]
        if not c.is_connected:
            return False
        try:
            c.publish(topic, payload, qos=self.spec.qos, retain=self.spec.retain)
        except (OSError, AttributeError) as e:
            self.last_error = f"publish: {e}"
            return False
        return True

    async def close(self) -> None:
        self._closing = True
        for t in list(self._tasks):
            t.cancel()

        async def bye(c: gmqtt.Client) -> None:
            if c.is_connected:
                with contextlib.suppress(TimeoutError, OSError):
                    await asyncio.wait_for(c.disconnect(), 5)

        await asyncio.gather(*(bye(c) for c in self.clients))
