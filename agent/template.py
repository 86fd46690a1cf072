"""Scenario and template documents: schema, validation with exact error paths.

A scenario (YAML or JSON) holds ``templates`` (device types) and ``groups``
(N mocks of a template). Everything a user can get wrong is reported as one
:class:`ScenarioError` whose path names the field, e.g.
``templates.thermo.payload.temp: unknown generator 'unifrom'``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import orjson
import yaml

from agent.commands import Commands, parse_commands
from agent.encodings import JSON, Encoding, check_payload, parse_encoding, try_encode
from agent.errors import AgentError, ScenarioError
from agent.faults import Faults, parse_faults
from agent.generators import (
    bounds,
    check_format_refs,
    parse_field,
    read_replay_file,
    sample_values,
)
from agent.limits import (
    MAX_COUNT,
    Seed,
    check_document,
    check_text,
    is_name,
    placeholder_problem,
)
from agent.sparkplug import Sparkplug, parse_sparkplug
from agent.spec import Field, convert, parse_duration_ms
from agent.statuses import StatusModel, parse_statuses
from agent.streams import Stream, parse_streams
from agent.timing import Cron, CronError, zone
from agent.tls import check_pem, has_key, is_pem

DEFAULT_ID_PATTERN = "{group}-{index:05d}"
SCHEMA_VERSIONS = (1,)
TOPIC_FIELDS = {"device_id", "group", "index"}

# The one table of transport URL schemes: (transport, TLS, default port).
SCHEMES = {
    "mqtt": ("mqtt", False, 1883),
    "mqtts": ("mqtt", True, 8883),
    "ws": ("mqtt", False, 80),  # MQTT over WebSocket, at the URL's path (default /mqtt)
    "wss": ("mqtt", True, 443),
    "http": ("http", False, 80),
    "https": ("http", True, 443),
}


# -- schema (what users write) -------------------------------------------------


class _WillDoc(msgspec.Struct, forbid_unknown_fields=True):
    topic: str
    payload: str | dict[str, Any] | list[Any] = "offline"
    qos: Literal[0, 1, 2] = 1
    retain: bool = False


class _PropertiesDoc(msgspec.Struct, forbid_unknown_fields=True):
    user_properties: dict[str, str] = {}
    content_type: str | None = None
    message_expiry: str | int | float | None = None
    response_topic: str | None = None


class _MqttDoc(msgspec.Struct, forbid_unknown_fields=True):
    topic: str = ""  # required, except for sparkplug (its topics are the spec's)
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
    ca: str | None = None  # CA bundle (PEM) that signed the broker's certificate
    cert: str | None = None  # client certificate (PEM) for mutual TLS
    key: str | None = None  # its private key, when not inside ``cert``
    insecure: bool = False  # TLS without verifying the broker (lab only)
    will: _WillDoc | None = None  # last will, placeholders expand per device
    clean_start: bool = True  # false: a persistent session (3.1.1: clean session off)
    session_expiry: str | int | float | None = None  # MQTT 5: how long the broker keeps it
    properties: _PropertiesDoc | None = None  # MQTT 5 PUBLISH properties, with placeholders
    identity: Literal["shared", "per_device"] = "shared"  # per_device: agent/identity.py


class _HttpDoc(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    method: Literal["POST", "PUT", "PATCH", "GET"] = "POST"
    headers: dict[str, str] = {}
    connections: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    timeout: str | int | float = "10s"
    ca: str | None = None
    insecure: bool = False


class _TransportDoc(msgspec.Struct, forbid_unknown_fields=True):
    mqtt: _MqttDoc | None = None
    http: _HttpDoc | None = None


class _SasDoc(msgspec.Struct, forbid_unknown_fields=True):
    key: str  # base64: the device's key, or a group enrollment key (group_key: true)
    group_key: bool = False
    resource: str = "{host}/devices/{device_id}"
    ttl: str | int | float = "24h"
    policy: str | None = None


class _CredentialsDoc(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str | None = None
    sas: _SasDoc | None = None  # Azure IoT Hub: a SAS token per device as the password


class _BurstDoc(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    every: str | int | float


class _VerifyDoc(msgspec.Struct, forbid_unknown_fields=True):
    qos: Literal[0, 1, 2] = 1


class _TemplateDoc(msgspec.Struct, forbid_unknown_fields=True):
    transport: _TransportDoc
    payload: dict[str, Any]
    schema: Any = 1
    interval: str | int | float = "1s"
    jitter: str | int | float = 0
    arrival: Literal["fixed", "poisson"] = "fixed"
    burst: _BurstDoc | None = None
    ramp_up: str | int | float | None = None
    windows: list[str] | None = None
    timezone: str | None = None
    id: str = DEFAULT_ID_PATTERN
    credentials: _CredentialsDoc | None = None
    description: str = ""
    statuses: Any = None
    initial: Any = None
    transitions: Any = None
    faults: Any = None
    commands: Any = None
    verify: bool | _VerifyDoc = False
    encoding: Any = None  # agent/encodings.py
    streams: Any = None  # agent/streams.py
    sparkplug: Any = None  # agent/sparkplug.py
    identities: Any = None  # {file: devices.csv} -> rows: one device per row (id, ...)


class _GroupDoc(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    template: str
    count: int
    seed: Seed | None = None
    entitlement: str | None = None


class _ScenarioDoc(msgspec.Struct, forbid_unknown_fields=True):
    templates: dict[str, dict[str, Any]]
    groups: list[dict[str, Any]]
    schema: Any = 1


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
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure: bool = False
    # (topic pattern, payload pattern, qos, retain); placeholders expand per device
    will: tuple[str, str, int, bool] | None = None
    clean_start: bool = True
    session_expiry_s: int | None = None  # MQTT 5 Session Expiry Interval
    ws_path: str | None = None  # MQTT over WebSocket (ws://, wss://) at this path
    identity: str = "shared"  # per_device: a client certificate per device (CN = id)
    # MQTT 5 PUBLISH properties as patterns: (user pairs, content type, expiry s, response)
    properties: tuple[tuple[tuple[str, str], ...], str | None, int | None, str | None] | None = None


@dataclass(frozen=True)
class HttpSpec:
    host: str
    port: int
    tls: bool
    path: str  # path and query; placeholders like a topic, expanded per device
    method: str
    headers: dict[str, str]  # values may hold {device_id}
    connections: int  # keep-alive pool size = requests in flight at once
    timeout_ms: int
    ca: str | None = None
    insecure: bool = False

    @property
    def topic(self) -> str:
        # The engine expands a per-device "topic"; for HTTP that is the path.
        return self.path


@dataclass(frozen=True)
class Transport:
    mqtt: MqttSpec | None = None
    http: HttpSpec | None = None

    @property
    def topic(self) -> str:
        """The per-device address pattern: MQTT topic or HTTP path."""
        if self.mqtt is not None:
            return self.mqtt.topic
        return self.http.path if self.http is not None else ""


@dataclass(frozen=True)
class Timing:
    arrival: str = "fixed"  # fixed | poisson
    burst: tuple[int, int] | None = None  # (messages, every ms)
    ramp_up_ms: int | None = None  # None: first sends spread over one interval
    windows: tuple[Cron, ...] = ()
    timezone: str | None = None


@dataclass(frozen=True)
class Template:
    name: str
    raw: dict[str, Any]
    transport: Transport
    interval_ms: int
    jitter_ms: int
    id_pattern: str
    payload: dict[str, Field]
    timing: Timing = field(default_factory=Timing)
    credentials: tuple[str, str | None] | None = None  # patterns
    # Azure SAS: (key, group key?, resource pattern, ttl s, policy); the password per device
    sas: tuple[str, bool, str, int, str | None] | None = None
    # Device identities from a CSV/JSONL file: one row per index (id, username, ...)
    identities: tuple[dict[str, Any], ...] = ()
    statuses: StatusModel | None = None
    faults: Faults = field(default_factory=Faults)
    commands: Commands | None = None
    verify_qos: int | None = None  # None: verification off
    encoding: Encoding = JSON
    streams: tuple[Stream, ...] = ()
    sparkplug: Sparkplug | None = None

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


def _check_pattern(pattern: str, path: str, *, printable: bool = True) -> None:
    if printable:
        check_text(pattern, path)
    problem = placeholder_problem(pattern)
    if problem is not None:
        raise ScenarioError(path, problem)
    names = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    for name in names:
        if name not in TOPIC_FIELDS:
            known = ", ".join("{" + n + "}" for n in sorted(TOPIC_FIELDS))
            raise ScenarioError(path, f"unknown placeholder {{{name}}} (known: {known})")
    try:
        pattern.format(device_id="d", group="g", index=0)
    except (ValueError, IndexError) as e:
        raise ScenarioError(path, f"bad placeholder: {e}") from None


def _mqtt_spec(doc: _MqttDoc, path: str, *, sparkplug: bool = False) -> MqttSpec:
    host, port, tls = doc.host, doc.port, False
    ws_path: str | None = None
    if not doc.topic and not sparkplug:
        raise ScenarioError(path, "missing required field 'topic'")
    if doc.url is not None:
        if doc.host is not None:
            raise ScenarioError(path, "give either url or host, not both")
        host, port, tls = _url(doc.url, "mqtt", f"{path}.url")
        parts = urlsplit(doc.url)
        if parts.scheme in ("ws", "wss"):
            ws_path = parts.path or "/mqtt"
            if any(c in ws_path for c in " \r\n") or parts.query:
                raise ScenarioError(f"{path}.url", "the websocket path must be a plain path")
    elif host is not None:
        check_text(host, f"{path}.host", max_len=253)
    if not host:
        raise ScenarioError(f"{path}.url", "missing broker address (url: mqtt://HOST:PORT)")
    _check_pattern(doc.topic, f"{path}.topic")
    if sparkplug and doc.topic:
        raise ScenarioError(f"{path}.topic", "sparkplug sends on the spBv1.0/... topics only")
    if not sparkplug and ("#" in doc.topic or "+" in doc.topic):
        raise ScenarioError(f"{path}.topic", "must be a topic name without wildcards")
    if doc.username is not None:
        check_text(doc.username, f"{path}.username")
    _check_tls(doc, tls, path)
    expiry = _session_expiry(doc, path)
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
        ca=doc.ca,
        cert=doc.cert,
        key=doc.key,
        insecure=doc.insecure,
        clean_start=doc.clean_start,
        session_expiry_s=expiry,
        ws_path=ws_path,
        properties=_properties(doc, f"{path}.properties"),
        identity=_identity(doc, tls, path),
    )


def _url(url: str, transport: str, path: str) -> tuple[str | None, int, bool]:
    """(host, port, tls) of a transport URL; the scheme must be one of this transport's."""
    check_text(url, path)
    try:
        parts = urlsplit(url)
    except ValueError as e:  # "Invalid IPv6 URL"
        raise ScenarioError(path, f"not a URL: {e}") from None
    kind, tls, default_port = SCHEMES.get(parts.scheme, ("", False, 0))
    if kind != transport:
        allowed = " or ".join(f"{s}://" for s, (k, _, _) in SCHEMES.items() if k == transport)
        raise ScenarioError(path, f"scheme must be {allowed}, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ScenarioError(path, f"bad port in {url!r}") from None
    if port == 0:
        raise ScenarioError(path, f"port must be 1-65535, got 0 in {url!r}")
    return parts.hostname, port or default_port, tls


def _identity(doc: _MqttDoc, tls: bool, path: str) -> str:
    if doc.identity == "per_device":
        if not tls:
            raise ScenarioError(f"{path}.identity", "only with TLS (url: mqtts:// or wss://...)")
        if doc.cert or doc.key:
            raise ScenarioError(f"{path}.identity", "give either identity or cert/key, not both")
    return doc.identity


def _properties(
    doc: _MqttDoc, path: str
) -> tuple[tuple[tuple[str, str], ...], str | None, int | None, str | None] | None:
    p = doc.properties
    if p is None:
        return None
    if str(doc.version) != "5":
        raise ScenarioError(path, "MQTT 5 only (version: 5)")
    for k, v in p.user_properties.items():
        _check_pattern(k, f"{path}.user_properties.{k}")
        _check_pattern(v, f"{path}.user_properties.{k}")
    for name in ("content_type", "response_topic"):
        value = getattr(p, name)
        if value is not None:
            _check_pattern(value, f"{path}.{name}")
    if p.response_topic is not None and ("#" in p.response_topic or "+" in p.response_topic):
        raise ScenarioError(f"{path}.response_topic", "must be a topic name without wildcards")
    expiry = None
    if p.message_expiry is not None:
        try:
            expiry = parse_duration_ms(p.message_expiry) // 1000
        except ValueError as e:
            raise ScenarioError(f"{path}.message_expiry", str(e)) from None
        if not 1 <= expiry <= 0xFFFFFFFF:
            raise ScenarioError(f"{path}.message_expiry", "must be between 1s and 4294967295s")
    return (tuple(p.user_properties.items()), p.content_type, expiry, p.response_topic)


SESSION_EXPIRY_DEFAULT_S = 3600  # MQTT 5 persistent sessions, unless session_expiry says


def _session_expiry(doc: _MqttDoc, path: str) -> int | None:
    """Seconds the broker keeps a v5 session after a disconnect (None: not sent)."""
    v5 = str(doc.version) == "5"
    if doc.session_expiry is None:
        return SESSION_EXPIRY_DEFAULT_S if v5 and not doc.clean_start else None
    where = f"{path}.session_expiry"
    if not v5:
        raise ScenarioError(where, "only with version: 5 (a 3.1.1 session lasts until reset)")
    try:
        ms = parse_duration_ms(doc.session_expiry)
    except ValueError as e:
        raise ScenarioError(where, str(e)) from None
    if ms // 1000 > 0xFFFFFFFF:
        raise ScenarioError(where, "must be at most 4294967295s (about 136 years)")
    return ms // 1000


def _check_tls(doc: Any, tls: bool, path: str) -> None:
    """ca/cert/key are inline PEM (never a file path), and only make sense over TLS."""
    scheme = "mqtts:// or wss://" if isinstance(doc, _MqttDoc) else "https://"
    for name in ("ca", "cert", "key", "insecure"):
        value = getattr(doc, name, None)
        if not value:
            continue
        if not tls:
            raise ScenarioError(f"{path}.{name}", f"only with TLS (url: {scheme}...)")
        if name != "insecure":
            check_pem(name, value, path)
    key, cert = getattr(doc, "key", None), getattr(doc, "cert", None)
    if key and not cert:
        raise ScenarioError(f"{path}.key", "needs cert (the client certificate)")
    if cert and not key and not has_key(cert):
        raise ScenarioError(f"{path}.cert", "no private key in it: give key (PEM) as well")


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {"content-length", "transfer-encoding", "connection"}


def _http_spec(doc: _HttpDoc, path: str) -> HttpSpec:
    host, port, tls = _url(doc.url, "http", f"{path}.url")
    if not host:
        raise ScenarioError(f"{path}.url", "missing host (url: http://HOST:PORT/PATH)")
    parts = urlsplit(doc.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in target for c in " \r\n"):
        raise ScenarioError(f"{path}.url", "path must not contain spaces or line breaks")
    _check_pattern(target, f"{path}.url")
    for name, value in doc.headers.items():
        where = f"{path}.headers.{name}"
        if not _HEADER_NAME.match(name):
            raise ScenarioError(where, "not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ScenarioError(where, "set by the agent (keep-alive, Content-Length)")
        if "\r" in value or "\n" in value:
            raise ScenarioError(where, "must not contain line breaks")
        check_text(value, where)
        problem = placeholder_problem(value)
        if problem is not None:
            raise ScenarioError(where, problem)
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
            value.format(device_id="d")
        except (ValueError, IndexError, KeyError):
            fields = {"?"}
        if fields - {"device_id"}:
            raise ScenarioError(where, "the only placeholder allowed here is {device_id}")
    try:
        timeout_ms = parse_duration_ms(doc.timeout)
    except ValueError as e:
        raise ScenarioError(f"{path}.timeout", str(e)) from None
    if timeout_ms < 1:
        raise ScenarioError(f"{path}.timeout", "must be at least 1ms")
    _check_tls(doc, tls, path)
    return HttpSpec(
        host=host,
        port=port,
        tls=tls,
        path=target,
        method=doc.method,
        headers=dict(doc.headers),
        connections=doc.connections,
        timeout_ms=timeout_ms,
        ca=doc.ca,
        insecure=doc.insecure,
    )


def parse_template(name: str, raw: Any, path: str | None = None) -> Template:
    """Validate one template document; ``path`` prefixes error paths."""
    path = f"templates.{name}" if path is None else path
    if not is_name(name):
        raise ScenarioError(path, "name must be letters, digits, _ . - (max 63)")
    if not isinstance(raw, dict):
        raise ScenarioError(path, "must be a mapping")
    check_document(raw, path)
    doc = convert(raw, _TemplateDoc, path)
    t = doc.transport
    if (t.mqtt is None) == (t.http is None):
        raise ScenarioError(f"{path}.transport", "must have exactly one of mqtt or http")
    if t.http is not None:
        transport = Transport(http=_http_spec(t.http, f"{path}.transport.http"))
    else:
        assert t.mqtt is not None
        transport = Transport(
            mqtt=_mqtt_spec(t.mqtt, f"{path}.transport.mqtt", sparkplug=doc.sparkplug is not None)
        )
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
    payload = {k: parse_field(v, f"{path}.payload.{k}") for k, v in doc.payload.items()}
    _check_schema(doc.schema, f"{path}.schema")
    if t.mqtt is not None and t.mqtt.will is not None and transport.mqtt is not None:
        transport = Transport(mqtt=replace(transport.mqtt, will=_will(t.mqtt.will, path)))
    credentials = None
    if doc.credentials is not None:
        cpath = f"{path}.credentials"
        _check_pattern(doc.credentials.username, f"{cpath}.username")
        if doc.credentials.password is not None:
            _check_pattern(doc.credentials.password, f"{cpath}.password")
        credentials = (doc.credentials.username, doc.credentials.password)
    sas = _sas(doc.credentials, path, transport)
    identities = _identities(doc.identities, f"{path}.identities")
    statuses = parse_statuses(
        doc.statuses,
        doc.initial,
        doc.transitions,
        path=path,
        payload=payload,
        parse_field=parse_field,
        parse_interval=_interval,
        check_topic=_check_topic,
    )
    bounded = {k for k, f in payload.items() if bounds(f) is not None}
    faults = parse_faults(doc.faults, f"{path}.faults", payload, bounded)
    commands = parse_commands(
        doc.commands, f"{path}.commands", _check_topic, [s.name for s in statuses.statuses]
    )
    verify_qos = None
    if doc.verify is not False:
        verify_qos = 1 if doc.verify is True else doc.verify.qos  # type: ignore[union-attr]
    encoding, streams = _payload_extras(doc, path, statuses, verify_qos, transport.topic)
    sparkplug = _sparkplug(doc, path, transport, commands, statuses)
    if transport.mqtt is None:
        # These need a broker connection per device (or a subscriber): MQTT only.
        for key, used in (
            ("commands", commands is not None),
            ("verify", verify_qos is not None),
            ("faults.tcp_drop", faults.tcp_drop is not None),
            ("faults.reconnect_storm", faults.reconnect_storm is not None),
            ("transitions", any(tr.topic for tr in statuses.transitions)),
        ):
            if used:
                raise ScenarioError(f"{path}.{key}", "needs an mqtt transport")
    return Template(
        name=name,
        raw=raw,
        transport=transport,
        interval_ms=interval_ms,
        jitter_ms=jitter_ms,
        id_pattern=doc.id,
        payload=payload,
        timing=_timing(doc, path, interval_ms),
        credentials=credentials,
        sas=sas,
        identities=identities,
        statuses=statuses,
        faults=faults,
        commands=commands,
        verify_qos=verify_qos,
        encoding=encoding,
        streams=streams,
        sparkplug=sparkplug,
    )


def _sparkplug(
    doc: _TemplateDoc, path: str, transport: Transport, commands: Any, statuses: StatusModel
) -> Sparkplug | None:
    sp = parse_sparkplug(doc.sparkplug, f"{path}.sparkplug", parse_field)
    if sp is None:
        return None
    if transport.mqtt is None:
        raise ScenarioError(f"{path}.sparkplug", "needs an mqtt transport")
    if transport.mqtt.connection != "per_device":
        raise ScenarioError(f"{path}.transport.mqtt.connection", "sparkplug: per_device only")
    for key, used in (
        ("verify", doc.verify is not False),
        ("encoding", doc.encoding is not None),
        ("streams", doc.streams is not None),
        ("commands", commands is not None),
        ("transport.mqtt.will", transport.mqtt.will is not None),
        ("transitions", any(tr.topic for tr in statuses.transitions)),
    ):
        if used:
            raise ScenarioError(f"{path}.{key}", "not with sparkplug (it has its own)")
    return sp


def _payload_extras(
    doc: _TemplateDoc, path: str, statuses: StatusModel, verify_qos: int | None, topic: str
) -> tuple[Encoding, tuple[Stream, ...]]:
    """Format fields, the encoding and the extra streams (checked per status)."""
    encoding = parse_encoding(doc.encoding, f"{path}.encoding")
    if verify_qos is not None and not encoding.json:
        raise ScenarioError(f"{path}.verify", "needs encoding: json (the mark is a JSON field)")
    for i, st in enumerate(statuses.statuses):
        where = f"{path}.payload" if i == 0 else f"{path}.statuses.{st.name}.payload"
        check_format_refs(st.payload, where)
        check_payload(encoding, st.payload, where)
        if not encoding.json and st.payload:
            try_encode(encoding, sample_values(st.payload), where)
    streams = parse_streams(
        doc.streams,
        f"{path}.streams",
        main_topic=topic,
        parse_field=parse_field,
        parse_interval=_interval,
        check_topic=_check_topic,
        check_fields=check_format_refs,
    )
    return encoding, streams


_field = parse_field  # the name the first version used


def _check_schema(value: Any, path: str) -> None:
    if isinstance(value, bool) or value not in SCHEMA_VERSIONS:
        known = ", ".join(map(str, SCHEMA_VERSIONS))
        raise ScenarioError(
            path, f"unsupported schema version {value!r} (this agent knows {known})"
        )


def _interval(value: Any, path: str) -> int:
    try:
        ms = parse_duration_ms(value)
    except ValueError as e:
        raise ScenarioError(path, str(e)) from None
    if ms < 1:
        raise ScenarioError(path, "must be at least 1ms")
    return ms


def _check_topic(topic: str, path: str) -> None:
    _check_pattern(topic, path)
    if not topic or "#" in topic or "+" in topic:
        raise ScenarioError(path, "must be a topic name without wildcards")


def _will(doc: _WillDoc, path: str) -> tuple[str, str, int, bool]:
    wpath = f"{path}.transport.mqtt.will"
    _check_topic(doc.topic, f"{wpath}.topic")
    if isinstance(doc.payload, str):
        payload = doc.payload
        _check_pattern(payload, f"{wpath}.payload", printable=False)
    else:
        # A JSON will is sent as is; braces in it are not placeholders.
        payload = orjson.dumps(doc.payload).decode().replace("{", "{{").replace("}", "}}")
    return (doc.topic, payload, doc.qos, doc.retain)


def _timing(doc: _TemplateDoc, path: str, interval_ms: int) -> Timing:
    burst = None
    if doc.burst is not None:
        if not 1 <= doc.burst.count <= 1000:
            raise ScenarioError(f"{path}.burst.count", "must be between 1 and 1000")
        burst = (doc.burst.count, _interval(doc.burst.every, f"{path}.burst.every"))
    ramp = None
    if doc.ramp_up is not None:
        try:
            ramp = parse_duration_ms(doc.ramp_up)
        except ValueError as e:
            raise ScenarioError(f"{path}.ramp_up", str(e)) from None
    if doc.timezone is not None:
        try:
            zone(doc.timezone)
        except (KeyError, ValueError):
            raise ScenarioError(
                f"{path}.timezone", f"unknown time zone {doc.timezone!r} (IANA, e.g. Asia/Tokyo)"
            ) from None
    windows: list[Cron] = []
    for i, text in enumerate(doc.windows or []):
        try:
            windows.append(Cron.parse(text))
        except CronError as e:
            raise ScenarioError(f"{path}.windows[{i}]", str(e)) from None
    if doc.windows is not None and not windows:
        raise ScenarioError(f"{path}.windows", "must list at least one cron expression")
    if doc.arrival == "poisson" and doc.jitter:
        raise ScenarioError(f"{path}.jitter", "Poisson arrivals are random already; drop jitter")
    return Timing(doc.arrival, burst, ramp, tuple(windows), doc.timezone)


def parse_scenario(raw: Any, base_dir: Path | None = None) -> Scenario:
    """Validate a whole scenario. ``base_dir`` (the scenario file's folder) allows
    ``replay: {file: ...}``: the rows are read and put inline into the templates,
    so the appliance stores them and agents receive them."""
    if not isinstance(raw, dict):
        raise ScenarioError("scenario", "must be a mapping with templates and groups")
    check_document(raw, "")
    doc = convert(raw, _ScenarioDoc, "")
    _check_schema(doc.schema, "schema")
    if not doc.templates:
        raise ScenarioError("templates", "must define at least one template")
    if not doc.groups:
        raise ScenarioError("groups", "must define at least one group")
    templates: dict[str, Template] = {}
    for name, body in doc.templates.items():
        if not is_name(name):
            raise ScenarioError(f"templates.{name}", "name must be letters, digits, _ . -")
        if base_dir is not None:
            body = _inline_files(body, base_dir, f"templates.{name}")
            body = _inline_tls(body, base_dir, f"templates.{name}")
        templates[name] = parse_template(name, body)
    groups: list[Group] = []
    seen: set[str] = set()
    for i, body in enumerate(doc.groups):
        path = f"groups[{i}]"
        g = convert(body, _GroupDoc, path)
        if not is_name(g.name):
            raise ScenarioError(f"{path}.name", "must be letters, digits, _ . - (max 63)")
        if g.name in seen:
            raise ScenarioError(f"{path}.name", f"duplicate group name {g.name!r}")
        seen.add(g.name)
        if g.template not in templates:
            raise ScenarioError(f"{path}.template", f"unknown template {g.template!r}")
        if g.count < 1:
            raise ScenarioError(f"{path}.count", f"must be >= 1, got {g.count}")
        if g.count > MAX_COUNT:
            raise ScenarioError(f"{path}.count", f"must be <= {MAX_COUNT}")
        rows = templates[g.template].identities
        if rows and g.count > len(rows):
            raise ScenarioError(
                f"{path}.count",
                f"must be <= {len(rows)} (the rows of templates.{g.template}.identities)",
            )
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
    return parse_scenario(raw, base_dir=p.parent)


def _inline_tls(body: Any, base_dir: Path, path: str) -> Any:
    """A copy of a template with its TLS files (``ca``/``cert``/``key``) read into PEM text.

    Only the command line does this, for files beside the scenario; the appliance and
    agents accept PEM text alone (agent.tls)."""
    transport = body.get("transport") if isinstance(body, dict) else None
    if not isinstance(transport, dict):
        return body
    out = dict(transport)
    for kind, doc in transport.items():
        if not isinstance(doc, dict):
            continue
        doc = dict(doc)
        for key in ("ca", "cert", "key"):
            value = doc.get(key)
            if isinstance(value, str) and value and not is_pem(value):
                try:
                    doc[key] = (base_dir / value).read_text()
                except (OSError, UnicodeDecodeError) as e:
                    why = getattr(e, "strerror", None) or e
                    raise ScenarioError(
                        f"{path}.transport.{kind}.{key}", f"cannot read {value}: {why}"
                    ) from None
        out[kind] = doc
    return {**body, "transport": out}


def _inline_proto(doc: dict[str, Any], base_dir: Path, path: str) -> dict[str, Any]:
    """``protobuf: {file: F}`` with the .proto's source as ``schema`` instead."""
    if "schema" in doc:
        raise ScenarioError(f"{path}.schema", "give either file or schema, not both")
    f = base_dir / doc["file"]
    try:
        text = f.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}.file", f"cannot read {str(f)!r}: {e}") from None
    return {**{k: v for k, v in doc.items() if k != "file"}, "schema": text}


def _inline_files(node: Any, base_dir: Path, path: str) -> Any:
    """A copy of ``node`` with every ``replay: {file: F}`` replaced by ``rows``."""
    if isinstance(node, list):
        return [_inline_files(v, base_dir, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[Any, Any] = {}
    for k, v in node.items():
        if k == "const":
            out[k] = v  # a constant is data, never a generator
        elif k == "identities" and isinstance(v, dict) and isinstance(v.get("file"), str):
            if "rows" in v:
                raise ScenarioError(f"{path}.identities.rows", "give either file or rows")
            try:
                out[k] = {"rows": read_replay_file(base_dir / v["file"])}
            except ValueError as e:
                raise ScenarioError(f"{path}.identities.file", str(e)) from None
        elif k == "protobuf" and isinstance(v, dict) and isinstance(v.get("file"), str):
            out[k] = _inline_proto(v, base_dir, f"{path}.protobuf")
        elif k == "replay" and isinstance(v, dict) and isinstance(v.get("file"), str):
            rpath = f"{path}.replay"
            if "rows" in v:
                raise ScenarioError(f"{rpath}.rows", "give either file or rows, not both")
            try:
                rows = read_replay_file(base_dir / v["file"])
            except ValueError as e:
                raise ScenarioError(f"{rpath}.file", str(e)) from None
            out[k] = {**{kk: vv for kk, vv in v.items() if kk != "file"}, "rows": rows}
        else:
            out[k] = _inline_files(v, base_dir, f"{path}.{k}")
    return out


# -- per-device expansion --------------------------------------------------------


def device_id(template: Template, group: str, index: int) -> str:
    if template.identities:
        rows = template.identities
        if index >= len(rows):
            raise AgentError(
                f"template {template.name}: device {index} has no row in identities "
                f"({len(rows)} rows)"
            )
        return str(rows[index]["id"])
    return template.id_pattern.format(group=group, index=index, device_id="")


MAX_IDENTITIES = 1_000_000


def _identities(raw: Any, path: str) -> tuple[dict[str, Any], ...]:
    """Rows of ``identities: {rows: [...]}`` (a file is inlined as rows on load)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict) or set(raw) - {"rows", "file"}:
        raise ScenarioError(path, "must be {file: devices.csv} (or {rows: [...]})")
    if "file" in raw:
        raise ScenarioError(
            f"{path}.file", "is only read from a scenario file; send the rows inline as rows"
        )
    rows = raw.get("rows")
    if not isinstance(rows, list) or not rows:
        raise ScenarioError(f"{path}.rows", "must list at least one device")
    if len(rows) > MAX_IDENTITIES:
        raise ScenarioError(f"{path}.rows", f"at most {MAX_IDENTITIES} devices")
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = f"{path}.rows[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("id"), str | int) or row["id"] == "":
            raise ScenarioError(where, "each row needs an id (a column named id)")
        ident = str(row["id"])
        if any(c in ident for c in "/+#") or not ident.isprintable():
            raise ScenarioError(f"{where}.id", f"{ident!r} cannot be a topic level or client id")
        if ident in seen:
            raise ScenarioError(f"{where}.id", f"duplicate device id {ident!r}")
        seen.add(ident)
        for k in ("username", "password"):
            if row.get(k) is not None and not isinstance(row[k], str):
                row = {**row, k: str(row[k])}
                rows[i] = row
    return tuple(rows)


def _sas(
    doc: _CredentialsDoc | None, path: str, transport: Transport
) -> tuple[str, bool, str, int, str | None] | None:
    if doc is None or doc.sas is None:
        return None
    p = f"{path}.credentials.sas"
    if doc.password is not None:
        raise ScenarioError(f"{path}.credentials", "give either password or sas, not both")
    import base64
    import binascii

    try:
        base64.b64decode(doc.sas.key, validate=True)
    except (binascii.Error, ValueError):
        raise ScenarioError(f"{p}.key", "must be base64 (the key Azure shows)") from None
    names = {f for _, f, _, _ in string.Formatter().parse(doc.sas.resource) if f is not None}
    if names - {"host", "device_id"}:
        raise ScenarioError(f"{p}.resource", "the placeholders are {host} and {device_id}")
    try:
        ttl = parse_duration_ms(doc.sas.ttl) // 1000
    except ValueError as e:
        raise ScenarioError(f"{p}.ttl", str(e)) from None
    if not 60 <= ttl <= 366 * 86400:
        raise ScenarioError(f"{p}.ttl", "must be between 1m and 366 days")
    if transport.mqtt is None:
        raise ScenarioError(p, "needs an mqtt transport")
    return (doc.sas.key, doc.sas.group_key, doc.sas.resource, ttl, doc.sas.policy)


def expand_topic(pattern: str, *, device_id: str, group: str, index: int) -> str:
    return pattern.format(device_id=device_id, group=group, index=index)
