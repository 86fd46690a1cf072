"""Device statuses (normal, degraded, error, offline, ...) and their transitions.

A status may override payload fields, drop fields, change the interval or go
silent (connected, sending nothing). Transitions fire after time spent in a
status (``after``), at cron times (``cron``), on a message received on a topic
(``on_message``) or with a probability per send (``probability``). This module
validates the document; the engine applies it per device with the device's
own seeded random stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import msgspec

from agent.errors import ScenarioError
from agent.spec import Field, convert, parse_duration_ms
from agent.timing import Cron, CronError

DEFAULT_STATUS = "normal"
_TRIGGERS = ("after", "cron", "on_message", "probability")


class _StatusDoc(msgspec.Struct, forbid_unknown_fields=True):
    payload: dict[str, Any] = {}
    omit: list[str] = []
    interval: str | int | float | None = None
    silent: bool = False
    description: str = ""


class _MessageDoc(msgspec.Struct, forbid_unknown_fields=True):
    topic: str
    match: str | None = None


class _TransitionDoc(msgspec.Struct, forbid_unknown_fields=True, rename={"from_": "from"}):
    to: str
    from_: str | list[str] = "*"
    after: str | int | float | None = None
    cron: str | None = None
    on_message: str | _MessageDoc | None = None
    probability: float | None = None


@dataclass(frozen=True)
class Status:
    name: str
    payload: dict[str, Field]  # the template's fields with this status's changes
    interval_ms: int | None  # None: the template's
    silent: bool


@dataclass(frozen=True)
class Transition:
    sources: frozenset[int]  # status indices this transition leaves
    to: int
    after_s: float | None = None
    cron: Cron | None = None
    topic: str | None = None  # pattern with {device_id}, {group}, {index}
    match: bytes | None = None  # the message must contain these bytes
    probability: float | None = None


@dataclass(frozen=True)
class StatusModel:
    statuses: tuple[Status, ...]
    initial: tuple[tuple[int, float], ...]  # (status index, weight)
    transitions: tuple[Transition, ...]

    def index(self, name: str) -> int:
        return next(i for i, s in enumerate(self.statuses) if s.name == name)

    @property
    def trivial(self) -> bool:
        return len(self.statuses) == 1 and not self.transitions

    def pick_initial(self, rng: random.Random) -> int:
        if len(self.initial) == 1:
            return self.initial[0][0]
        idx = [i for i, _ in self.initial]
        return rng.choices(idx, weights=[w for _, w in self.initial])[0]


def parse_statuses(
    raw_statuses: Any,
    raw_initial: Any,
    raw_transitions: Any,
    *,
    path: str,
    payload: dict[str, Field],
    parse_field: Any,
    parse_interval: Any,
    check_topic: Any,
) -> StatusModel:
    """Validate ``statuses``, ``initial`` and ``transitions`` of a template at ``path``.

    The helpers are the template parser's (``agent.spec``) so that field, interval and topic
    rules (and their messages) are the same everywhere.
    """

    if raw_statuses is None:
        if raw_initial is not None:
            raise ScenarioError(f"{path}.initial", "needs statuses")
        if raw_transitions:
            raise ScenarioError(f"{path}.transitions", "needs statuses")
        return StatusModel((Status(DEFAULT_STATUS, payload, None, False),), ((0, 1.0),), ())
    spath = f"{path}.statuses"
    if not isinstance(raw_statuses, dict) or not raw_statuses:
        raise ScenarioError(spath, "must map status names to settings, e.g. {normal: {}}")
    statuses: list[Status] = []
    for name, body in raw_statuses.items():
        p = f"{spath}.{name}"
        if not isinstance(name, str) or not name:
            raise ScenarioError(p, "status names must be non-empty strings")
        doc = convert(body if body is not None else {}, _StatusDoc, p)
        fields = dict(payload)
        for k, v in doc.payload.items():
            fields[k] = parse_field(v, f"{p}.payload.{k}")
        for i, k in enumerate(doc.omit):
            if k not in fields:
                raise ScenarioError(f"{p}.omit[{i}]", f"unknown payload field {k!r}")
            del fields[k]
        interval = None if doc.interval is None else parse_interval(doc.interval, f"{p}.interval")
        if not fields and not doc.silent:
            raise ScenarioError(f"{p}.payload", "must leave at least one field")
        statuses.append(Status(name, fields, interval, doc.silent))
    names = [s.name for s in statuses]

    def index_of(name: Any, where: str) -> int:
        if name not in names:
            raise ScenarioError(where, f"unknown status {name!r} (known: {', '.join(names)})")
        return names.index(name)

    ipath = f"{path}.initial"
    if raw_initial is None:
        initial: tuple[tuple[int, float], ...] = ((0, 1.0),)
    elif isinstance(raw_initial, str):
        initial = ((index_of(raw_initial, ipath), 1.0),)
    elif isinstance(raw_initial, dict) and raw_initial:
        pairs = []
        for k, w in raw_initial.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or w < 0:
                raise ScenarioError(f"{ipath}.{k}", "weight must be a number >= 0")
            pairs.append((index_of(k, f"{ipath}.{k}"), float(w)))
        if sum(w for _, w in pairs) <= 0:
            raise ScenarioError(ipath, "weights must have a positive sum")
        initial = tuple(pairs)
    else:
        raise ScenarioError(ipath, "must be a status name or {status: weight, ...}")

    transitions: list[Transition] = []
    if raw_transitions is not None and not isinstance(raw_transitions, list):
        raise ScenarioError(f"{path}.transitions", "must be a list")
    for i, body in enumerate(raw_transitions or []):
        transitions.append(
            _transition(body, f"{path}.transitions[{i}]", names, index_of, check_topic)
        )
    return StatusModel(tuple(statuses), initial, tuple(transitions))


def _transition(body: Any, p: str, names: list[str], index_of: Any, check_topic: Any) -> Transition:
    doc = convert(body, _TransitionDoc, p)
    to = index_of(doc.to, f"{p}.to")
    froms = [doc.from_] if isinstance(doc.from_, str) else doc.from_
    if not froms:
        raise ScenarioError(f"{p}.from", "must name at least one status (or '*')")
    if "*" in froms:
        sources = frozenset(i for i in range(len(names)) if i != to)
    else:
        sources = frozenset(
            index_of(f, f"{p}.from" if isinstance(doc.from_, str) else f"{p}.from[{j}]")
            for j, f in enumerate(froms)
        )
    given = [k for k in _TRIGGERS if getattr(doc, k) is not None]
    if len(given) != 1:
        raise ScenarioError(
            p, f"must have exactly one of {', '.join(_TRIGGERS)} (got {len(given) or 'none'})"
        )
    if doc.after is not None:
        try:
            ms = parse_duration_ms(doc.after)
        except ValueError as e:
            raise ScenarioError(f"{p}.after", str(e)) from None
        if ms <= 0:
            raise ScenarioError(f"{p}.after", "must be > 0")
        return Transition(sources, to, after_s=ms / 1000)
    if doc.cron is not None:
        try:
            return Transition(sources, to, cron=Cron.parse(doc.cron))
        except CronError as e:
            raise ScenarioError(f"{p}.cron", str(e)) from None
    if doc.on_message is not None:
        m = doc.on_message
        topic, match = (m, None) if isinstance(m, str) else (m.topic, m.match)
        tpath = f"{p}.on_message" if isinstance(m, str) else f"{p}.on_message.topic"
        check_topic(topic, tpath)
        return Transition(sources, to, topic=topic, match=match.encode() if match else None)
    assert doc.probability is not None
    if not 0 < doc.probability <= 1:
        raise ScenarioError(f"{p}.probability", "must be > 0 and <= 1 (chance per send)")
    return Transition(sources, to, probability=doc.probability)
