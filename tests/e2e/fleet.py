"""Helpers for fleet stories: a served appliance, enrolled agent processes, a watcher."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt

from tests.fixtures.ports import free_port
from tests.fixtures.processes import Appliance, Proc, mockmock, mockmock_agent


def serve(tmp_path: Path, mqtt_url: str, **settings: object) -> Appliance:
    """``mockmock serve`` on ``mqtt_url`` with MOCKMOCK_* settings (not started)."""
    data = tmp_path / "appliance"
    http = free_port()
    app = Appliance(
        data,
        http,
        mockmock(
            "serve", "--data-dir", str(data), "--http-port", str(http), "--mqtt-url", mqtt_url
        ),
    )
    app.proc.env = {f"MOCKMOCK_{k.upper()}": str(v) for k, v in settings.items()}
    return app


def enroll(app: Appliance, agent_dir: Path, capacity: int) -> None:
    token = app.api("POST", "/api/v1/enrollment-tokens")["token"]
    done = subprocess.run(
        mockmock_agent(
            "enroll", app.url, token, "--data-dir", str(agent_dir), "--capacity", str(capacity)
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def agent_proc(agent_dir: Path, *args: str) -> Proc:
    return Proc(
        mockmock_agent("run", "--data-dir", str(agent_dir), *args),
        agent_dir.parent / f"{agent_dir.name}.log",
    )


def agent_id(agent_dir: Path) -> str:
    import json

    return json.loads((agent_dir / "agent.json").read_text())["agent_id"]


def online(app: Appliance) -> int:
    return app.api("GET", "/api/v1/health", auth=False)["agents_online"]


@dataclass
class Watcher:
    """An independent subscriber: (arrival time, topic, payload) of everything it sees."""

    host: str
    port: int
    topic: str
    seen: list[tuple[float, str, bytes]] = field(default_factory=list)

    def devices_since(self, t: float) -> set[str]:
        return {topic.rsplit("/", 1)[-1] for at, topic, _ in list(self.seen) if at >= t}

    def last_at(self) -> float:
        return self.seen[-1][0] if self.seen else 0.0

    def count_since(self, t: float) -> int:
        return sum(1 for at, _, _ in list(self.seen) if at >= t)

    @contextmanager
    def running(self) -> Iterator[Watcher]:
        ready = threading.Event()
        stop: list[asyncio.Event] = []
        loops: list[asyncio.AbstractEventLoop] = []

        async def run() -> None:
            loops.append(asyncio.get_running_loop())
            stop.append(asyncio.Event())
            async with aiomqtt.Client(
                self.host, self.port, identifier=f"watch-{uuid.uuid4().hex[:8]}"
            ) as c:
                await c.subscribe(self.topic, qos=0)
                ready.set()

                async def consume() -> None:
                    async for m in c.messages:
                        self.seen.append((time.monotonic(), str(m.topic), bytes(m.payload)))

                task = asyncio.create_task(consume())
                await stop[0].wait()
                task.cancel()

        thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
        thread.start()
        assert ready.wait(10), "watcher did not connect"
        try:
            yield self
        finally:
            loops[0].call_soon_threadsafe(stop[0].set)
            thread.join(10)


def wait(predicate, timeout: float, what: str, log: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")
