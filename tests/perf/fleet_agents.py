"""Simulated agents for the fleet benchmark: the wire protocol without the mocks.

One process runs many agents, each a real MQTT connection (gmqtt, light enough for
hundreds per process) with its own enrolled credentials, client id and will:
presence (retained, with an ``offline`` will), the retained desired state, a
reported state answering every new revision at once and every ``report_s``, and
QoS 1 usage records with increasing sequence numbers every ``usage_s`` for what
its assignments say it runs. No mock traffic is sent.

    python -m tests.perf.fleet_agents CREDENTIALS.json --host H --port P --status FILE

``SIGUSR1`` switches usage records to every ``--burst-s`` (the ingest phase),
``SIGUSR2`` stops them (to count what arrived), ``SIGTERM`` ends the process.
Counters go to ``--status`` (JSON, replaced atomically) every second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv311

from agent import wire


class SimAgent:
    def __init__(self, cred: dict[str, Any], host: str, port: int, fleet: Fleet) -> None:
        self.id = cred["agent_id"]
        self.host, self.port = host, port
        self.fleet = fleet
        self.seq = cred.get("seq", 0)
        self.acked = 0
        self.revision = 0
        self.assignments: list[wire.Assignment] = []
        self.last_cut_ms = int(time.time() * 1000)
        offline = wire.encode(wire.Presence(status="offline"))
        self.client = gmqtt.Client(
            f"mm-agent-{self.id}",
            will_message=gmqtt.Message(self._t(wire.PRESENCE), offline, qos=1, retain=True),
        )
        self.client.set_auth_credentials(cred["username"], cred["password"])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _t(self, kind: str) -> str:
        return wire.topic(self.id, kind)

    async def start(self) -> None:
        await self.client.connect(self.host, self.port, keepalive=30, version=MQTTv311)

    def _on_connect(self, client: gmqtt.Client, flags: int, rc: int, props: Any) -> None:
        client.subscribe(self._t(wire.DESIRED), qos=1)
        client.subscribe(self._t(wire.USAGE_ACK), qos=1)
        presence = wire.Presence(
            status="online", version="bench", hostname="sim", capacity=self.fleet.capacity
        )
        client.publish(self._t(wire.PRESENCE), wire.encode(presence), qos=1, retain=True)

    def _on_message(
        self, client: gmqtt.Client, topic: str, payload: bytes, qos: int, props: Any
    ) -> int:
        if not payload:
            return 0
        if topic.endswith("/" + wire.DESIRED):
            d = wire.decode(wire.Desired, payload)
            now = time.time()
            self.assignments = [a for a in d.assignments if a.lease_until > now]
            if d.revision != self.revision:
                self.revision = d.revision
                self.fleet.desired_seen += 1
                self.report()
        elif topic.endswith("/" + wire.USAGE_ACK):
            self.acked = max(self.acked, wire.decode(wire.UsageAck, payload).seq)
        return 0

    def report(self) -> None:
        groups = [
            wire.GroupReport(group_id=a.group_id, run_id=a.run_id, running=a.count)
            for a in self.assignments
        ]
        rep = wire.Reported(revision=self.revision, groups=groups, at=time.time())
        self.client.publish(self._t(wire.REPORTED), wire.encode(rep), qos=1, retain=True)

    def usage(self) -> None:
        now_ms = int(time.time() * 1000)
        start, self.last_cut_ms = self.last_cut_ms, now_ms
        lines = [
            wire.UsageLine(
                group_id=a.group_id,
                run_id=a.run_id,
                devices=a.count,
                start_ms=start,
                end_ms=now_ms,
            )
            for a in self.assignments
            if now_ms > start
        ]
        if not lines:
            return
        self.seq += 1
        rec = wire.UsageRecord(seq=self.seq, lines=lines)
        self.client.publish(self._t(wire.USAGE), wire.encode(rec), qos=1)
        self.fleet.usage_sent += 1


class Fleet:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.capacity = args.capacity
        self.usage_s: float | None = args.usage_s
        self.usage_sent = 0
        self.desired_seen = 0
        self.agents: list[SimAgent] = []
        self.stop = asyncio.Event()

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "agents": len(self.agents),
            "connected": sum(1 for a in self.agents if a.client.is_connected),
            "usage_sent": self.usage_sent,
            "usage_acked": sum(a.acked for a in self.agents),
            "usage_seq": sum(a.seq for a in self.agents),
            "desired_seen": self.desired_seen,
            "revisions": {a.id: a.revision for a in self.agents},
            "at": time.time(),
        }

    def write_status(self) -> None:
        path = Path(self.args.status)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status()))
        os.replace(tmp, path)

    async def run(self, creds: list[dict[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(self, "usage_s", self.args.burst_s))
        loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(self, "usage_s", None))
        self.agents = [SimAgent(c, self.args.host, self.args.port, self) for c in creds]
        sem = asyncio.Semaphore(50)

        async def connect(a: SimAgent) -> None:
            async with sem:
                await a.start()

        await asyncio.gather(*(connect(a) for a in self.agents))
        tasks = [
            asyncio.create_task(self._usage_loop()),
            asyncio.create_task(self._report_loop()),
            asyncio.create_task(self._status_loop()),
        ]
        await self.stop.wait()
        for t in tasks:
            t.cancel()
        self.write_status()

    async def _usage_loop(self) -> None:
        # Agents spread over the interval, as a real fleet's ticks are.
        while True:
            interval = self.usage_s
            if interval is None:
                await asyncio.sleep(0.2)
                continue
            step = interval / max(1, len(self.agents))
            for a in self.agents:
                if self.usage_s != interval:
                    break
                a.usage()
                await asyncio.sleep(step)

    async def _report_loop(self) -> None:
        while True:
            step = self.args.report_s / max(1, len(self.agents))
            for a in self.agents:
                a.report()
                await asyncio.sleep(step)

    async def _status_loop(self) -> None:
        while True:
            self.write_status()
            await asyncio.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("credentials", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--usage-s", type=float, default=10.0)
    parser.add_argument("--burst-s", type=float, default=1.0)
    parser.add_argument("--report-s", type=float, default=10.0)
    args = parser.parse_args()
    creds = json.loads(args.credentials.read_text())
    asyncio.run(Fleet(args).run(creds))


if __name__ == "__main__":
    main()
