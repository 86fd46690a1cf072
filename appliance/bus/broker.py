"""The embedded MQTT broker (amqtt) for the all-in-one ``mockmock up``.

It carries the control bus only; heavy demo traffic should go to a real
Mosquitto (DESIGN §8: amqtt delivers ~4,300 msg/s). Binds 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import MQTTError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from appliance.errors import ApplianceError
from appliance.fleet import acl

log = logging.getLogger(__name__)

for noisy in ("amqtt", "transitions"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


Verifier = Callable[[str, str], Awaitable[acl.Identity | None]]
"""(username, password) -> the identity, or None when the credentials are wrong."""


class BusAccessPlugin(BaseAuthPlugin, BaseTopicPlugin):
    """Authentication against the hashed bus credentials, and the topic ACL of ``acl``.

    A client without a username is anonymous (the demo's mock traffic); a client with
    one must prove it, and is then held to its own topics and client id
    (:func:`acl.may_use_client_id`). A will (LWT) is a publish too: a connection whose
    will topic it could not publish to is refused.
    """

    @dataclass
    class Config:
        verify: Any = None
        """A :data:`Verifier`; without one only anonymous clients get in."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._verify: Verifier | None = self.config.verify
        # username -> identity, filled at authentication (which always comes first)
        self._identities: dict[str, acl.Identity] = {}

    def _identity(self, session: Session | None) -> tuple[bool, acl.Identity | None]:
        """(known, identity): unknown sessions with a username get no access at all."""
        if session is None or not session.username:
            return True, None
        found = self._identities.get(session.username)
        return found is not None, found

    async def authenticate(self, *, session: Session) -> bool | None:
        identity: acl.Identity | None = None
        if session.username:
            password = session.password or ""
            if isinstance(password, (bytes, bytearray)):
                password = password.decode(errors="replace")
            if self._verify is not None:
                identity = await self._verify(session.username, password)
            if identity is None:
                log.warning("bus: refused %r (unknown user or wrong password)", session.username)
                return False
        else:
            session.is_anonymous = True
        if not acl.may_use_client_id(identity, session.client_id or ""):
            log.warning(
                "bus: refused client id %r for %s",
                session.client_id,
                repr(session.username) if session.username else "an anonymous client",
            )
            return False
        if session.username and identity is not None:
            self._identities[session.username] = identity
        will = session.will_topic if session.will_flag else None
        if will and not acl.may_publish(identity, will):
            log.warning("bus: refused a will on %r from %r", will, session.username)
            return False
        return True

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        if not topic:
            return False
        known, identity = self._identity(session)
        if not known:
            return False
        if action == Action.SUBSCRIBE:
            return acl.may_subscribe(identity, topic)
        if action == Action.PUBLISH:
            return acl.may_publish(identity, topic)
        return acl.may_receive(identity, topic)


class _Broker(Broker):
    """amqtt's broker with authentication before session take-over, and its
    retained-message delivery held to the ACL.

    amqtt 0.12 acts on a CONNECT's client id (drops the old session of that id, takes
    over a connected one) before the authentication result counts, so a client with
    wrong credentials, or the wrong account, could still knock the owner of a client id
    off the bus. Here a CONNECT is authenticated first and refused before any session
    is touched.

    amqtt 0.12 hands retained messages to a subscriber without the RECEIVE check
    it applies to live messages, and on every connect it replays the retained
    messages of *every* session's filters to the new client (so a subscriber to
    ``lab/#`` got ``mm/v1/agents/<id>/presence``). Here a client gets retained
    messages only for its own subscription and only those it may receive.
    Overrides a private method of the pinned amqtt version.
    """

    async def _initialize_client_session(
        self,
        reader: ReaderAdapter,
        writer: WriterAdapter,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except MQTTError:
            await writer.close()
            raise
        if not await self._authenticate(session, None):  # type: ignore[arg-type]
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"refused {session.client_id!r} from {remote_address}:{remote_port}")
        # From here on as amqtt does it: a clean session replaces an old one of its id,
        # otherwise the stored session resumes with the new connection's settings.
        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = gen_client_id()
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            for attr in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",
                "keep_alive",
                "username",
                "password",
            ):
                setattr(existing, attr, getattr(session, attr))
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter, qos = subscription
        granted = [
            q
            for s, q in self._subscriptions.get(topic_filter, ())
            if s.client_id == session.client_id
        ]
        if not granted:
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        qos = granted[0]
        for topic, retained in list(self._retained_messages.items()):
            if not self._matches(topic, topic_filter):
                continue
            if not await self._topic_filtering(session, topic, Action.RECEIVE):
                continue
            await handler.mqtt_publish(
                retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
            )


class EmbeddedBroker:
    def __init__(self, host: str, port: int, verify: Verifier | None = None) -> None:
        self.host, self.port = host, port
        self._broker = _Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
                "plugins": {f"{__name__}.BusAccessPlugin": {"verify": verify}},
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
