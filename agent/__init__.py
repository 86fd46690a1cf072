"""mockmock agent: runs mock devices on small boards, controlled over MQTT."""

__version__ = "0.1.0"
