"""The MQTT control-plane wire protocol: topics and messages.

This is the one module of the agent that the appliance imports, so both sides
always agree on the shape of what travels on the control bus (DESIGN §2).
Every message is a msgspec Struct encoded as JSON; decoding is strict so a
malformed message is rejected at the edge instead of half-applied.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar

import msgspec

PREFIX = "mm/v1/agents"
PROTOCOL_VERSION = 1


def topic(agent_id: str, kind: str) -> str:
    """The topic of one agent's channel, e.g. ``mm/v1/agents/a1/usage``."""
    return f"{PREFIX}/{agent_id}/{kind}"


def agent_of(topic_name: str) -> tuple[str, str] | None:
    """Split ``mm/v1/agents/{id}/{kind...}`` into (id, kind); None if foreign."""
    parts = topic_name.split("/", 4)
    if len(parts) < 5 or "/".join(parts[:3]) != PREFIX or not parts[3]:
        return None
    return parts[3], parts[4]


DESIRED = "desired"
REPORTED = "reported"
PRESENCE = "presence"
USAGE = "usage"
USAGE_ACK = "usage/ack"
METRICS = "metrics"


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """One slice of a group that this agent must run until ``lease_until``."""

    group_id: int
    group: str
    run_id: int
    template_name: str
    template: dict[str, Any]
    index_start: int
    index_end: int  # exclusive
    seed: int | None = None
    lease_until: float  # epoch seconds

    @property
    def key(self) -> tuple[int, int]:
        return (self.group_id, self.run_id)

    @property
    def count(self) -> int:
        return self.index_end - self.index_start


class Desired(msgspec.Struct, frozen=True, kw_only=True):
    """The retained desired state: the full list, never a diff."""

    revision: int
    assignments: list[Assignment] = []
    issued_at: float = 0.0


_INV_LOG_GROWTH = 1 / math.log(1.05)  # Histogram.GROWTH


class Histogram(msgspec.Struct, kw_only=True):
    """A mergeable log-bucket histogram (~2.5 % relative error) of microseconds.

    Agents send it, the appliance merges it across agents and reads percentiles,
    so p99 over a fleet is computed from the data rather than averaged.
    """

    buckets: dict[int, int] = {}
    count: int = 0
    max_us: int = 0

    GROWTH = 1.05

    @staticmethod
    def index(us: int) -> int:
        # One log per call, not two: this runs for every message sent.
        return 0 if us <= 0 else int(math.log(us) * _INV_LOG_GROWTH) + 1

    @staticmethod
    def upper(idx: int) -> float:
        return 0.0 if idx <= 0 else Histogram.GROWTH**idx

    def add(self, us: int) -> None:
        i = self.index(us)
        self.buckets[i] = self.buckets.get(i, 0) + 1
        self.count += 1
        if us > self.max_us:
            self.max_us = us

    def merge(self, other: Histogram) -> None:
        for i, n in other.buckets.items():
            self.buckets[i] = self.buckets.get(i, 0) + n
        self.count += other.count
        self.max_us = max(self.max_us, other.max_us)

    def percentile_ms(self, p: float) -> float:
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(self.count * p / 100))
        seen = 0
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen >= rank:
                return round(min(self.upper(i), self.max_us) / 1000, 3)
        return round(self.max_us / 1000, 3)


class VerifyReport(msgspec.Struct, kw_only=True):
    """What a group's built-in subscriber saw of the mocks' own traffic."""

    received: int = 0
    lost: int = 0
    duplicates: int = 0
    reordered: int = 0
    malformed: int = 0
    latency: Histogram = msgspec.field(default_factory=Histogram)  # end to end, µs

    def merge(self, other: VerifyReport) -> None:
        self.received += other.received
        self.lost += other.lost
        self.duplicates += other.duplicates
        self.reordered += other.reordered
        self.malformed += other.malformed
        self.latency.merge(other.latency)


class GroupReport(msgspec.Struct, kw_only=True):
    """Cumulative figures of one (group, run) on one agent.

    Fields after ``last_error`` were added later; their defaults let older peers
    decode newer reports and vice versa.
    """

    group_id: int
    run_id: int
    running: int
    sent: int = 0
    errors: int = 0
    lateness: Histogram = msgspec.field(default_factory=Histogram)
    state: Literal["starting", "running", "stopped"] = "running"
    reason: str = ""  # why it stopped, e.g. "lease expired"
    last_error: str = ""
    faults: dict[str, int] = {}  # injected so far, by fault name
    statuses: dict[str, int] = {}  # devices in each status now
    transitions: int = 0
    commands: int = 0  # command messages received
    replies: int = 0  # replies sent (ok and error)
    reconnects: int = 0
    skipped: int = 0  # sends not made: silent, dropped or outside a window
    verify: VerifyReport | None = None

    def merge_behaviour(self, other: GroupReport) -> None:
        """Add ``other``'s fault, status, command and verification figures (those
        after ``last_error``) to this report, e.g. to total several device ranges."""
        for name, n in other.faults.items():
            self.faults[name] = self.faults.get(name, 0) + n
        for name, n in other.statuses.items():
            self.statuses[name] = self.statuses.get(name, 0) + n
        self.transitions += other.transitions
        self.commands += other.commands
        self.replies += other.replies
        self.reconnects += other.reconnects
        self.skipped += other.skipped
        if other.verify is not None:
            if self.verify is None:
                self.verify = VerifyReport()
            self.verify.merge(other.verify)


class Reported(msgspec.Struct, kw_only=True):
    """The agent's retained report: which revision it runs and how it goes."""

    revision: int
    groups: list[GroupReport] = []
    errors: list[str] = []
    cpu_percent: float = 0.0
    rss_mb: float = 0.0
    at: float = 0.0


class Presence(msgspec.Struct, kw_only=True):
    status: Literal["online", "offline"]
    version: str = ""
    hostname: str = ""
    arch: str = ""
    cores: int = 0
    mem_mb: int = 0
    capacity: int = 0
    at: float = 0.0


class UsageLine(msgspec.Struct, frozen=True, kw_only=True):
    """``devices`` mocks of a group ran during [start_ms, end_ms)."""

    group_id: int
    run_id: int
    devices: int
    start_ms: int
    end_ms: int

    @property
    def device_ms(self) -> int:
        return self.devices * (self.end_ms - self.start_ms)


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A billable record; ``seq`` is per agent, strictly increasing from 1."""

    seq: int
    lines: list[UsageLine]


class UsageAck(msgspec.Struct, frozen=True, kw_only=True):
    """The highest contiguous seq the appliance has stored."""

    seq: int


class Metrics(msgspec.Struct, kw_only=True):
    """Low-value, frequent figures (QoS 0): per-group send rate."""

    at: float
    sent_per_s: dict[int, float] = {}


_encoder = msgspec.json.Encoder()


def encode(msg: msgspec.Struct) -> bytes:
    return _encoder.encode(msg)


_decoders: dict[type, msgspec.json.Decoder[Any]] = {}
T = TypeVar("T")


def decode(kind: type[T], data: bytes | bytearray | memoryview | str) -> T:
    """Strictly decode one message; raises msgspec.DecodeError/ValidationError."""
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    return dec.decode(bytes(data) if isinstance(data, (bytearray, memoryview)) else data)


# ---- inspection: what one group's mocks are doing, on request (agent/tail.py) ----------

INSPECT = "inspect"
INSPECT_REPLY = "inspect/reply"


class InspectRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The appliance asks an agent about its ranges of one group's run (QoS 1, not retained).

    The agent starts keeping the group's last sent messages when first asked and
    stops a minute after the last request, so nobody pays for it unwatched.
    """

    id: str  # echoed in the reply
    group_id: int
    run_id: int
    devices_from: int = 0  # first device index wanted
    devices: int = 0  # how many devices' states, from devices_from (0: none)
    messages: int = 0  # the last N sent messages (0: none)


class DeviceState(msgspec.Struct, kw_only=True):
    index: int
    device_id: str
    status: str
    connected: bool
    sending: bool  # False: dropped by a fault, silent, or in a silent status
    last_at: float | None = None  # epoch seconds of its last send seen while watched
    last_payload: str | None = None


class SentMessage(msgspec.Struct, kw_only=True):
    n: int  # increases with every message the agent keeps: tells repeats apart
    at: float  # epoch seconds
    device_id: str
    topic: str
    status: str
    payload: str  # as text (bytes that are not UTF-8 are replaced)
    truncated: bool = False


class InspectReply(msgspec.Struct, kw_only=True):
    id: str
    group_id: int
    run_id: int
    running: bool = False  # False: this agent runs none of that run
    watching_since: float | None = None
    devices: list[DeviceState] = []
    messages: list[SentMessage] = []
    last_error: str = ""
