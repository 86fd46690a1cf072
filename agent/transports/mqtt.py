"""MQTT data plane on gmqtt.

gmqtt, not aiomqtt, because its publish is a synchronous write into the
socket buffer: DESIGN §8 measured ~125,000 msg/s on one connection against
~11,000-16,000 for aiomqtt, and 10,000 per-device connections in one process.

Three things are ours rather than gmqtt's:

- **Reconnects.** gmqtt retries a lost connection at a fixed delay, all
  clients at once. We take that over (``_Client.reconnect``): exponential
  backoff with jitter through one concurrency limit, so 10,000 devices that
  lose their broker come back without a thundering herd, and a device that
  :meth:`MqttSender.drop` cut stays down until :meth:`MqttSender.reconnect`.
- **QoS 0 publishing.** The PUBLISH packet is a fixed header, the topic and the
  payload; we build it ourselves and write every connection's messages of one
  event-loop pass in a single ``transport.write``. One syscall per pass instead
  of one per message is most of the shared connection's throughput. QoS 1/2
  go through gmqtt, which owns packet ids and the in-flight store.
- **Abrupt drops.** ``drop`` resets the TCP connection (SO_LINGER 0) without a
  DISCONNECT, so the broker publishes the device's will at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import struct
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal

import gmqtt
import gmqtt.client as gmqtt_client
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.mqtt.handler import MQTTConnectError, MqttPackageHandler

from agent.tls import client_context
from agent.transports import properties, reasons
from agent.transports.base import SenderOptions

log = logging.getLogger(__name__)
logging.getLogger("gmqtt").setLevel(logging.WARNING)

CONNECT_CONCURRENCY = 200  # connection attempts in flight at once, per sender
CONNECT_TIMEOUT_S = 10.0  # TCP + TLS + CONNACK
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
# Above this many unsent bytes on one connection the broker is not keeping up:
# refuse new QoS 0 messages (counted as errors) instead of growing memory.
SEND_BUFFER_LIMIT = 8 * 1024 * 1024
COMMAND_QOS = 1  # commands to devices should arrive
# Unacknowledged QoS 1/2 messages per connection under MQTT 3.1.1, which has no
# Receive Maximum: Mosquitto's and paho's default. Mosquitto 2.0 acknowledges
# QoS 2 messages beyond its window and then silently drops them.
INFLIGHT_V311 = 20
CLOSE_ACK_WAIT_S = 1.0  # at close, how long the acks of in-flight QoS 1/2 publishes may take
BACKLOG_LIMIT = 10_000  # QoS 1/2 messages waiting for the window, per connection


def ssl_context(spec: Any) -> ssl.SSLContext:
    """Verify the broker (system CAs or ``spec.ca``); present ``spec.cert`` for mTLS."""
    return client_context(spec)  # inline PEM only: a template never names a file


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT filter matching (``+`` one level, ``#`` the rest)."""
    if pattern == topic:
        return True
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


def _remaining_length(n: int) -> bytes:
    """MQTT's variable-length integer."""
    out = bytearray()
    while True:
        n, b = divmod(n, 128)
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _trim(connection: Any) -> None:
    """Free what gmqtt allocates per connection and never reads: two asyncio.Queues
    and an Event. At 10,000 per-device connections this took RSS from 28.6 to 21.1 KB
    per device (tests/perf/mqtt_bench.py)."""
    connection._buff = None
    protocol = connection._protocol
    protocol._queue = None
    protocol._disconnect = None
    # Set by now (connection_made) and only read or cleared from here on.
    connected = _LightEvent()
    if protocol._connected.is_set():
        connected.set()
    protocol._connected = connected
    # asyncio's flow control keeps a deque for StreamWriter.drain() callers; gmqtt
    # writes straight to the transport and never drains.
    if isinstance(getattr(protocol, "_drain_waiters", None), deque):
        protocol._drain_waiters = ()


class _LightEvent(asyncio.Event):
    """An asyncio.Event whose waiter deque (a 700-byte block) exists only while someone
    waits: gmqtt keeps three per connection, awaited only while connecting."""

    def __init__(self) -> None:
        self._value = False
        self._waiters: Any = ()

    async def wait(self) -> Literal[True]:
        if not isinstance(self._waiters, deque):
            self._waiters = deque()
        try:
            return await super().wait()
        finally:
            if not self._waiters:
                self._waiters = ()  # the last waiter left: give the block back


_SIZES_N = 4096  # remaining lengths of typical messages, encoded once
_SIZES = [_remaining_length(n) for n in range(_SIZES_N)]
# The same with a PUBLISH fixed header byte in front, per header byte (made on first use).
_PREFIXES: dict[bytes, list[bytes]] = {}


def _prefixes(fixed: bytes) -> list[bytes]:
    table = _PREFIXES.get(fixed)
    if table is None:
        table = _PREFIXES[fixed] = [fixed + size for size in _SIZES]
    return table


class _Handler(MqttPackageHandler):  # type: ignore[misc]
    """gmqtt's packet handler, reading the broker's "no" first: a PUBACK/PUBREC reason
    code >= 0x80 and SUBACK failures are errors (gmqtt ignores them)."""

    def _client(self) -> _Client | None:
        # The handler's reconnect callback is its client's bound method: no extra
        # attribute per connection (at 20,000 connections every object counts).
        c = getattr(self._reconnect_callback, "__self__", None)
        return c if isinstance(c, _Client) else None

    def _handle_puback_packet(self, cmd: int, packet: bytes) -> None:
        c = self._client()
        if c is not None:
            c._ack("PUBACK", packet)
        super()._handle_puback_packet(cmd, packet)

    def _handle_pubrec_packet(self, cmd: int, packet: bytes) -> None:
        c = self._client()
        if c is not None:
            c._ack("PUBREC", packet)
        super()._handle_pubrec_packet(cmd, packet)

    def _handle_suback_packet(self, cmd: int, packet: bytes) -> None:
        c = self._client()
        if c is not None:
            c.owner._subacked(c.conn, packet)
        super()._handle_suback_packet(cmd, packet)


# gmqtt builds its handler by this module-level name: ours from the start, so each
# handler is an ordinary instance of one class (its attribute dict stays compact).
gmqtt_client.MqttPackageHandler = _Handler


class _Client(gmqtt.Client):  # type: ignore[misc]
    """One connection; gmqtt's own reconnects are routed to the sender's policy."""

    def __init__(self, client_id: str, owner: MqttSender, conn: int, **kwargs: Any) -> None:
        super().__init__(client_id, **kwargs)
        self.owner = owner
        self.conn = conn
        h = self._package_handler  # it holds the same two events
        self._connack_received = h._connack_received = _LightEvent()
        self._connection_lost = h._connection_lost = _LightEvent()

    def _ack(self, what: str, packet: bytes) -> None:
        code = reasons.ack_reason(packet) if self.owner.v5 else 0
        if code >= 0x80:
            mid = int.from_bytes(packet[:2], "big")
            raw = self._persistent_storage._messages.get(mid, b"")
            self.owner._refused(f"{what} {reasons.name(code)}", reasons.publish_topic(raw))

    async def reconnect(self, delay: bool = False) -> None:
        # gmqtt calls this when the connection is lost or a CONNACK refused.
        self.owner._lost(self.conn)

    async def _create_connection(
        self, host: str, port: int, ssl: Any, clean_session: bool, keepalive: int
    ) -> Any:
        path = getattr(self.owner.spec, "ws_path", None)
        if path is None:
            return await super()._create_connection(host, port, ssl, clean_session, keepalive)
        # What gmqtt's own does before connecting, then the WebSocket in place of TCP.
        from functools import partial

        from gmqtt.mqtt.connection import MQTTConnection
        from gmqtt.mqtt.protocol import MQTTProtocol

        from agent.transports.websocket import open_connection

        self._exit_reconnecting_state()
        self._package_handler.clear_topics_aliases()
        self._connack_received.clear()
        self._connection_lost.clear()
        factory = partial(
            MQTTProtocol,
            connection_state=self._connection_state,
            id_generator=self._package_handler.id_generator,
        )
        transport, protocol = await open_connection(factory, host, port, path=path, ssl=ssl)
        return MQTTConnection(
            transport,
            protocol,
            clean_session,
            keepalive,
            package_handler=self._package_handler,
            logger=self._logger,
        )

    def _remove_message_from_queue(self, mid: int) -> None:
        # PUBACK / PUBCOMP: a QoS 1/2 message left the in-flight window.
        super()._remove_message_from_queue(mid)
        self.owner._acked(self.conn)


class MqttSender:
    """``per_device``: one client (id = device id) per device; ``shared``: one for all.

    In shared mode there is one connection, so ``drop``/``reconnect`` of any slot
    act on all slots, and the connection carries slot 0's will.
    """

    def __init__(
        self, spec: Any, device_ids: list[str], options: SenderOptions | None = None
    ) -> None:
        self.spec = spec
        self.options = options or SenderOptions()
        self.device_ids = device_ids
        self.shared = spec.connection == "shared"
        self.qos = spec.qos
        self.retain = bool(spec.retain)
        self.v5 = str(spec.version) == "5"
        self.last_error = ""
        # Messages accepted by send() but lost before reaching the socket (the
        # connection closed in between); the engine adds these to its errors.
        self.errors = 0
        # Of those, publishes the broker answered with a reason code >= 0x80: the
        # engine takes them off its count of messages sent.
        self.refused = 0
        self._connect_error = ""  # the last failed connection attempt
        self._ssl: ssl.SSLContext | bool = ssl_context(spec) if spec.tls else False
        self._ssls: list[ssl.SSLContext] = []  # per connection: per-device identities
        self._closing = False
        self._sem: asyncio.Semaphore | None = None
        self._held: set[int] = set()  # dropped: no reconnect until reconnect()
        self._connecting: set[int] = set()
        self._retries: dict[int, asyncio.Task[None]] = {}
        self._lost_waiters: dict[int, tuple[asyncio.Future[None], Any]] = {}
        # QoS 0 fast path: the transport of each live connection, the encoded
        # topic+properties per topic, and this loop pass's unsent packets.
        self._transports: list[asyncio.Transport | None] = []
        self._heads: dict[str, bytes] = {}
        self._pending: dict[int, list[bytes]] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._backlog: dict[int, deque[tuple[str, bytes, int, int | None]]] = {}
        self._congested: set[int] = set()
        self._fixed = b"\x31" if self.retain else b"\x30"  # PUBLISH, QoS 0, retain flag
        self._prefix = _prefixes(self._fixed)
        # SUBSCRIBE packets not yet acknowledged, per connection: {packet id: topic}.
        self._sub_pending: dict[int, dict[int, str]] = {}
        self._early: dict[int, list[tuple[str, bytes]]] = {}  # see _on_message
        # MQTT 5 PUBLISH properties per slot: the encoded block (QoS 0) and gmqtt's
        # keywords (QoS 1/2). With them, send() is the variant that adds them.
        self._props = bool(self.options.properties) and self.v5
        if self._props:
            self._prop_blocks = [properties.encode(p) for p in self.options.properties]
            self._gm_props = [p.gmqtt() for p in self.options.properties]
            self._prop_heads: dict[tuple[str, int], bytes] = {}
            self.send = self._send_props  # type: ignore[method-assign]

        subs = self.options.subscriptions
        if self.shared:
            self.clients = [self._client(f"{device_ids[0]}-shared", 0, 0)] if device_ids else []
            # Route incoming messages to every slot whose subscription matches.
            self._routes: dict[str, list[int]] = {}
            self._wild: list[tuple[str, int]] = []
            for slot, topics in enumerate(subs):
                for t in topics:
                    if "+" in t or "#" in t:
                        self._wild.append((t, slot))
                    else:
                        self._routes.setdefault(t, []).append(slot)
            self._sub_topics = [sorted({t for topics in subs for t in topics})]
        else:
            self.clients = [self._client(d, i, i) for i, d in enumerate(device_ids)]
            self._sub_topics = [
                list(subs[i]) if i < len(subs) else [] for i in range(len(device_ids))
            ]
        self._transports = [None] * len(self.clients)
        if self.options.on_message is not None:
            for k, c in enumerate(self.clients):
                if self._sub_topics[k]:
                    c.on_message = self._on_message

    def _client(self, client_id: str, conn: int, slot: int) -> _Client:
        """The connection of ``slot``'s device (shared: slot 0's will and credentials)."""
        wills, creds = self.options.wills, self.options.credentials
        will = wills[slot] if slot < len(wills) else None
        will_message = None
        if will is not None:
            topic, payload, qos, retain = will
            will_message = gmqtt.Message(topic, payload, qos=qos, retain=retain)
        session: dict[str, Any] = {}
        if self.v5 and getattr(self.spec, "session_expiry_s", None) is not None:
            session["session_expiry_interval"] = self.spec.session_expiry_s
        c = _Client(
            client_id,
            self,
            conn,
            will_message=will_message,
            clean_session=getattr(self.spec, "clean_start", True),
            **session,
        )
        own = creds[slot] if slot < len(creds) else None
        username, password = own if own is not None else (self.spec.username, self.spec.password)
        if username:
            c.set_auth_credentials(username, password or None)
        return c

    def _conn(self, slot: int) -> int:
        return 0 if self.shared else slot

    # -- connecting ----------------------------------------------------------

    async def open(self) -> None:
        """Connect every device (at most CONNECT_CONCURRENCY at once); a device that
        fails its first try keeps retrying in the background."""
        todo = iter(range(len(self.clients)))

        async def worker() -> None:
            for k in todo:
                if self._closing:
                    return
                if not await self._connect(k):
                    self._start_retry(k)

        workers = min(CONNECT_CONCURRENCY, len(self.clients))
        await asyncio.gather(*(worker() for _ in range(workers)))

    async def _connect(self, k: int) -> bool:
        c = self.clients[k]
        if self._sem is None:
            self._sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self._connecting.add(k)
        try:
            async with self._sem:
                if self._closing or k in self._held:
                    return False
                try:
                    await self._attempt(k, c)
                except MQTTConnectError as e:
                    code = getattr(e, "_code", 0x80)
                    why = reasons.name(code, v5=self.v5)
                    self.last_error = (
                        f"connect {self.spec.host}:{self.spec.port}: broker refused: CONNACK {why}"
                    )
                    self._connect_error = self.last_error
                    self._abort(c)
                    return False
                except (TimeoutError, OSError) as e:
                    self.last_error = f"connect {self.spec.host}:{self.spec.port}: {e or 'timeout'}"
                    self._connect_error = self.last_error
                    self._abort(c)
                    return False
                except asyncio.CancelledError:
                    self._abort(c)
                    raise
                if self._closing or k in self._held:  # dropped while connecting
                    self._abort(c)
                    return False
                _trim(c._connection)
                self._transports[k] = c._connection._transport
                for topic, payload in self._early.pop(k, ()):
                    self._on_message(c, topic, payload, 1, None)
                if self._sub_topics[k]:
                    pending = self._sub_pending[k] = {}
                    for topic in self._sub_topics[k]:
                        sub = gmqtt.Subscription(topic, qos=COMMAND_QOS)
                        pending[c._connection.subscribe([sub])] = topic
                self._acked(k)  # messages that waited for the window
                on_connected = self.options.on_connected
                if on_connected is not None:
                    for slot in range(len(self.device_ids)) if self.shared else (k,):
                        on_connected(slot)
                return True
        finally:
            self._connecting.discard(k)

    async def _attempt(self, k: int, c: _Client) -> None:
        """gmqtt's connect, which would wait for a CONNACK forever, bounded in time and
        ended early when the broker closes the connection (e.g. a refused client cert)."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()
        # The loss of the connection this attempt replaces may still be on its way.
        self._lost_waiters[k] = (lost, c._connection)
        version = MQTTv50 if self.v5 else MQTTv311
        will_for = self.options.will_for
        if will_for is not None:
            will = will_for(k)
            c._will_message = (
                None
                if will is None
                else gmqtt.Message(will[0], will[1], qos=will[2], retain=will[3])
            )
        connect = loop.create_task(
            c.connect(
                self.spec.host,
                self.spec.port,
                ssl=self._ssls[k] if self._ssls else self._ssl,
                keepalive=self.spec.keepalive,
                version=version,
            )
        )
        try:
            done, _ = await asyncio.wait(
                {connect, lost}, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if connect in done:
                connect.result()  # raises what connect raised
                return
            if lost in done:
                raise ConnectionError("the broker closed the connection before CONNACK")
            raise TimeoutError(f"no CONNACK within {CONNECT_TIMEOUT_S:g}s")
        finally:
            self._lost_waiters.pop(k, None)
            if not connect.done():
                connect.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connect

    def _lost(self, k: int) -> None:
        """The connection went away (broker, network, refused CONNACK): retry later."""
        waiter = self._lost_waiters.get(k)
        if waiter is not None and not waiter[0].done():
            lost, previous = waiter
            if self.clients[k]._connection is not previous:
                lost.set_result(None)
        t = self._transports[k]
        if t is not None and not t.is_closing():
            return  # news of an older connection; a newer one is up
        self._transports[k] = None
        if self._closing or k in self._held or k in self._connecting or k in self._retries:
            return
        self._start_retry(k)

    def _start_retry(self, k: int) -> None:
        if self._closing or k in self._held or k in self._retries:
            return
        task = asyncio.get_running_loop().create_task(self._retry(k))
        self._retries[k] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._retries.get(k) is t:
                del self._retries[k]

        task.add_done_callback(done)

    async def _retry(self, k: int) -> None:
        delay = RETRY_FIRST_S
        while not self._closing and k not in self._held:
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            if await self._connect(k):
                return
            delay = min(delay * 2, RETRY_MAX_S)

    def use_client_certs(self, pairs: list[tuple[str, str]]) -> None:
        """A client certificate (cert file, key file) per device, before open()."""
        self._ssls = []
        for cert, key in pairs[: len(self.clients)]:
            ctx = ssl_context(self.spec)
            ctx.load_cert_chain(cert, key)
            self._ssls.append(ctx)

    # -- the broker saying no ------------------------------------------------

    def _refused(self, why: str, topic: str) -> None:
        """A publish the broker answered with a failure reason code."""
        self.errors += 1
        self.refused += 1
        self.last_error = f"broker refused a publish to {topic or '?'}: {why}"

    def _subacked(self, k: int, packet: bytes) -> None:
        mid = int.from_bytes(packet[:2], "big")
        pending = self._sub_pending.get(k)
        topic = pending.pop(mid, None) if pending else None
        if topic is None:
            return
        if not pending:
            del self._sub_pending[k]  # all acknowledged: keep no empty dict per device
        try:
            codes = reasons.suback_codes(packet, v5=self.v5)
        except ValueError:
            codes = [0x80]
        for code in codes:
            if code >= 0x80:
                self.errors += 1
                self.last_error = (
                    f"broker refused the subscription to {topic}: "
                    f"SUBACK {reasons.name(code, v5=self.v5)}"
                )

    def subscribed(self) -> bool:
        """Every connection is up and the broker acknowledged its subscriptions."""
        return all(
            self.is_connected(k) and not self._sub_pending.get(k)
            for k in range(len(self.clients))
            if self._sub_topics[k]
        )

    # -- the Sender interface ------------------------------------------------

    def send(self, slot: int, topic: str, payload: bytes, *, qos: int | None = None) -> bool:
        # The hot path: at 100,000 messages a second every attribute lookup shows.
        k = 0 if self.shared else slot
        t = self._transports[k]
        if t is None or t.is_closing():
            self.last_error = self._why_down(k)
            return False
        if qos or self.qos or (self._backlog and k in self._backlog):
            return self._publish_qos(k, topic, payload, self.qos if qos is None else qos)
        if self._congested and k in self._congested and not self._relieved(k):
            self.last_error = "broker not keeping up: send buffer full"
            return False
        head = self._heads.get(topic) or self._head(topic)
        n = len(head) + len(payload)
        pkt = (self._prefix[n] if n < _SIZES_N else self._fixed + _remaining_length(n)) + head
        pkt += payload
        pending = self._pending.get(k)
        if pending is None:
            self._pending[k] = [pkt]
            if self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        else:
            pending.append(pkt)
        return True

    def batch(self) -> Callable[[list[str], list[bytes]], None] | None:
        """For a run of sends that would all take send()'s QoS 0 path on the shared
        connection (up, not congested, no backlog, no properties), made without
        returning to the event loop (nothing those checks read changes meanwhile):
        ``put(topics, payloads)``, which queues the run's messages as send() would
        have, in order, without a call and the checks per message. None: use send()."""
        if not self.shared or self.qos or self._props or self._backlog or self._congested:
            return None
        t = self._transports[0]
        if t is None or t.is_closing():
            return None
        return self._put

    def _put(self, topics: list[str], payloads: list[bytes]) -> None:
        if not payloads:
            return
        heads, head_of, prefix, fixed = self._heads, self._head, self._prefix, self._fixed
        run: list[bytes] = []
        append = run.append
        for topic, payload in zip(topics, payloads, strict=True):
            head = heads.get(topic) or head_of(topic)
            n = len(head) + len(payload)
            pkt = (prefix[n] if n < _SIZES_N else fixed + _remaining_length(n)) + head
            pkt += payload
            append(pkt)
        pending = self._pending.get(0)
        if pending is None:
            self._pending[0] = run
            if self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        else:
            pending.extend(run)

    def _send_props(self, slot: int, topic: str, payload: bytes, *, qos: int | None = None) -> bool:
        """send() with the slot's MQTT 5 properties on every message."""
        k = 0 if self.shared else slot
        t = self._transports[k]
        if t is None or t.is_closing():
            self.last_error = self._why_down(k)
            return False
        if qos or self.qos or (self._backlog and k in self._backlog):
            return self._publish_qos(k, topic, payload, self.qos if qos is None else qos, slot)
        if self._congested and k in self._congested and not self._relieved(k):
            self.last_error = "broker not keeping up: send buffer full"
            return False
        pkt = self._packet0(topic, payload, slot)
        pending = self._pending.get(k)
        if pending is None:
            self._pending[k] = [pkt]
            if self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        else:
            pending.append(pkt)
        return True

    def _prop_head(self, slot: int, topic: str) -> bytes:
        head = self._prop_heads.get((topic, slot))
        if head is None:
            raw = topic.encode()
            head = struct.pack("!H", len(raw)) + raw + self._prop_blocks[slot]
            if len(self._prop_heads) < 200_000:
                self._prop_heads[(topic, slot)] = head
        return head

    def _packet0(self, topic: str, payload: bytes, slot: int | None = None) -> bytes:
        """A QoS 0 PUBLISH: fixed header, remaining length, topic (+ v5 properties), payload."""
        if slot is not None and self._props:
            head = self._prop_head(slot, topic)
        else:
            head = self._heads.get(topic) or self._head(topic)
        n = len(head) + len(payload)
        return self._fixed + (_SIZES[n] if n < _SIZES_N else _remaining_length(n)) + head + payload

    def _relieved(self, k: int) -> bool:
        t = self._transports[k]
        if t is not None and t.get_write_buffer_size() < SEND_BUFFER_LIMIT // 2:
            self._congested.discard(k)
            return True
        return False

    def _head(self, topic: str) -> bytes:
        raw = topic.encode()
        head = struct.pack("!H", len(raw)) + raw + (b"\x00" if self.v5 else b"")
        if len(self._heads) < 200_000:  # faults may invent topics; stay bounded
            self._heads[topic] = head
        return head

    def _flush(self) -> None:
        self._flush_handle = None
        pending, self._pending = self._pending, {}
        for k, packets in pending.items():
            t = self._transports[k]
            if t is None or t.is_closing():
                self.errors += len(packets)
                continue
            t.write(b"".join(packets) if len(packets) > 1 else packets[0])
            if t.get_write_buffer_size() > SEND_BUFFER_LIMIT:
                self._congested.add(k)

    def _publish_qos(
        self, k: int, topic: str, payload: bytes, qos: int, slot: int | None = None
    ) -> bool:
        """QoS 1/2 through gmqtt, at most the broker's in-flight window unacknowledged;
        beyond it messages wait here, in order, and go out as acks arrive."""
        backlog = self._backlog.get(k)
        if backlog is None and self._inflight(k) >= self._window(k):
            backlog = self._backlog[k] = deque()
        if backlog is not None:
            if len(backlog) >= BACKLOG_LIMIT:
                self.last_error = f"{len(backlog)} messages wait for the broker's acks"
                return False
            backlog.append((topic, payload, qos, slot))
            return True
        return self._publish_now(k, topic, payload, qos, slot)

    def _publish_now(
        self, k: int, topic: str, payload: bytes, qos: int, slot: int | None = None
    ) -> bool:
        self._flush_one(k)  # keep the order with QoS 0 messages of this pass
        t = self._transports[k]
        try:
            if qos == 0:
                assert t is not None
                t.write(self._packet0(topic, payload, slot))
            else:
                props = self._gm_props[slot] if slot is not None and self._props else {}
                self.clients[k].publish(topic, payload, qos=qos, retain=self.retain, **props)
        except OverflowError:  # no packet id left
            self.last_error = "too many unacknowledged QoS 1/2 messages"
            return False
        except (OSError, AttributeError, AssertionError) as e:
            self.last_error = f"publish: {e}"
            return False
        return True

    def _why_down(self, k: int) -> str:
        if k in self._held:
            return "not connected (dropped)"
        return f"not connected ({self._connect_error})" if self._connect_error else "not connected"

    def _inflight(self, k: int) -> int:
        # gmqtt keeps every unacknowledged QoS 1/2 packet in its storage until
        # PUBACK/PUBCOMP; it has no public count (gmqtt is pinned).
        return len(self.clients[k]._persistent_storage._messages)

    def _window(self, k: int) -> int:
        if not self.v5:
            return INFLIGHT_V311
        props = self.clients[k]._package_handler._connack_properties
        # gmqtt's packet-id allocator hands out at most Receive Maximum - 1 ids.
        return int((props.get("receive_maximum") or [65535])[0]) - 1

    def _acked(self, k: int) -> None:
        """An ack freed a slot of the in-flight window: send what waits."""
        backlog = self._backlog.get(k)
        if not backlog or self._transports[k] is None or self._closing:
            return
        window = self._window(k)
        while backlog and self._inflight(k) < window:
            topic, payload, qos, slot = backlog.popleft()
            if not self._publish_now(k, topic, payload, qos, slot):
                self.errors += 1
        if not backlog:
            del self._backlog[k]

    def is_connected(self, slot: int) -> bool:
        t = self._transports[self._conn(slot)]
        return t is not None and not t.is_closing()

    def drop(self, slot: int) -> None:
        k = self._conn(slot)
        self._held.add(k)
        retry = self._retries.pop(k, None)
        if retry is not None:
            retry.cancel()
        self._flush_one(k)
        self._transports[k] = None
        self._abort(self.clients[k], reset=True)

    async def reconnect(self, slot: int) -> bool:
        k = self._conn(slot)
        self._held.discard(k)
        if self.is_connected(slot):
            return True
        retry = self._retries.pop(k, None)
        if retry is not None:
            retry.cancel()
        while k in self._connecting:  # a retry was mid-connect; let it finish
            await asyncio.sleep(0.01)
        if self.is_connected(slot):
            return True
        if await self._connect(k):
            return True
        self._start_retry(k)
        return False

    async def close(self) -> None:
        self._closing = True
        for t in list(self._retries.values()):
            t.cancel()
        self._retries.clear()
        for k in list(self._pending):
            self._flush_one(k)
        await self._await_acks()
        todo = iter(list(enumerate(self.clients)))

        async def bye() -> None:
            for k, c in todo:
                if self._transports[k] is None:
                    self._abort(c)
                    continue
                self._transports[k] = None
                try:
                    await asyncio.wait_for(c.disconnect(), 5)
                except (TimeoutError, OSError):
                    self._abort(c)

        await asyncio.gather(*(bye() for _ in range(min(CONNECT_CONCURRENCY, len(self.clients)))))

    async def _await_acks(self) -> None:
        """Let the broker answer what is in flight (bounded): a QoS 1/2 publish counts as
        sent when written and comes off that count when the broker refuses it, so the
        refusals of the last sends must arrive before the report is final."""
        deadline = asyncio.get_running_loop().time() + CLOSE_ACK_WAIT_S
        while asyncio.get_running_loop().time() < deadline and any(
            self._transports[k] is not None and self._inflight(k) for k in range(len(self.clients))
        ):
            await asyncio.sleep(0.02)

    # -- helpers -------------------------------------------------------------

    def _flush_one(self, k: int) -> None:
        packets = self._pending.pop(k, None)
        t = self._transports[k]
        if packets and t is not None and not t.is_closing():
            t.write(b"".join(packets))

    @staticmethod
    def _abort(c: gmqtt.Client, *, reset: bool = False) -> None:
        """Close the socket without a DISCONNECT; ``reset`` sends a TCP RST."""
        conn = getattr(c, "_connection", None)
        transport = getattr(conn, "_transport", None)
        if transport is None or transport.is_closing():
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def _on_message(
        self, client: _Client, topic: str, payload: bytes, qos: int, props: Any
    ) -> None:
        on_message = self.options.on_message
        if on_message is None:
            return
        if self._transports[client.conn] is None:
            # A persistent session's queued messages come with the CONNACK, before
            # _connect marks the connection up: hand them over once it is.
            early = self._early.setdefault(client.conn, [])
            if len(early) < BACKLOG_LIMIT:
                early.append((topic, payload))
            return
        for slot in self._slots_for(client.conn, topic):
            on_message(slot, topic, payload)

    def _slots_for(self, k: int, topic: str) -> Iterable[int]:
        if not self.shared:
            return (k,)
        slots = list(self._routes.get(topic, ()))
        slots.extend(s for pattern, s in self._wild if topic_matches(pattern, topic))
        return dict.fromkeys(slots)  # once per slot, even if two filters match
