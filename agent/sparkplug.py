"""Sparkplug B edge nodes as a device kind (``sparkplug:`` on a template).

Each mock of the group is one edge node (its id the mock's device id, one MQTT
connection) carrying ``devices`` Sparkplug devices; the template's ``payload``
are each device's metrics, ``node_metrics`` the node's own. On the wire, as the
Sparkplug B specification has it (``spBv1.0/{group_id}/{type}/{node}[/{device}]``):

- before every connect the will is set to an NDEATH carrying ``bdSeq``, which
  grows by one per connection (0-255);
- once connected: NBIRTH (``seq`` 0, ``bdSeq``, ``Node Control/Rebirth``, the
  node metrics), then a DBIRTH per device; every send then is a DDATA per
  device (and an NDATA when there are node metrics), ``seq`` counting 0-255
  over every message of the node;
- an NCMD with ``Node Control/Rebirth`` = true brings a new NBIRTH and DBIRTHs;
- a clean stop sends DDEATHs and the NDEATH; an abrupt drop (``tcp_drop``)
  leaves the broker to publish the will.

Payloads are protobuf messages of the Eclipse Tahu schema (``sparkplug_b.proto``
beside this module, compiled by :mod:`agent.protobuf`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from agent.errors import ScenarioError
from agent.generators import DevicePayload, compile_fields, device_rng
from agent.spec import Field, convert

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
SCHEMA_FILE = Path(__file__).with_name("sparkplug_b.proto")
PAYLOAD = "org.eclipse.tahu.protobuf.Payload"
REBIRTH = "Node Control/Rebirth"
MAX_DEVICES = 1000
# Sparkplug B DataType numbers (the schema's comment lists them).
INT64, UINT64, DOUBLE, BOOLEAN, STRING = 4, 8, 10, 11, 12


class _SparkplugDoc(msgspec.Struct, forbid_unknown_fields=True):
    group_id: str
    devices: int = 1
    device_id: str = "d{n}"  # each device of a node; {n} counts from 0
    node_metrics: dict[str, Any] = {}


@dataclass(frozen=True)
class Sparkplug:
    group_id: str
    devices: int
    device_id: str
    node_metrics: dict[str, Field]


def _check_id(value: str, path: str) -> None:
    # Sparkplug ids are topic levels: no separators, wildcards or empty levels.
    if not value or any(c in value for c in "/+#"):
        raise ScenarioError(path, f"must be a non-empty topic level without / + #, got {value!r}")


def parse_sparkplug(raw: Any, path: str, parse_field: Any) -> Sparkplug | None:
    if raw is None:
        return None
    doc = convert(raw, _SparkplugDoc, path)
    _check_id(doc.group_id, f"{path}.group_id")
    if not 0 <= doc.devices <= MAX_DEVICES:
        raise ScenarioError(f"{path}.devices", f"must be between 0 and {MAX_DEVICES}")
    try:
        sample = doc.device_id.format(n=0)
    except (KeyError, IndexError, ValueError):
        raise ScenarioError(f"{path}.device_id", "the only placeholder is {n}") from None
    _check_id(sample, f"{path}.device_id")
    if doc.devices > 1 and doc.device_id.format(n=1) == sample:
        raise ScenarioError(f"{path}.device_id", "must hold {n}: every device its own id")
    node = {k: parse_field(v, f"{path}.node_metrics.{k}") for k, v in doc.node_metrics.items()}
    return Sparkplug(doc.group_id, doc.devices, doc.device_id, node)


# -- pure: topics and payloads ---------------------------------------------------


def topic(group_id: str, kind: str, node: str, device: str | None = None) -> str:
    return f"{NAMESPACE}/{group_id}/{kind}/{node}" + (f"/{device}" if device else "")


_cls: Any = None


def payload_class() -> Any:
    global _cls
    if _cls is None:
        from agent import protobuf

        _cls = protobuf.message_class(SCHEMA_FILE.read_text(), PAYLOAD, "sparkplug")
    return _cls


def _set(metric: Any, value: Any) -> None:
    """Datatype and value of one metric, from the Python value a generator gave."""
    if isinstance(value, bool):
        metric.datatype, metric.boolean_value = BOOLEAN, value
    elif isinstance(value, int):
        if value >= 0:
            metric.datatype, metric.long_value = INT64, value
        else:  # uint64 on the wire, two's complement for Int64 (as Tahu clients do)
            metric.datatype, metric.long_value = INT64, value & 0xFFFFFFFFFFFFFFFF
    elif isinstance(value, float):
        metric.datatype, metric.double_value = DOUBLE, value
    elif value is None:
        metric.datatype, metric.is_null = STRING, True
    else:
        from orjson import dumps

        text = value if isinstance(value, str) else dumps(value).decode()
        metric.datatype, metric.string_value = STRING, text


def encode(ts_ms: int, seq: int | None, metrics: dict[str, Any]) -> bytes:
    p = payload_class()(timestamp=ts_ms)
    if seq is not None:
        p.seq = seq
    for name, value in metrics.items():
        m = p.metrics.add()
        m.name = name
        m.timestamp = ts_ms
        _set(m, value)
    return bytes(p.SerializeToString())


def is_rebirth(data: bytes) -> bool:
    """An NCMD asking for a rebirth (``Node Control/Rebirth`` = true)."""
    p = payload_class()()
    try:
        p.ParseFromString(data)
    except Exception:  # protobuf's DecodeError: a malformed command is ignored
        return False
    return any(m.name == REBIRTH and m.boolean_value for m in p.metrics)


# -- the runner ------------------------------------------------------------------


class Node:
    """One edge node's Sparkplug state."""

    __slots__ = ("bdseq", "born", "devices", "node", "seq")

    def __init__(self) -> None:
        self.bdseq = -1  # the first connect makes it 0
        self.seq = 0
        self.born = False
        self.node: list[DevicePayload] = []  # node metrics, per status
        self.devices: list[tuple[str, list[DevicePayload]]] = []  # (id, per status)

    def next_seq(self) -> int:
        s = self.seq
        self.seq = (s + 1) % 256
        return s


def make_runner_class(base: type) -> type:
    """The Sparkplug runner: a GroupRunner whose sends are Sparkplug messages."""

    class SparkplugRunner(base):  # type: ignore[misc,valid-type]
        def _device(self, slot: int, index: int) -> Any:
            d = super()._device(slot, index)
            sp: Sparkplug = self.template.sparkplug
            a = self.assignment
            node = Node()
            statuses = self.model.statuses
            for n in range(sp.devices):
                rng = device_rng(a.seed, a.group, index, f"sparkplug:{n}")
                cache: dict[int, Any] = {}
                per = [
                    compile_fields(s.payload, rng=rng, device_id=d.id, cache=cache)
                    for s in statuses
                ]
                node.devices.append((sp.device_id.format(n=n), per))
            if sp.node_metrics:
                rng = device_rng(a.seed, a.group, index, "sparkplug:node")
                node.node = [compile_fields(sp.node_metrics, rng=rng, device_id=d.id)]
            self._nodes = getattr(self, "_nodes", [])
            self._nodes.append(node)
            return d

        def _options(self) -> Any:
            opts = super()._options()
            sp: Sparkplug = self.template.sparkplug
            subs = []
            for d in self.devices:
                subs.append([topic(sp.group_id, "NCMD", d.id), topic(sp.group_id, "DCMD", d.id)])
            opts.subscriptions = subs
            opts.on_message = self._on_message
            opts.wills = []
            opts.will_for = self._will_for
            opts.on_connected = self._born
            return opts

        def _will_for(self, slot: int) -> tuple[str, bytes, int, bool]:
            node = self._nodes[slot]
            node.bdseq = (node.bdseq + 1) % 256
            node.born = False
            d = self.devices[slot]
            death = encode(int(self.clock() * 1000), None, {"bdSeq": node.bdseq})
            return (topic(self.template.sparkplug.group_id, "NDEATH", d.id), death, 1, False)

        def _born(self, slot: int) -> None:
            try:
                self._birth(self.devices[slot], self.clock())
            except Exception:  # never break the transport's connect over a birth
                log.exception("sparkplug birth of %s failed", self.devices[slot].id)

        def _birth(self, d: Any, now: float) -> None:
            sp: Sparkplug = self.template.sparkplug
            node = self._nodes[d.slot]
            node.seq = 0
            ts = int(now * 1000)
            metrics: dict[str, Any] = {"bdSeq": node.bdseq, REBIRTH: False}
            if node.node:
                metrics.update(node.node[0].next(now))
            self._sp_out(d, topic(sp.group_id, "NBIRTH", d.id), encode(ts, 0, metrics))
            node.seq = 1
            for dev_id, per in node.devices:
                values = per[d.status].next(now)
                body = encode(ts, node.next_seq(), values)
                self._sp_out(d, topic(sp.group_id, "DBIRTH", d.id, dev_id), body)
            node.born = True

        def _sp_out(self, d: Any, t: str, body: bytes) -> None:
            self._out(d, body, topic=t, qos=self.template.transport.mqtt.qos)

        def _emit(self, d: Any, now: float) -> None:
            node = self._nodes[d.slot]
            if not node.born:
                return
            sp: Sparkplug = self.template.sparkplug
            ts = int(now * 1000)
            f = d.faults
            if f is not None and f.clock:
                ts += int(f.clock_shift(now, self.started_at or now) * 1000)
            if node.node:
                body = encode(ts, node.next_seq(), node.node[0].next(now))
                self._sp_out(d, topic(sp.group_id, "NDATA", d.id), body)
            for dev_id, per in node.devices:
                body = encode(ts, node.next_seq(), per[d.status].next(now))
                self._sp_out(d, topic(sp.group_id, "DDATA", d.id, dev_id), body)

        def _on_message(self, slot: int, t: str, payload: bytes) -> None:
            if 0 <= slot < len(self.devices):
                d = self.devices[slot]
                sp: Sparkplug = self.template.sparkplug
                if t == topic(sp.group_id, "NCMD", d.id) and is_rebirth(payload):
                    self.report.commands += 1
                    if self._active(d, self.clock()):
                        self._birth(d, self.clock())
                        self.report.replies += 1
                    return
            super()._on_message(slot, t, payload)

        async def stop(self, reason: str = "") -> None:
            # A clean goodbye: every device's DDEATH, then the node's NDEATH.
            sp: Sparkplug = self.template.sparkplug
            self._stopped = True
            now = self.clock()
            for d in self.devices:
                node = self._nodes[d.slot]
                if not node.born or d.dropped or not self.sender.is_connected(d.slot):
                    continue
                ts = int(now * 1000)
                for dev_id, _ in node.devices:
                    body = encode(ts, node.next_seq(), {})
                    self._sp_out(d, topic(sp.group_id, "DDEATH", d.id, dev_id), body)
                death = encode(ts, None, {"bdSeq": node.bdseq})
                self._sp_out(d, topic(sp.group_id, "NDEATH", d.id), death)
                node.born = False
            await super().stop(reason)

    return SparkplugRunner
