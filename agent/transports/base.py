"""The transport interface the engine sends through.

The engine knows devices by *slot* (position in the sender's device list) and
never touches a socket: everything a fault or a command needs from the wire
(abrupt drops so the broker fires the LWT, reconnects at a set rate, incoming
commands) is a method here, implemented per transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# (slot, topic, payload) of a message received for a device, e.g. a command.
OnMessage = Callable[[int, str, bytes], None]


@dataclass
class SenderOptions:
    """Per-device extras the engine hands the transport when it opens."""

    # Topics each slot subscribes to once connected (command topics), by slot.
    subscriptions: list[list[str]] = field(default_factory=list)
    on_message: OnMessage | None = None
    # Last will per slot: (topic, payload, qos, retain); None = no will.
    wills: list[tuple[str, bytes, int, bool] | None] = field(default_factory=list)
    # Per-device credentials by slot: (username, password or None); empty list or
    # None entry = the transport's own username/password (template `credentials`).
    credentials: list[tuple[str, str | None] | None] = field(default_factory=list)
    # Called with a slot after each successful (re)connect of its connection (Sparkplug
    # births); and before each connect attempt for the will to carry (bdSeq grows).
    on_connected: Callable[[int], None] | None = None
    will_for: Callable[[int], tuple[str, bytes, int, bool] | None] | None = None
    # MQTT 5 PUBLISH properties per slot (transports.properties.Properties); empty: none.
    properties: list[Any] = field(default_factory=list)


class Sender(Protocol):
    """Delivers payloads for a fixed list of devices (slot = position in that list)."""

    last_error: str
    # Failures found after send() accepted a message (HTTP status >= 400 or a
    # failed request, QoS 0 messages lost with their connection); cumulative.
    # The engine adds them to its own count of refused sends.
    errors: int

    async def open(self) -> None:
        """Start connecting; returns once every device has had its first try."""

    def send(self, slot: int, topic: str, payload: bytes, *, qos: int | None = None) -> bool:
        """Queue one message; False when that device cannot send right now."""

    def is_connected(self, slot: int) -> bool:
        """Whether this device's connection is up (shared: the one connection)."""

    def drop(self, slot: int) -> None:
        """Cut the device's TCP connection without DISCONNECT (the broker fires the
        LWT); it stays down until :meth:`reconnect`."""

    async def reconnect(self, slot: int) -> bool:
        """Connect the device again now; True when it is up."""

    async def close(self) -> None:
        """Disconnect cleanly (no LWT)."""
