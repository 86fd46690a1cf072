"""Data-plane transports: how mock traffic reaches the system under test.

One small interface (``Sender``) so the engine does not care whether a device
speaks MQTT or HTTP, and so the MQTT client can be chosen by measurement.
"""

from __future__ import annotations

from typing import Any

from agent.errors import AgentError
from agent.transports.base import Sender, SenderOptions

__all__ = ["Sender", "open_sender"]


def open_sender(
    transport: Any, device_ids: list[str], options: SenderOptions | None = None
) -> Sender:
    """Build the sender a template's transport asks for.

    Here, not in ``base``, so the interface does not import its implementations; each is
    imported only when a template asks for it (an HTTP-only agent never loads the MQTT client).
    """
    options = options or SenderOptions()
    if transport.mqtt is not None:
        from agent.transports.mqtt import MqttSender

        return MqttSender(transport.mqtt, device_ids, options)
    if getattr(transport, "http", None) is not None:
        from agent.transports.http import HttpSender

        return HttpSender(transport.http, device_ids, options)
    raise AgentError("template has no transport this agent supports")
