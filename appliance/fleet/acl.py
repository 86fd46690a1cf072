"""Who may touch which control-bus topics, and the password hashes brokers check.

Pure (no I/O): the embedded broker's plugin and the Mosquitto files generated for
production apply the same rules, so they are written once, here.

- an agent may publish, subscribe and receive only under ``mm/v1/agents/{its id}/``;
- the appliance may use all of ``mm/v1/``;
- anonymous clients (the demo's mock traffic on the embedded broker) may use
  everything except ``mm/#``;
- a client id is part of the identity: an agent connects only as
  ``mm-agent-<its id>``, the appliance only as ``mm-appliance-...``, and nobody else
  (anonymous clients included) may take an id of those two families. A broker hands a
  client id to whoever connects with it last, so without this rule one client could
  knock another off the bus.

Passwords are stored as Mosquitto 2's PBKDF2-SHA512 hash (``$7$iterations$salt$hash``),
so one stored hash serves both the embedded broker and a generated Mosquitto
``password_file``; the secret itself is never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from agent import wire

CONTROL_ROOT = "mm"
BUS_PREFIX = "mm/v1/"
APPLIANCE_ROLE = "appliance"
AGENT_ROLE = "agent"
PBKDF2_ITERATIONS = 1000
"""Enough for 192-bit random secrets; Mosquitto reads the count from each hash."""


@dataclass(frozen=True)
class Identity:
    """An authenticated control-bus client; ``None`` stands for an anonymous one."""

    role: Literal["appliance", "agent"]
    agent_id: str = ""

    def __post_init__(self) -> None:
        if self.role == AGENT_ROLE and not valid_agent_id(self.agent_id):
            raise ValueError(f"agent_id: {self.agent_id!r} cannot name an MQTT topic level")


def valid_agent_id(agent_id: str) -> bool:
    return bool(agent_id) and not any(c in agent_id for c in "/+#\0") and agent_id.isprintable()


def _is_control(topic: str) -> bool:
    return topic == CONTROL_ROOT or topic.startswith(CONTROL_ROOT + "/")


def _own_prefix(identity: Identity) -> str:
    if identity.role == APPLIANCE_ROLE:
        return BUS_PREFIX
    return f"{wire.PREFIX}/{identity.agent_id}/"


RESERVED_CLIENT_PREFIXES = (wire.AGENT_CLIENT_PREFIX, wire.APPLIANCE_CLIENT_PREFIX)
"""Client ids of the control bus. Only these two families are reserved, not all of
``mm-``: mock devices are named after their group (a group ``mm-lab`` has devices
``mm-lab-00000``), and the engine's verifying subscribers are ``mm-verify-...``."""


def may_use_client_id(identity: Identity | None, client_id: str) -> bool:
    """May this client connect with ``client_id``?"""
    if identity is None:
        return not client_id.startswith(RESERVED_CLIENT_PREFIXES)
    if identity.role == AGENT_ROLE:
        return client_id == wire.agent_client_id(identity.agent_id)
    return client_id.startswith(wire.APPLIANCE_CLIENT_PREFIX)


def may_publish(identity: Identity | None, topic: str) -> bool:
    """May this client publish to (or receive a message of) the concrete ``topic``?"""
    if identity is None:
        return not _is_control(topic)
    return topic.startswith(_own_prefix(identity))


may_receive = may_publish


def may_subscribe(identity: Identity | None, topic_filter: str) -> bool:
    """May this client subscribe to ``topic_filter``?

    Authenticated clients must stay inside their own prefix (no wildcard may reach
    past it). An anonymous client may subscribe to broad filters such as ``#``:
    what they would deliver from ``mm/`` is withheld message by message
    (:func:`may_receive`), as Mosquitto's ACLs do.
    """
    if identity is None:
        return topic_filter.split("/", 1)[0] != CONTROL_ROOT
    return topic_filter.startswith(_own_prefix(identity))


# ---- password hashes --------------------------------------------------------


def new_password() -> str:
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Mosquitto 2's ``$7$`` format (what ``mosquitto_passwd`` writes)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a ``$7$`` hash (or a legacy bare SHA-256 hex digest)."""
    if stored.startswith("$7$"):
        try:
            _, _, iterations, salt, digest = stored.split("$")
            want = base64.b64decode(digest, validate=True)
            got = hashlib.pbkdf2_hmac(
                "sha512", password.encode(), base64.b64decode(salt, validate=True), int(iterations)
            )
        except ValueError:
            return False
        return hmac.compare_digest(got, want)
    if len(stored) == 64:  # agents enrolled before the $7$ format
        return hmac.compare_digest(hashlib.sha256(password.encode()).hexdigest(), stored)
    return False


def mosquitto_exportable(stored: str) -> bool:
    return stored.startswith("$7$")


# ---- Mosquitto files ----------------------------------------------------------


def mosquitto_password_file(users: list[tuple[str, str]]) -> str:
    """``username:$7$...`` lines for ``password_file`` (users: (name, stored hash))."""
    lines = [f"{name}:{stored}" for name, stored in sorted(users) if mosquitto_exportable(stored)]
    return "\n".join(lines) + ("\n" if lines else "")


def mosquitto_acl_file(appliance_users: list[str], agents: list[tuple[str, str]]) -> str:
    """An ``acl_file`` with the rules above; agents are (mqtt username, agent id).

    The ``pattern`` line covers every agent whose username is its id (all agents
    enrolled now); an explicit ``user`` block is written for any other.
    """
    out = [
        "# Generated by `mockmock mosquitto-config`; regenerate after enrolling agents,",
        "# then reload Mosquitto (SIGHUP) so it rereads this file and the password file.",
        "",
        "# Anonymous clients (only if allow_anonymous is true): anything but the control bus.",
        "topic readwrite #",
        f"topic deny {CONTROL_ROOT}/#",
        "",
        "# Every agent: its own channel only (its username is its agent id).",
        f"pattern readwrite {wire.PREFIX}/%u/#",
    ]
    for user in sorted(appliance_users):
        out += ["", "# The appliance: the whole control bus.", f"user {user}"]
        out.append(f"topic readwrite {BUS_PREFIX}#")
    for username, agent_id in sorted(agents):
        if username != agent_id:
            out += ["", f"user {username}", f"topic readwrite {wire.PREFIX}/{agent_id}/#"]
    return "\n".join(out) + "\n"


def mosquitto_mock_acl_file() -> str:
    """The ACL of an anonymous listener for mock traffic: anything but the control bus.

    Such a listener checks no password, so a client there may claim any username
    (an agent's included): the rules for named clients are the anonymous ones.
    """
    return (
        "\n".join(
            [
                "# Generated by `mockmock mosquitto-config`: the mock-traffic listener.",
                "# Anonymous clients, and clients naming any username (none is checked here):",
                "# everything except the control bus.",
                "topic readwrite #",
                f"topic deny {CONTROL_ROOT}/#",
                "pattern readwrite #",
                f"pattern deny {CONTROL_ROOT}/#",
            ]
        )
        + "\n"
    )


@dataclass(frozen=True)
class Listen:
    """Where a Mosquitto listener binds."""

    host: str
    port: int

    def line(self) -> str:
        return f"listener {self.port} {self.host}" if self.host else f"listener {self.port}"


@dataclass(frozen=True)
class BrokerTLS:
    """The broker's certificate files (paths Mosquitto reads)."""

    certfile: str
    keyfile: str
    cafile: str = ""
    """CA for client certificates (with require_certificate)."""
    require_certificate: bool = False


def mosquitto_conf(
    *,
    folder: str,
    control: Listen,
    tls: BrokerTLS | None,
    mock: Listen | None = None,
    persistence_dir: str | None = "/var/lib/mosquitto/",
) -> str:
    """A complete ``mosquitto.conf`` for the control bus (and optionally mock traffic).

    ``per_listener_settings`` keeps the control listener's rules to itself:
    - every client authenticates (``password_file``) and stays in its ACL;
    - ``use_username_as_clientid``: the broker replaces the client id with the
      username, so a client cannot take another's id and knock it off the bus
      (agents' ids are predictable, their usernames are their own accounts);
    while an optional mock-traffic listener takes anonymous clients, who may use
    anything except ``mm/#``. Mosquitto starts as root and drops to its own user
    before it reads these files: they must be readable by that user.
    """
    out = [
        "# Generated by `mockmock mosquitto-config`; rerun it to regenerate. Use as",
        "# /etc/mosquitto/mosquitto.conf, or run `mosquitto -c` on this file.",
        "per_listener_settings true",
    ]
    if persistence_dir:
        out += ["persistence true", f"persistence_location {persistence_dir.rstrip('/')}/"]
    else:
        out.append("persistence false")
    out += [
        "# A fleet's usage records and their acks: Mosquitto's defaults (20 QoS 1",
        "# messages in flight, 1,000 queued per client) cap what one appliance ingests.",
        "max_inflight_messages 1000",
        "max_queued_messages 100000",
        "",
        "# The mockmock control bus" + (" (TLS)." if tls else " (PLAINTEXT: lab networks only)."),
        control.line(),
        "protocol mqtt",
    ]
    if tls is not None:
        if tls.cafile:
            out.append(f"cafile {tls.cafile}")
        out += [f"certfile {tls.certfile}", f"keyfile {tls.keyfile}", "tls_version tlsv1.2"]
        out.append(f"require_certificate {'true' if tls.require_certificate else 'false'}")
    out += [
        "allow_anonymous false",
        f"password_file {folder}/passwd",
        f"acl_file {folder}/acl",
        "use_username_as_clientid true",
    ]
    if mock is not None:
        out += [
            "",
            "# Mock traffic: anonymous clients, never the control bus (mm/#).",
            mock.line(),
            "protocol mqtt",
            "allow_anonymous true",
            f"acl_file {folder}/acl-mock",
        ]
    return "\n".join(out) + "\n"
