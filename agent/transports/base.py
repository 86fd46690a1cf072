"""The transport interface the engine sends through."""

from __future__ import annotations

from typing import Any, Protocol


class Sender(Protocol):
    """Delivers payloads for a fixed list of devices (slot = position in that list)."""

    async def open(self) -> None:
        """Start connecting; returns once every device has had its first try."""

    def send(self, slot: int, topic: str, payload: bytes) -> bool:
        """Queue one message; False when that device cannot send right now."""

    async def close(self) -> None:
        """Disconnect cleanly (no LWT)."""


def open_sender(transport: Any, device_ids: list[str]) -> Sender:
    """Build the sender a template's transport asks for."""
    if transport.mqtt is not None:
        from agent.transports.mqtt import MqttSender

        return MqttSender(transport.mqtt, device_ids)
    from agent.errors import AgentError

    raise AgentError("http transport is not supported by this agent version yet")
