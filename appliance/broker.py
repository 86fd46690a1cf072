"""The embedded MQTT broker (amqtt) for the all-in-one ``mockmock up``.

It carries the control bus only; heavy demo traffic should go to a real
Mosquitto (DESIGN §8: amqtt delivers ~4,300 msg/s). Binds 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import logging

from amqtt.broker import Broker

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

for noisy in ("amqtt", "transitions"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


class EmbeddedBroker:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                },
            }
        )

    async def start(self) -> None:
        try:
            await self._broker.start()
        except OSError as e:
            raise ApplianceError(
                f"--mqtt-port: cannot listen on {self.host}:{self.port} ({e.strerror or e}); "
                "is another broker running there? pick another port"
            ) from None
        except Exception as e:
            # amqtt wraps bind failures in its own BrokerError
            cause = e.__cause__ or e.__context__
            if isinstance(cause, OSError) or "Address already in use" in str(e):
                raise ApplianceError(
                    f"--mqtt-port: cannot listen on {self.host}:{self.port} (address in use); "
                    "pick another port"
                ) from None
            raise
        log.info("embedded MQTT broker on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        await self._broker.shutdown()
