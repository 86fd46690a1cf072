"""Data-plane transports: how mock traffic reaches the system under test.

One small interface (``Sender``) so the engine does not care whether a device
speaks MQTT or HTTP, and so the MQTT client can be chosen by measurement.
"""

from agent.transports.base import Sender, open_sender

__all__ = ["Sender", "open_sender"]
