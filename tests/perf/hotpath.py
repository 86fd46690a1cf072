"""The agent's send path minus the network, on a virtual clock.

The real engine (GroupRunner) and the real MQTT sender (MqttSender, packets built
and batched as on the wire) write into in-memory transports instead of sockets.
The scenarios are the benchmarks' own (tests/perf/mqtt_bench.py shared case,
tests/perf/behaviour_bench.py with --streams), so a figure measured here is the
per-message and per-device cost those benchmarks see, without their noise.

Used by tests/unit/agent/test_wire_bytes.py (the bytes a seed gives are pinned)
and by the bounded drivers tests/perf/hotpath_callgrind.py and
tests/perf/device_memory.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from typing import Any

import yaml

from agent import wire
from agent.engine import GroupRunner
from tests.perf import behaviour_bench, mqtt_bench

T0 = 1_800_000_000.0  # a Friday, 08:00 UTC
STEP_S = 0.001  # one engine pass per virtual millisecond, as under load


def shared_template() -> dict[str, Any]:
    """mqtt_bench's shared case: one connection, QoS 0, 6 fields every 10 ms."""
    text = mqtt_bench.SCENARIO.format(
        host=mqtt_bench.HOST,
        port=1883,
        connection="shared",
        interval="10ms",
        count=1,
        fields=mqtt_bench.FIELDS,
    )
    return yaml.safe_load(text)["templates"]["perf"]


def behaviour_template(*, streams: bool = True) -> dict[str, Any]:
    """behaviour_bench's: statuses, faults, commands and (``streams``) two streams."""
    text = behaviour_bench.SCENARIO.format(
        host=mqtt_bench.HOST,
        port=1883,
        count=1,
        streams=behaviour_bench.STREAMS.format() if streams else "",
    )
    tpl = yaml.safe_load(text)["templates"]["behave"]
    tpl["commands"]["qos"] = 0  # replies on the QoS 0 path: no broker acks to fake
    return tpl


def assignment(
    template: dict[str, Any],
    *,
    count: int,
    seed: int | None,
    group: str = "g",
    lease_until: float = math.inf,
) -> wire.Assignment:
    """Devices 0..count-1 of group ``group`` running ``template`` (named "t")."""
    return wire.Assignment(
        group_id=1,
        group=group,
        run_id=1,
        template_name="t",
        template=template,
        index_start=0,
        index_end=count,
        seed=seed,
        lease_until=lease_until,
    )


class Sink:
    """A transport that keeps (or only counts) what is written to it."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep
        self.chunks: list[bytes] = []
        self.bytes = 0
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)
        self.writes += 1
        if self.keep:
            self.chunks.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def digest(self) -> str:
        return hashlib.sha256(b"".join(self.chunks)).hexdigest()


def digest(sinks: list[Sink]) -> str:
    """One hash of every connection's bytes, connection by connection."""
    return hashlib.sha256("".join(s.digest() for s in sinks).encode()).hexdigest()


class Rig:
    """One group on the real engine and sender, every connection up and sinking."""

    def __init__(
        self,
        template: dict[str, Any],
        *,
        count: int,
        seed: int | None = 7,
        keep: bool = True,
        connect: bool = True,
    ) -> None:
        self.now = T0
        a = assignment(template, count=count, seed=seed)
        self.runner = GroupRunner(a, clock=lambda: self.now)
        self.sender: Any = self.runner.sender
        self.sinks = [Sink(keep) for _ in self.sender.clients]
        if connect:
            self.sender._transports[:] = self.sinks
        self.runner.report.state = "running"
        self.runner.started_at = T0
        self.runner.begin(T0)
        self._commands = random.Random(seed)

    async def run(
        self, seconds: float, *, messages: int | None = None, command_rate: float = 0.0
    ) -> None:
        """Advance the clock in STEP_S passes for ``seconds`` (or until ``messages``
        more were sent); ``command_rate`` commands a second reach random devices."""
        runner = self.runner
        rep = runner.report
        stop_at = None if messages is None else rep.sent + messages
        end = self.now + seconds
        n_cmd = 0
        devices = runner.devices
        while self.now < end and (stop_at is None or rep.sent < stop_at):
            self.now = round(self.now + STEP_S, 6)
            if command_rate:
                want = int((self.now - T0) * command_rate)
                while n_cmd < want:
                    d = devices[self._commands.randrange(len(devices))]
                    body = b'{"id": %d, "command": "ping"}' % n_cmd
                    runner._on_message(d.slot, d.cmd_topic, body)
                    n_cmd += 1
            runner.fire(self.now)
            await asyncio.sleep(0)  # the sender's flush, as in the engine's loop

    def figures(self) -> dict[str, Any]:
        rep = self.runner.report
        return {
            "sent": rep.sent,
            "skipped": rep.skipped,
            "errors": rep.errors,
            "transitions": rep.transitions,
            "moves": dict(rep.moves),
            "faults": dict(rep.faults),
            "statuses": dict(rep.statuses),
            "commands": rep.commands,
            "replies": rep.replies,
            "replies_error": rep.replies_error,
            "lateness": (
                rep.lateness.count,
                rep.lateness.percentile_ms(50),
                rep.lateness.percentile_ms(99),
                rep.lateness.max_us,
            ),
        }
