"""The appliance's side of the MQTT control bus (aiomqtt).

Publishes each agent's retained desired state and usage acks; consumes
presence, reports and usage. Database work runs in a thread so a slow fsync
never stalls the bus.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import aiomqtt
import msgspec
import peewee as pw
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent import wire
from appliance import models
from appliance.db import database
from appliance.fleet import desired
from appliance.fleet import service as fleet
from appliance.inspect.exchange import Exchange
from appliance.usage import service as usage

log = logging.getLogger(__name__)
T = TypeVar("T")


class Bus:
    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        share: str = "",
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if tls else 1883)
        # mqtts:// is never plaintext: without a context of its own, the system's CAs.
        self.tls_context = tls_context or (ssl.create_default_context() if tls else None)
        self.username = unquote(parts.username) if parts.username is not None else None
        self.password = unquote(parts.password) if parts.password is not None else None
        # Random per start: a client id others cannot guess cannot be taken over, and
        # replicas on one broker do not kick each other off.
        self.client_id = client_id or f"mm-appliance-{secrets.token_hex(4)}"
        self._client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # Replicas on one broker: an MQTT 5 shared subscription hands each usage record
        # and report to one of them (ingest is idempotent anyway); the group name is
        # appliance.cluster's. Empty: plain subscriptions.
        self.share = share
        self.inspections = Exchange(self._publish)  # drill-down requests to agents

    def use_own_credentials(self, data_dir: Path) -> None:
        """Connect with the appliance's bus account unless the URL names one (blocking)."""
        if self.username is None:
            from appliance.fleet.credentials import ensure_appliance_user

            self.username, self.password = ensure_appliance_user(data_dir)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="appliance-bus")

    async def stop(self) -> None:
        if self._task:
            # Python 3.11's asyncio.wait_for (inside aiomqtt's subscribe/publish) can
            # swallow a cancellation that races a completing call; cancel until it ends.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=0.5)
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    username=self.username,
                    password=self.password,
                    protocol=aiomqtt.ProtocolVersion.V5
                    if self.share
                    else aiomqtt.ProtocolVersion.V311,
                    keepalive=15,
                    tls_context=self.tls_context,
                    # A thousand agents' records and the acks for them: brokers and
                    # paho default to 20 QoS 1 messages in flight, which caps the
                    # ingest at 20 per round trip of a busy host (~200 records/s).
                    max_inflight_messages=INFLIGHT,
                    properties=_receive_maximum() if self.share else None,
                ) as client:
                    client.pending_calls_threshold = 10_000  # acks and desired go out in bursts
                    # Usage and reports: one replica each. Presence: every replica, in
                    # order, with the retained replay (shared subscriptions may get none,
                    # and two replicas applying one agent's offline/online out of order
                    # would leave it wrong until it reconnects). Inspection replies:
                    # every replica, since only the one that asked waits for them.
                    share = f"$share/{self.share}/" if self.share else ""
                    for kind in (wire.PRESENCE, wire.INSPECT_REPLY):
                        await client.subscribe(wire.topic("+", kind), qos=1)
                    for kind in (wire.REPORTED, wire.USAGE):
                        await client.subscribe(share + wire.topic("+", kind), qos=1)
                    self._client = client
                    self.connected.set()
                    delay = 0.5
                    log.info("control bus connected at %s:%s", self.host, self.port)
                    # The database is the truth: re-publish every desired state.
                    await self.publish_desired(await asyncio.to_thread(fleet.all_agent_ids))
                    async for msg in client.messages:
                        # What queued up meanwhile goes with it: one thread hop and one
                        # commit for the lot, not per message (appliance ingest rate).
                        batch = [(str(msg.topic), msg.payload)]
                        while len(batch) < BATCH and len(client.messages):
                            more = await anext(client.messages)
                            batch.append((str(more.topic), more.payload))
                        await self._dispatch_many(batch)
            except aiomqtt.MqttError as e:
                log.warning("control bus: %s; reconnecting in %.1fs", e, delay)
            except Exception:
                log.exception("control bus failed; reconnecting in %.1fs", delay)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _dispatch(self, topic: str, payload: object) -> None:
        await self._dispatch_many([(topic, payload)])

    async def _dispatch_many(self, batch: list[tuple[str, object]]) -> None:
        rest = []
        for topic, payload in batch:
            split = wire.agent_of(topic)
            if split is not None and split[1] == wire.INSPECT_REPLY:
                if isinstance(payload, (bytes, bytearray)) and payload:
                    self.inspections.deliver(split[0], payload)  # a waiter in this loop
            else:
                rest.append((topic, payload))
        if not rest:
            return
        try:
            acks = await asyncio.to_thread(_handle_all, rest)
        except Exception:
            # A database outage must not take the bus down: an unacked usage record is
            # sent again by its agent, a report comes again.
            log.exception("handling %d agent messages failed", len(batch))
            return
        await asyncio.gather(*(self._publish(t, p, retain=True) for t, p in acks))

    async def _publish(self, topic: str, payload: bytes, *, retain: bool) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=1, retain=retain)
            return True
        except aiomqtt.MqttError as e:
            log.warning("publish to %s failed: %s", topic, e)
            return False

    async def publish_desired(self, agent_ids: Iterable[str]) -> None:
        """Publish (retained) the full desired state of each agent.

        Until no other replica bumped one of them meanwhile (appliance.fleet.desired).
        """
        todo = sorted(set(agent_ids))
        async with self._lock:  # keeps revisions and publishes in the same order
            for _ in range(REPUBLISH_ROUNDS):
                if not todo:
                    return
                states = await asyncio.to_thread(desired.next_states, todo)
                sent = await asyncio.gather(
                    *(
                        self._publish(wire.topic(a, wire.DESIRED), wire.encode(d), retain=True)
                        for a, d in states.items()
                    )
                )
                published = {
                    a: d.revision for (a, d), ok in zip(states.items(), sent, strict=True) if ok
                }
                todo = await asyncio.to_thread(desired.moved_on, published)
            log.warning(
                "desired state of %d agents contended; the renewals republish it", len(todo)
            )


REPUBLISH_ROUNDS = 5
INFLIGHT = 1000  # QoS 1 messages in flight each way between the broker and a replica


def _receive_maximum() -> Properties:
    """MQTT 5 Receive Maximum: how many QoS 1 messages the broker may send us unacked
    (a v3.1.1 session gets the broker's own setting; the generated mosquitto.conf
    raises it)."""
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = INFLIGHT
    return props


BATCH = 100  # agent messages handled in one transaction (SQLite: its write lock)


def _handle_all(batch: list[tuple[str, object]]) -> list[tuple[str, bytes]]:
    """Handle usage and reports in arrival order in one transaction, then presence;
    returns the usage acks to publish (the newest per agent: an ack is the highest
    contiguous seq stored).

    Replicas ingest one agent's records at the same time: on PostgreSQL the batch
    first locks its agents' rows, in id order (no deadlock between two batches), so
    each sees the other's committed records when it works out the contiguous seq.
    Presence (which writes the audit log) goes in transactions of its own.
    """
    acks: dict[str, bytes] = {}
    presence = [(t, p) for t, p in batch if t.endswith("/" + wire.PRESENCE)]
    rest = [(t, p) for t, p in batch if not t.endswith("/" + wire.PRESENCE)]
    if rest:
        with database.atomic():
            if isinstance(database.obj, pw.PostgresqlDatabase):
                ids = sorted({split[0] for t, _ in rest if (split := wire.agent_of(t))})
                a = models.Agent
                lock = a.select(a.id).where(a.agent_id.in_(ids)).order_by(a.id)
                list(lock.for_update("FOR NO KEY UPDATE"))  # FK checks need not wait
            records = [(t, p) for t, p in rest if t.endswith("/" + wire.USAGE)]
            acks.update(_ingest_all(records))
            _report_all([(t, p) for t, p in rest if t.endswith("/" + wire.REPORTED)])
            for topic, payload in rest:
                if not topic.endswith(("/" + wire.USAGE, "/" + wire.REPORTED)):
                    _handle(topic, payload)
    for topic, payload in presence:
        _handle(topic, payload)
    return list(acks.items())


def _decode_all(messages: list[tuple[str, object]], kind: type[T]) -> list[tuple[str, T]]:
    """(agent id, message) of each well-formed message; the others are logged, dropped."""
    decoded = []
    for topic, payload in messages:
        split = wire.agent_of(topic)
        if split is None or not isinstance(payload, (bytes, bytearray)) or not payload:
            continue
        try:
            decoded.append((split[0], wire.decode(kind, payload)))
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            log.warning("dropped a malformed %s message from %s: %s", split[1], split[0], e)
    return decoded


def _ingest_all(records: list[tuple[str, object]]) -> dict[str, bytes]:
    """Usage records in one :func:`usage.ingest_many`; one by one if that fails (so one
    bad record cannot hold the others back)."""
    decoded = _decode_all(records, wire.UsageRecord)
    if not decoded:
        return {}
    try:
        with database.atomic():  # a savepoint
            acked = usage.ingest_many(decoded)
    except Exception:
        log.exception("batched usage ingest failed; one record at a time")
        acks = {}
        for topic, payload in records:
            ack = _handle(topic, payload)
            if ack is not None:
                acks[ack[0]] = ack[1]
        return acks
    return {
        wire.topic(agent_id, wire.USAGE_ACK): wire.encode(ack) for agent_id, ack in acked.items()
    }


def _report_all(messages: list[tuple[str, object]]) -> None:
    """Reports in one :func:`fleet.on_reported_many`, in arrival order; one by one if
    that fails (so one bad report cannot hold the others back)."""
    decoded = _decode_all(messages, wire.Reported)
    if not decoded:
        return
    try:
        with database.atomic():  # a savepoint
            fleet.on_reported_many(decoded)
    except Exception:
        log.exception("batched reports failed; one report at a time")
        for topic, payload in messages:
            _handle(topic, payload)


def _handle(topic: str, payload: object) -> tuple[str, bytes] | None:
    split = wire.agent_of(topic)
    if split is None or not isinstance(payload, (bytes, bytearray)) or not payload:
        return None
    agent_id, kind = split
    try:
        with database.atomic():  # a savepoint: one bad message does not undo the others
            if kind == wire.USAGE:
                rec = wire.decode(wire.UsageRecord, payload)
                ack = usage.ingest(agent_id, rec)
                if ack is not None:
                    return wire.topic(agent_id, wire.USAGE_ACK), wire.encode(ack)
            elif kind == wire.REPORTED:
                fleet.on_reported(agent_id, wire.decode(wire.Reported, payload))
            elif kind == wire.PRESENCE:
                fleet.on_presence(agent_id, wire.decode(wire.Presence, payload))
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        log.warning("dropped a malformed %s message from %s: %s", kind, agent_id, e)
    except Exception:
        log.exception("handling %s from %s failed", kind, agent_id)
    return None
