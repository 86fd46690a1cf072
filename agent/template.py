"""Scenario and template documents: schema, validation with exact error paths.

A scenario (YAML or JSON) holds ``templates`` (device types) and ``groups``
(N mocks of a template). Everything a user can get wrong is reported as one
:class:`ScenarioError` whose path names the field, e.g.
``templates.thermo.payload.temp: unknown generator 'unifrom'``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import orjson
import yaml

from agent.errors import ScenarioError
from agent.generators import GENERATORS, check_generator_params

DEFAULT_ID_PATTERN = "{group}-{index:05d}"
TOPIC_FIELDS = {"device_id", "group", "index"}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, None: 1000}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def parse_duration_ms(value: Any) -> int:
    """``500ms``, ``1s``, ``2m``, ``1h``; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 500ms, 1s or 2m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return round(value * 1000)
    if not isinstance(value, str):
        raise ValueError("must be a duration like 500ms, 1s or 2m")
    m = _DURATION.match(value)
    if not m:
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"must not be negative, got {value!r}")
        raise ValueError(f"must be a duration like 500ms, 1s or 2m, got {value!r}")
    return round(float(m.group(1)) * _UNIT_MS[m.group(2)])


# -- schema (what users write) -------------------------------------------------


class _MqttDoc(msgspec.Struct, forbid_unknown_fields=True):
    topic: str
    url: str | None = None
    host: str | None = None
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    qos: Literal[0, 1, 2] = 0
    retain: bool = False
    version: Literal["3.1.1", "5", 5] = "3.1.1"
    connection: Literal["per_device", "shared"] = "per_device"
    username: str | None = None
    password: str | None = None
    keepalive: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 60


class _HttpDoc(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    method: Literal["POST", "PUT", "PATCH", "GET"] = "POST"
    headers: dict[str, str] = {}


class _TransportDoc(msgspec.Struct, forbid_unknown_fields=True):
    mqtt: _MqttDoc | None = None
    http: _HttpDoc | None = None


class _TemplateDoc(msgspec.Struct, forbid_unknown_fields=True):
    transport: _TransportDoc
    payload: dict[str, Any]
    interval: str | int | float = "1s"
    jitter: str | int | float = 0
    id: str = DEFAULT_ID_PATTERN
    description: str = ""


class _GroupDoc(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    template: str
    count: int
    seed: int | None = None
    entitlement: str | None = None


class _ScenarioDoc(msgspec.Struct, forbid_unknown_fields=True):
    templates: dict[str, dict[str, Any]]
    groups: list[dict[str, Any]]


# -- parsed forms (what the engine uses) ---------------------------------------


@dataclass(frozen=True)
class MqttSpec:
    host: str
    port: int
    tls: bool
    topic: str
    qos: int
    retain: bool
    version: str
    connection: str
    username: str | None
    password: str | None
    keepalive: int


@dataclass(frozen=True)
class Transport:
    mqtt: MqttSpec | None = None


@dataclass(frozen=True)
class Field:
    generator: str
    params: Any


@dataclass(frozen=True)
class Template:
    name: str
    raw: dict[str, Any]
    transport: Transport
    interval_ms: int
    jitter_ms: int
    id_pattern: str
    payload: dict[str, Field]

    def to_dict(self) -> dict[str, Any]:
        """The document as the user wrote it (what the appliance stores and sends)."""
        return self.raw


@dataclass(frozen=True)
class Group:
    name: str
    template: str
    count: int
    seed: int | None = None
    entitlement: str | None = None


@dataclass(frozen=True)
class Scenario:
    templates: dict[str, Template] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)


# -- validation ----------------------------------------------------------------

_REWRITES = [
    (re.compile(r"^Expected `(\w+)` >= (\S+)$"), r"must be >= \2"),
    (re.compile(r"^Expected `(\w+)` <= (\S+)$"), r"must be <= \2"),
    (re.compile(r"^Expected `(\w+)` > (\S+)$"), r"must be > \2"),
    (re.compile(r"^Expected `(.+)`, got `(\w+)`$"), r"expected \1, got \2"),
    (re.compile(r"^Object missing required field `(\w+)`$"), r"missing required field '\1'"),
    (re.compile(r"^Object contains unknown field `(\w+)`$"), r"unknown field '\1'"),
    (re.compile(r"^Invalid enum value (.+)$"), r"must be one of the allowed values, got \1"),
]


def _join(path: str, sub: str) -> str:
    if not sub:
        return path
    if not path:
        return sub
    return path + sub if sub.startswith("[") else f"{path}.{sub}"


def _split_msgspec(err: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec says "Expected `int`, got `str` - at `$.count`"; we want (count, message)."""
    text = str(err)
    sub = ""
    m = re.match(r"^(.*) - at `\$(.*)`$", text, re.S)
    if m:
        text, sub = m.group(1), m.group(2).lstrip(".")
    for pattern, repl in _REWRITES:
        if pattern.match(text):
            text = pattern.sub(repl, text)
            break
    return sub, text.replace("`", "")


def convert(raw: Any, typ: Any, path: str) -> Any:
    """msgspec.convert with errors re-raised as ScenarioError under ``path``."""
    try:
        return msgspec.convert(raw, typ)
    except msgspec.ValidationError as e:
        sub, message = _split_msgspec(e)
        raise ScenarioError(_join(path, sub), message) from None


def _check_pattern(pattern: str, path: str) -> None:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as e:
        raise ScenarioError(path, f"bad placeholder: {e}") from None
    for name in names:
        if name not in TOPIC_FIELDS:
            known = ", ".join("{" + n + "}" for n in sorted(TOPIC_FIELDS))
            raise ScenarioError(path, f"unknown placeholder {{{name}}} (known: {known})")
    try:
        pattern.format(device_id="d", group="g", index=0)
    except (ValueError, IndexError) as e:
        raise ScenarioError(path, f"bad placeholder: {e}") from None


def _mqtt_spec(doc: _MqttDoc, path: str) -> MqttSpec:
    host, port, tls = doc.host, doc.port, False
    if doc.url is not None:
        if doc.host is not None:
            raise ScenarioError(path, "give either url or host, not both")
        parts = urlsplit(doc.url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ScenarioError(
                f"{path}.url", f"scheme must be mqtt:// or mqtts://, got {doc.url!r}"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        host = parts.hostname
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ScenarioError(f"{path}.url", f"bad port in {doc.url!r}") from None
    if not host:
        raise ScenarioError(f"{path}.url", "missing broker address (url: mqtt://HOST:PORT)")
    _check_pattern(doc.topic, f"{path}.topic")
    if not doc.topic or "#" in doc.topic or "+" in doc.topic:
        raise ScenarioError(f"{path}.topic", "must be a topic name without wildcards")
    return MqttSpec(
        host=host,
        port=port or 1883,
        tls=tls,
        topic=doc.topic,
        qos=doc.qos,
        retain=doc.retain,
        version=str(doc.version),
        connection=doc.connection,
        username=doc.username,
        password=doc.password,
        keepalive=doc.keepalive,
    )


def _field(raw: Any, path: str) -> Field:
    if not isinstance(raw, dict):
        # Scalars and lists are constants: `fw: "1.4.2"` is `fw: {const: "1.4.2"}`.
        return Field("const", check_generator_params("const", raw, path))
    if len(raw) != 1:
        raise ScenarioError(
            path, f"must name exactly one generator, got {len(raw)} keys ({', '.join(raw)})"
        )
    ((name, params),) = raw.items()
    if name not in GENERATORS:
        known = ", ".join(sorted(GENERATORS))
        raise ScenarioError(path, f"unknown generator {name!r} (known: {known})")
    return Field(name, check_generator_params(name, params, f"{path}.{name}"))


def parse_template(name: str, raw: Any, path: str | None = None) -> Template:
    """Validate one template document; ``path`` prefixes error paths."""
    path = f"templates.{name}" if path is None else path
    if not isinstance(raw, dict):
        raise ScenarioError(path, "must be a mapping")
    doc = convert(raw, _TemplateDoc, path)
    t = doc.transport
    if (t.mqtt is None) == (t.http is None):
        raise ScenarioError(f"{path}.transport", "must have exactly one of mqtt or http")
    if t.http is not None:
        raise ScenarioError(f"{path}.transport.http", "not supported by this version yet")
    assert t.mqtt is not None
    mqtt = _mqtt_spec(t.mqtt, f"{path}.transport.mqtt")
    try:
        interval_ms = parse_duration_ms(doc.interval)
    except ValueError as e:
        raise ScenarioError(f"{path}.interval", str(e)) from None
    if interval_ms < 1:
        raise ScenarioError(f"{path}.interval", "must be at least 1ms")
    try:
        jitter_ms = parse_duration_ms(doc.jitter)
    except ValueError as e:
        raise ScenarioError(f"{path}.jitter", str(e)) from None
    if jitter_ms >= interval_ms and jitter_ms:
        raise ScenarioError(f"{path}.jitter", "must be smaller than the interval")
    _check_pattern(doc.id, f"{path}.id")
    if not doc.payload:
        raise ScenarioError(f"{path}.payload", "must have at least one field")
    payload = {k: _field(v, f"{path}.payload.{k}") for k, v in doc.payload.items()}
    return Template(
        name=name,
        raw=raw,
        transport=Transport(mqtt=mqtt),
        interval_ms=interval_ms,
        jitter_ms=jitter_ms,
        id_pattern=doc.id,
        payload=payload,
    )


def parse_scenario(raw: Any) -> Scenario:
    if not isinstance(raw, dict):
        raise ScenarioError("scenario", "must be a mapping with templates and groups")
    doc = convert(raw, _ScenarioDoc, "")
    if not doc.templates:
        raise ScenarioError("templates", "must define at least one template")
    if not doc.groups:
        raise ScenarioError("groups", "must define at least one group")
    templates: dict[str, Template] = {}
    for name, body in doc.templates.items():
        if not _NAME.match(name):
            raise ScenarioError(f"templates.{name}", "name must be letters, digits, _ . -")
        templates[name] = parse_template(name, body)
    groups: list[Group] = []
    seen: set[str] = set()
    for i, body in enumerate(doc.groups):
        path = f"groups[{i}]"
        g = convert(body, _GroupDoc, path)
        if not _NAME.match(g.name):
            raise ScenarioError(f"{path}.name", "must be letters, digits, _ . - (max 63)")
        if g.name in seen:
            raise ScenarioError(f"{path}.name", f"duplicate group name {g.name!r}")
        seen.add(g.name)
        if g.template not in templates:
            raise ScenarioError(f"{path}.template", f"unknown template {g.template!r}")
        if g.count < 1:
            raise ScenarioError(f"{path}.count", f"must be >= 1, got {g.count}")
        if g.count > 1_000_000:
            raise ScenarioError(f"{path}.count", "must be <= 1000000")
        groups.append(Group(g.name, g.template, g.count, g.seed, g.entitlement))
    return Scenario(templates=templates, groups=groups)


def load_scenario(path: Path | str) -> Scenario:
    """Read a YAML or JSON scenario file; every problem is one ScenarioError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ScenarioError(str(p), f"cannot read: {e.strerror or e}") from None
    try:
        raw = orjson.loads(data) if p.suffix.lower() == ".json" else yaml.safe_load(data)
    except orjson.JSONDecodeError as e:
        raise ScenarioError(str(p), f"invalid JSON: {e}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise ScenarioError(str(p), f"invalid YAML{at}: {problem}") from None
    return parse_scenario(raw)


# -- per-device expansion --------------------------------------------------------


def device_id(template: Template, group: str, index: int) -> str:
    return template.id_pattern.format(group=group, index=index, device_id="")


def expand_topic(pattern: str, *, device_id: str, group: str, index: int) -> str:
    return pattern.format(device_id=device_id, group=group, index=index)
