"""The mock engine: one heap-scheduled loop per group, not a task per device.

Every device has a due time; the loop sleeps until the earliest event, runs
every event that is due, measures how late each send is against its schedule
and pushes the device's next due time. Thousands of devices cost one task and
a heap, which is what lets a small board keep time.

Everything else a device does in time is an event on the same heap: status
timers, cron transitions, reconnects after a drop, delayed command replies,
bursts and reconnect-storm ticks. Statuses and faults are applied per device
with the device's own seeded streams (payload, behaviour and faults apart, so
switching a fault on does not change the values a seed gives).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import orjson

from agent import identity, wire
from agent.commands import reply as command_reply
from agent.errors import AgentError
from agent.faults import DeviceFaults, count, malformed
from agent.generators import (
    DeviceNames,
    DevicePayload,
    bounds,
    compile_fields,
    device_rng,
    uses_names,
)
from agent.limits import check_open_files
from agent.statuses import Transition
from agent.template import Template, device_id, expand_topic, parse_template
from agent.timing import Windows, next_send, zone
from agent.tls import client_context
from agent.transports import Sender, open_sender
from agent.transports.base import SenderOptions
from agent.transports.properties import Properties
from agent.verify import MARK, Verifier

log = logging.getLogger(__name__)

# Event kinds on the heap: (time, tie-breaker, kind, slot, data).
SEND, BURST, TIMER, RECONNECT, REPLY, STORM, CRON, STREAM = range(8)
RECONNECT_RETRY_S = 1.0
VERIFY_GRACE_S = 2.0  # how long stop() waits for the subscriber to catch up
STATUS_FIGURES_S = 0.5  # how often time-in-status figures are brought up to date
VERIFY_READY_S = 10.0  # the group's subscriber must be subscribed by then

# Histogram bucket of each lateness below 8.192 ms, computed once: every send adds one.
_LATE_INDEX = [wire.Histogram.index(us) for us in range(8192)]

SenderFactory = Callable[[Template, list[str], SenderOptions], Sender]


class Device:
    """One mock's state; plain slots, because there are thousands."""

    __slots__ = (
        "cmd_topic",
        "dropped",
        "epoch",
        "faults",
        "gen",
        "held",
        "id",
        "index",
        "msg_topics",
        "names",
        "next_due",
        "payload",
        "payloads",
        "rng",
        "seq",
        "silent_until",
        "slot",
        "status",
        "streams",
        "topic",
    )

    def __init__(self, slot: int, index: int, dev_id: str, topic: str) -> None:
        self.slot = slot
        self.index = index
        self.id = dev_id
        self.topic = topic
        self.status = 0
        self.epoch = 0  # bumped on every status change: stale timers are ignored
        self.payloads: list[DevicePayload] = []
        self.payload: DevicePayload | None = None
        self.rng: Any = None  # behaviour stream: transitions, command failures
        self.faults: DeviceFaults | None = None
        self.gen = 0  # bumped when the send schedule is replaced
        self.next_due = 0.0
        self.seq = 0  # verification sequence number (messages generated)
        self.held: bytes | None = None  # out_of_order: sent after the next message
        self.silent_until = 0.0
        self.dropped = False
        self.cmd_topic = ""
        self.msg_topics: dict[str, list[int]] | None = None
        self.names: DeviceNames | None = None  # for format and status fields
        self.streams: list[tuple[str, DevicePayload]] | None = None  # (topic, payload)


def _wildcard(pattern: str) -> str:
    """A subscription filter for every device of a topic pattern: levels with a
    placeholder become ``+``."""
    return "/".join("+" if "{" in level else level for level in pattern.split("/"))


class GroupRunner:
    """Runs one assignment (a slice of a group's devices) until stopped."""

    def __new__(cls, assignment: wire.Assignment, **kwargs: Any) -> GroupRunner:
        # The runner of the template's kind: Sparkplug B edge nodes have their own.
        if cls is GroupRunner and "sparkplug" in assignment.template:
            return super().__new__(_sparkplug_runner())
        return super().__new__(cls)

    def __init__(
        self,
        assignment: wire.Assignment,
        *,
        sender_factory: SenderFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.assignment = a = assignment
        self.template = t = parse_template(assignment.template_name, assignment.template)
        self.clock = clock
        self.model = model = t.statuses
        assert model is not None
        indices = range(a.index_start, a.index_end)
        self.device_ids = [device_id(t, a.group, i) for i in indices]
        pattern = t.transport.topic
        self.topics = [
            expand_topic(pattern, device_id=d, group=a.group, index=i)
            for d, i in zip(self.device_ids, indices, strict=True)
        ]
        self.verify_on = t.verify_qos is not None
        # One connection carries every device: a drop silences them all.
        self.shared = t.transport.mqtt is not None and t.transport.mqtt.connection == "shared"
        self.timing = t.timing
        # Read once, not per send: the send path runs up to 100,000 times a second.
        self._jitter_s = t.jitter_ms / 1000
        self._poisson = t.timing.arrival == "poisson"
        self.windows = (
            Windows(list(t.timing.windows), zone(t.timing.timezone)) if t.timing.windows else None
        )
        self.tz = zone(t.timing.timezone)
        # Per status: interval (s), silence, the bounds out_of_range leaves, and the
        # probability transitions a send may take.
        self.intervals = [(s.interval_ms or t.interval_ms) / 1000 for s in model.statuses]
        self.silent = [s.silent for s in model.statuses]
        self.bounds = [
            {k: b for k, f in s.payload.items() if (b := bounds(f)) is not None}
            for s in model.statuses
        ]
        trs = model.transitions
        self.prob_trans: list[list[Transition]] = [
            [tr for tr in trs if tr.probability is not None and si in tr.sources]
            for si in range(len(model.statuses))
        ]
        self.after_trans: list[list[Transition]] = [
            [tr for tr in trs if tr.after_s is not None and si in tr.sources]
            for si in range(len(model.statuses))
        ]
        self.status_names = [s.name for s in model.statuses]
        self.streams = t.streams
        self.stream_intervals = [(s.interval_ms or 0) / 1000 for s in t.streams]
        self.event_streams = [k for k, s in enumerate(t.streams) if s.on_status_change]
        self._names = any(uses_names(s.payload) for s in model.statuses) or any(
            uses_names(s.payload) for s in t.streams
        )
        self.devices = [self._device(slot, i) for slot, i in enumerate(indices)]
        self.report = wire.GroupReport(
            group_id=a.group_id, run_id=a.run_id, running=0, state="starting"
        )
        self.report.statuses = {}
        names = self.status_names
        # Per status index: devices in it now, device-seconds spent in it, sends in it.
        self._in_status = [0] * len(names)
        self._status_s = [0.0] * len(names)
        self._status_sent = [0] * len(names)
        self._status_mark = 0.0  # when _status_s was last brought up to date
        for d in self.devices:
            self._in_status[d.status] += 1
            self.report.statuses[names[d.status]] = self._in_status[d.status]
        self.verifier = Verifier() if self.verify_on else None
        options = self._options()
        factory = sender_factory or (lambda tpl, ids, opts: open_sender(tpl.transport, ids, opts))
        self.sender = factory(t, self.device_ids, options)
        self._heap: list[tuple[float, int, int, int, Any]] = []
        self._n = itertools.count()
        self._refused = 0
        self._late = 0  # sender.errors taken in so far
        self._unsent = 0  # sender.refused taken off report.sent so far
        self._task: asyncio.Task[None] | None = None
        self._verify_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False
        # Nothing to decide per send: no faults, verification, probability transitions,
        # silent statuses, windows, jitter or Poisson arrivals, and the base _emit.
        self._plain = (
            not t.faults.any
            and not self.verify_on
            and self.windows is None
            and not any(self.prob_trans)
            and not any(self.silent)
            and not self._jitter_s
            and not self._poisson
            and type(self)._emit is GroupRunner._emit
            and type(self)._out is GroupRunner._out
        )
        self.failed = ""  # why the group could not run, when it could not
        self._waiter: asyncio.Future[None] | None = None
        self.started_at: float | None = None
        # Set by preview: every message sent, with the time and the device's status.
        self.trace: list[tuple[float, int, str, bytes, str]] | None = None

    # ---- set-up --------------------------------------------------------------

    def _device(self, slot: int, index: int) -> Device:
        t, a, model = self.template, self.assignment, self.model
        d = Device(slot, index, self.device_ids[slot], self.topics[slot])
        rng = device_rng(a.seed, a.group, index)
        clock_cell = [0.0]
        cache: dict[int, Any] = {}
        row = t.identities[index] if t.identities else None
        names = d.names = DeviceNames(d.id, a.group, index, row) if self._names else None
        dumps = t.encoding.dumps
        d.payloads = [
            compile_fields(
                s.payload,
                rng=rng,
                device_id=d.id,
                clock=clock_cell,
                cache=cache,
                names=names,
                dumps=dumps,
            )
            for s in model.statuses
        ]
        d.rng = device_rng(a.seed, a.group, index, "behaviour")
        d.status = model.pick_initial(d.rng)
        d.payload = d.payloads[d.status]
        if names is not None:
            names.status[0] = self.status_names[d.status]
        if self.streams:
            d.streams = [
                (
                    expand_topic(s.topic, device_id=d.id, group=a.group, index=index),
                    compile_fields(
                        s.payload,
                        rng=device_rng(a.seed, a.group, index, f"stream:{s.name}"),
                        device_id=d.id,
                        clock=clock_cell,
                        names=names,
                        dumps=s.encoding.dumps,
                    ),
                )
                for s in self.streams
            ]
        if t.faults.any:
            d.faults = DeviceFaults(t.faults, device_rng(a.seed, a.group, index, "faults"))
        fmt = {"device_id": d.id, "group": a.group, "index": index}
        if t.commands is not None:
            d.cmd_topic = t.commands.topic.format(**fmt)
        for k, tr in enumerate(model.transitions):
            if tr.topic is not None:
                d.msg_topics = d.msg_topics or {}
                d.msg_topics.setdefault(tr.topic.format(**fmt), []).append(k)
        return d

    def _options(self) -> SenderOptions:
        t, a = self.template, self.assignment
        subs: list[list[str]] = []
        wills: list[tuple[str, bytes, int, bool] | None] = []
        creds: list[tuple[str, str | None] | None] = []
        will = t.transport.mqtt.will if t.transport.mqtt is not None else None
        for d in self.devices:
            fmt = {"device_id": d.id, "group": a.group, "index": d.index}
            topics = [d.cmd_topic] if d.cmd_topic else []
            topics += list(d.msg_topics or ())
            subs.append(topics)
            if will is not None:
                wt, wp, wq, wr = will
                wills.append((wt.format(**fmt), wp.format(**fmt).encode(), wq, wr))
            creds.append(self._credentials(d, fmt))
        props = []
        if t.transport.mqtt is not None and t.transport.mqtt.properties is not None:
            user, ctype, expiry, response = t.transport.mqtt.properties
            for d in self.devices:
                fmt = {"device_id": d.id, "group": a.group, "index": d.index}
                props.append(
                    Properties(
                        user=tuple((k.format(**fmt), v.format(**fmt)) for k, v in user),
                        content_type=None if ctype is None else ctype.format(**fmt),
                        message_expiry_s=expiry,
                        response_topic=None if response is None else response.format(**fmt),
                    )
                )
        has_subs = any(subs)
        if not any(creds):
            creds = []  # nobody has their own: the transport's (no list entry per device)
        return SenderOptions(
            properties=props,
            subscriptions=subs if has_subs else [],
            on_message=self._on_message if has_subs else None,
            wills=wills,
            credentials=creds,
        )

    def _credentials(self, d: Device, fmt: dict[str, Any]) -> tuple[str, str | None] | None:
        """This device's username and password: its identities row, an Azure SAS token
        or the template's patterns (None: the transport's own)."""
        t = self.template
        row = t.identities[d.index] if t.identities else {}
        user = row.get("username")
        if user is None and t.credentials is not None:
            user = t.credentials[0].format(**fmt)
        pw = row.get("password")
        if pw is None and t.sas is not None and t.transport.mqtt is not None:
            key, group_key, resource, ttl, policy = t.sas
            if group_key:
                key = identity.derive_device_key(key, d.id)
            res = resource.format(host=t.transport.mqtt.host, device_id=d.id)
            pw = identity.sas_token(res, key, int(self.clock()) + ttl, policy)
        if pw is None and t.credentials is not None and t.credentials[1] is not None:
            pw = t.credentials[1].format(**fmt)
        return None if user is None else (user, pw)

    @property
    def key(self) -> tuple[int, int]:
        return self.assignment.key

    @property
    def running(self) -> int:
        return self.report.running

    # ---- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"group-{self.assignment.group}")

    def connections(self) -> int:
        """Sockets this group opens: one per device, one shared, or an HTTP pool."""
        tr = self.template.transport
        if tr.http is not None:
            return tr.http.connections
        return (1 if self.shared else len(self.device_ids)) + (1 if self.verify_on else 0)

    def connected(self) -> int:
        """Devices whose connection is up now, or down on purpose (a drop fault)."""
        s, devs = self.sender, self.devices
        return sum(1 for k in range(len(devs)) if devs[k].dropped or s.is_connected(k))

    async def _run(self) -> None:
        try:
            check_open_files(self.connections(), f"group {self.assignment.group}")
            if self.verifier is not None:
                ready = asyncio.Event()
                self._verify_task = asyncio.create_task(self._verify_loop(ready))
                # Subscribe before the first send, or the first messages count as lost.
                waiter = asyncio.create_task(ready.wait())
                done, _ = await asyncio.wait(
                    [waiter, self._verify_task],
                    timeout=VERIFY_READY_S,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                if self._verify_task in done or not ready.is_set():
                    raise AgentError(f"verify subscriber: {self._verify_failure()}")
            spec = self.template.transport.mqtt
            if spec is not None and spec.identity == "per_device":
                from agent import identity

                certs = await identity.current().provide_async(self.device_ids)
                self.sender.use_client_certs([(str(c.cert), str(c.key)) for c in certs])
            await self.sender.open()
            self.started_at = self.clock()
            self.report.running = len(self.device_ids)
            self.report.state = "running"
            self.begin(self.started_at)
            await self._loop()
        except asyncio.CancelledError:
            raise
        except AgentError as e:
            self._fail(str(e))
        except Exception as e:  # a broken mock must not take the agent down
            log.exception("group %s failed", self.assignment.group)
            self._fail(f"{type(e).__name__}: {e}")
        finally:
            self.report.running = 0

    def _fail(self, why: str) -> None:
        """The group cannot run: say why once, and never look 'starting' forever."""
        log.info("group %s failed: %s", self.assignment.group, why)  # reported, too
        self.failed = why
        self._refused += 1
        rep = self.report
        rep.errors = self._refused + getattr(self.sender, "errors", 0)
        rep.last_error = why
        rep.state, rep.reason = "stopped", f"failed: {why}"
        if self._verify_task is not None:
            self._verify_task.cancel()

    def begin(self, now: float) -> None:
        """Put every device's first events on the heap (also used by preview)."""
        self.started_at = self._status_mark = now
        n = max(len(self.devices), 1)
        ramp = self.timing.ramp_up_ms
        burst = self.timing.burst
        push = self._push
        for k, d in enumerate(self.devices):
            # Stagger the first sends (over one interval, or the ramp-up): real fleets
            # are not in lockstep, and a broker should not see them all at once.
            spread = ramp / 1000 if ramp is not None else self.intervals[d.status]
            d.next_due = now + spread * k / n
            push(d.next_due, SEND, d.slot, d.gen)
            if burst is not None:
                every = burst[1] / 1000
                push(now + every * (k + 1) / n, BURST, d.slot, None)
            for j, every in enumerate(self.stream_intervals):
                if every:
                    push(now + every * k / n, STREAM, d.slot, j)
            self._arm_timers(d, now)
        storm = self.template.faults.reconnect_storm
        if storm is not None:
            push(now + storm[2], STORM, -1, None)
        for k, tr in enumerate(self.model.transitions):
            if tr.cron is not None:
                nxt = tr.cron.next_after(now, self.tz)
                if nxt is not None:
                    push(nxt, CRON, -1, k)

    def _push(self, at: float, kind: int, slot: int, data: Any) -> None:
        heapq.heappush(self._heap, (at, next(self._n), kind, slot, data))

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while not self._stopped:
            wait = heap[0][0] - self.clock() if heap else 3600.0
            if wait > 0:
                # A future and a timer, like asyncio.sleep, but a command that
                # arrives meanwhile can wake us for its earlier reply.
                self._waiter = loop.create_future()
                handle = loop.call_later(wait, self._wake)
                await self._waiter
                handle.cancel()
                self._waiter = None
                if self._stopped:
                    break
            self.fire(self.clock())
            await asyncio.sleep(0)

    # ---- events --------------------------------------------------------------

    def fire(self, now: float) -> None:
        """Run every event due at ``now``."""
        heap = self._heap
        devs = self.devices
        plain = self._plain and self.trace is None
        while heap and heap[0][0] <= now:
            ev = heap[0]
            kind = ev[2]
            if kind == SEND:
                if plain:
                    self._plain_sends(now)
                    continue
                d = devs[ev[3]]
                if ev[4] != d.gen:
                    heapq.heappop(heap)
                    continue
                nxt = self._tick(d, ev[0], now)
                d.next_due = nxt
                heapq.heapreplace(heap, (nxt, next(self._n), SEND, d.slot, d.gen))
                continue
            heapq.heappop(heap)
            at, _, _, slot, data = ev
            if kind == TIMER:
                d = devs[slot]
                epoch, to = data
                if d.epoch == epoch:
                    self._transition(d, to, now)
            elif kind == BURST:
                d = devs[slot]
                assert self.timing.burst is not None
                n, every = self.timing.burst
                if self._active(d, now):
                    for _ in range(n):
                        self._emit(d, now)
                    self.report.lateness.add(int((now - at) * 1_000_000))
                self._push(max(at + every / 1000, now), BURST, slot, None)
            elif kind == STREAM:
                d = devs[slot]
                every = self.stream_intervals[data]
                if self._active(d, now):
                    self._stream(d, data, now)
                    self.report.lateness.add(int((now - at) * 1_000_000))
                nxt = at + every
                self._push(nxt if nxt >= now - every else now + every, STREAM, slot, data)
            elif kind == RECONNECT:
                self._spawn(self._reconnect(devs[slot]))
            elif kind == REPLY:
                self._reply(devs[slot], data, now)
            elif kind == STORM:
                self._storm(at, now)
            elif kind == CRON:
                tr = self.model.transitions[data]
                for d in devs:
                    if d.status in tr.sources:
                        self._transition(d, tr.to, now)
                assert tr.cron is not None
                nxt = tr.cron.next_after(now, self.tz)
                if nxt is not None:
                    self._push(nxt, CRON, -1, data)
        self._settle()

    def _plain_sends(self, now: float) -> None:
        """The due SEND events at the top of the heap, for a template with nothing to
        decide per send (see ``_plain``): _tick, _emit and _out folded into one loop
        with the lookups hoisted. Same order, same heap entries, same figures."""
        heap, devs = self._heap, self.devices
        sender = self.sender
        send = sender.send
        intervals, status_sent = self.intervals, self._status_sent
        rep = self.report
        hist = rep.lateness
        buckets = hist.buckets
        get = buckets.get
        table, n_table, index = _LATE_INDEX, len(_LATE_INDEX), wire.Histogram.index
        tie = self._n
        replace, pop = heapq.heapreplace, heapq.heappop
        batch = getattr(sender, "batch", None)
        put = batch() if batch is not None else None
        topics: list[str] = []
        payloads: list[bytes] = []
        add_topic, add_payload = topics.append, payloads.append
        sent = refused = 0
        max_us = hist.max_us
        try:
            while heap:
                ev = heap[0]
                due = ev[0]
                if due > now or ev[2] != SEND:
                    return
                d = devs[ev[3]]
                if ev[4] != d.gen:
                    pop(heap)
                    continue
                # Never dropped nor silenced: only faults do that.
                data = d.payload.encode(now)  # type: ignore[union-attr]
                if put is not None:
                    add_topic(d.topic)
                    add_payload(data)
                    status_sent[d.status] += 1
                elif send(d.slot, d.topic, data):
                    sent += 1
                    status_sent[d.status] += 1
                else:
                    refused += 1
                    rep.last_error = getattr(sender, "last_error", "") or "not connected"
                us = int((now - due) * 1_000_000)
                i = table[us] if 0 <= us < n_table else index(us)
                buckets[i] = get(i, 0) + 1
                if us > max_us:
                    max_us = us
                interval = intervals[d.status]
                nxt = due + interval
                if nxt < now - interval:  # fell far behind: skip rather than burst
                    nxt = now + interval
                d.next_due = nxt
                replace(heap, (nxt, next(tie), SEND, d.slot, d.gen))
        finally:
            if put is not None:
                put(topics, payloads)
                sent = len(payloads)
            rep.sent += sent
            self._refused += refused
            hist.count += sent + refused
            hist.max_us = max_us

    def _settle(self) -> None:
        """Take in what the transport learnt after accepting messages: late failures
        are errors, and a publish the broker refused (reason code >= 0x80) is an
        error and no longer a message sent."""
        s, rep = self.sender, self.report
        late = getattr(s, "errors", 0)
        if late != self._late:
            self._late = late
            rep.last_error = getattr(s, "last_error", "") or rep.last_error
        rep.errors = self._refused + late
        refused = getattr(s, "refused", 0)
        if refused != self._unsent:
            rep.sent -= refused - self._unsent
            self._unsent = refused
        now = self.clock()
        if now - self._status_mark >= STATUS_FIGURES_S or self._stopped:
            self._status_figures(now)

    def _accrue(self, now: float) -> None:
        """Add the device-seconds since the last mark to each status's time."""
        mark = self._status_mark
        if mark and now > mark:
            dt = now - mark
            secs = self._status_s
            for i, n in enumerate(self._in_status):
                secs[i] += n * dt
        self._status_mark = now

    def _status_figures(self, now: float) -> None:
        if self.started_at is None:
            return
        self._accrue(now)
        rep, names = self.report, self.status_names
        rep.status_seconds = {n: round(t, 3) for n, t in zip(names, self._status_s, strict=True)}
        rep.status_sends = dict(zip(names, self._status_sent, strict=True))
        rep.ready = self.ready()

    def ready(self) -> int:
        """Devices connected with their subscriptions acknowledged (0 before start)."""
        if self.report.state != "running":
            return 0
        subscribed = getattr(self.sender, "subscribed", None)
        if subscribed is not None and not subscribed():
            return 0  # counted per group: the readiness a run waits for is all or none
        return self.connected()

    def _active(self, d: Device, now: float) -> bool:
        if d.dropped or now < d.silent_until or self.silent[d.status]:
            return False
        return self.windows is None or self.windows.open(now)

    def _tick(self, d: Device, due: float, now: float) -> float:
        """One scheduled send of one device; returns its next due time."""
        rep = self.report
        if self._active(d, now):
            for tr in self.prob_trans[d.status]:
                if d.rng.random() < tr.probability:
                    self._transition(d, tr.to, now)
                    break
            f = d.faults
            if self.silent[d.status] or (
                f is not None and (f.silent or f.tcp_drop) and self._connection_faults(d, f, now)
            ):
                rep.skipped += 1
            else:
                self._emit(d, now)
                rep.lateness.add(int((now - due) * 1_000_000))
        else:
            rep.skipped += 1
        interval = self.intervals[d.status]
        if self._jitter_s or self._poisson:
            nxt = next_send(due, interval, self._jitter_s, self._poisson, d.rng)
        else:
            nxt = due + interval  # what next_send gives, without the call
        if nxt < now - interval:  # fell far behind: skip rather than burst
            nxt = now + interval
        return nxt

    def _connection_faults(self, d: Device, f: DeviceFaults, now: float) -> bool:
        """Draw silent / TCP drop for this send; True when the device goes quiet."""
        if f.silent and f.rng.random() < f.silent:
            d.silent_until = now + f.silent_s
            count(self.report.faults, "silent")
            return True
        if f.tcp_drop and f.rng.random() < f.tcp_drop:
            self._drop(d, now, f.tcp_reconnect_s)
            count(self.report.faults, "tcp_drop")
            return True
        return False

    def _emit(self, d: Device, now: float) -> None:
        """Generate one message and send it, with the value and wire faults it draws."""
        payload = d.payload
        assert payload is not None
        f = d.faults
        if f is None and not self.verify_on:
            self._out(d, payload.encode(now))
            return
        counts = self.report.faults
        if f is not None and (f.skew_s or f.drift_ppm):  # f.clock, without the call
            assert self.started_at is not None
            payload.clock[0] = f.clock_shift(now, self.started_at)
            # Messages sent with a skewed (drifting) clock: count(), inline.
            if f.skew_s:
                counts["clock_skew"] = counts.get("clock_skew", 0) + 1
            if f.drift_ppm:
                counts["clock_drift"] = counts.get("clock_drift", 0) + 1
        values = payload.next(now)
        if f is not None and (f.range_rate or f.wrong or f.missing):
            f.damage_values(values, self.bounds[d.status], counts)
        if self.verify_on:
            d.seq += 1
            values[MARK] = {"s": d.seq, "t": int(now * 1000)}
        data = payload.dumps(values)
        if f is None:
            self._out(d, data)
            return
        rng = f.rng
        if f.malformed and rng.random() < f.malformed:
            data = malformed(data, rng)
            count(counts, "malformed_json")
        if d.held is not None:
            held, d.held = d.held, None
            self._out(d, data)
            self._out(d, held)
        elif f.out_of_order and rng.random() < f.out_of_order:
            d.held = data  # goes out right after the next message
            count(counts, "out_of_order")
            return
        else:
            self._out(d, data)
        if f.duplicate and rng.random() < f.duplicate:
            self._out(d, data)
            count(counts, "duplicate")

    def _out(
        self, d: Device, data: bytes, topic: str | None = None, qos: int | None = None
    ) -> None:
        topic = topic or d.topic
        ok = (
            self.sender.send(d.slot, topic, data)
            if qos is None
            else self.sender.send(d.slot, topic, data, qos=qos)
        )
        if ok:
            self.report.sent += 1
            self._status_sent[d.status] += 1
            if self.trace is not None:
                now = self.clock()
                self.trace.append((now, d.slot, topic, data, self.model.statuses[d.status].name))
        else:
            self._refused += 1
            self.report.last_error = getattr(self.sender, "last_error", "") or "not connected"

    def _stream(self, d: Device, j: int, now: float) -> None:
        """One message of the device's extra stream ``j`` (heartbeat, event, ...)."""
        assert d.streams is not None
        topic, payload = d.streams[j]
        self._out(d, payload.encode(now), topic=topic, qos=self.streams[j].qos)

    # ---- statuses --------------------------------------------------------------

    def _arm_timers(self, d: Device, now: float) -> None:
        for tr in self.after_trans[d.status]:
            assert tr.after_s is not None
            self._push(now + tr.after_s, TIMER, d.slot, (d.epoch, tr.to))

    def _transition(self, d: Device, to: int, now: float) -> None:
        if to == d.status:
            return
        rep = self.report
        names = self.status_names
        self._accrue(now)
        n = self._in_status
        n[d.status] -= 1
        n[to] += 1
        old, new = names[d.status], names[to]
        rep.statuses[old] = n[d.status]
        rep.statuses[new] = n[to]
        rep.transitions += 1
        move = f"{old}>{new}"
        rep.moves[move] = rep.moves.get(move, 0) + 1
        d.status = to
        d.epoch += 1
        d.payload = d.payloads[to]
        if d.names is not None:
            d.names.status[0] = new
        self._arm_timers(d, now)
        if self.event_streams and self._active(d, now):
            for j in self.event_streams:
                self._stream(d, j, now)
        # A shorter interval takes effect now, not after the old, longer wait.
        due = now + self.intervals[to]
        if due < d.next_due:
            d.gen += 1
            d.next_due = due
            self._push(due, SEND, d.slot, d.gen)
            self._wake()

    # ---- commands and messages -------------------------------------------------

    def _on_message(self, slot: int, topic: str, payload: bytes) -> None:
        """Called by the transport for a message on one of a device's topics."""
        if not 0 <= slot < len(self.devices):
            return
        d = self.devices[slot]
        now = self.clock()
        if d.dropped and self.sender.is_connected(slot):
            # Back before _reconnect resumed: a persistent session's queued commands
            # arrive right after CONNACK, and the device answers them.
            for x in self.devices if self.shared else (d,):
                x.dropped = False
        cmds = self.template.commands
        if cmds is not None and topic == d.cmd_topic:
            self.report.commands += 1
            failed = d.rng.random() < cmds.fail_rate
            self._push(now + cmds.reply_after_s, REPLY, slot, (bytes(payload), failed))
            self._wake()
        if d.msg_topics:
            for k in d.msg_topics.get(topic, ()):
                tr = self.model.transitions[k]
                if d.status in tr.sources and (tr.match is None or tr.match in payload):
                    self._transition(d, tr.to, now)
                    break

    def _reply(self, d: Device, data: tuple[bytes, bool], now: float) -> None:
        cmds = self.template.commands
        assert cmds is not None
        if not self._active(d, now):
            return  # an offline or silent device does not answer
        request, failed = data
        body = command_reply(request, device_id=d.id, failed=failed, now=now)
        # Formatted when needed, not kept per device: replies are a few per cent of sends.
        a = self.assignment
        topic = cmds.reply_topic.format(device_id=d.id, group=a.group, index=d.index)
        self._out(d, body, topic=topic, qos=cmds.qos)
        self.report.replies += 1
        if failed:
            self.report.replies_error += 1
        if not failed and cmds.set_status is not None:
            self._transition(d, self.model.index(cmds.set_status), now)

    # ---- connection faults -------------------------------------------------------

    def _drop(self, d: Device, now: float, reconnect_after: float) -> None:
        for x in self.devices if self.shared else (d,):
            x.dropped = True
        self.sender.drop(d.slot)
        self._push(now + reconnect_after, RECONNECT, d.slot, None)

    async def _reconnect(self, d: Device) -> None:
        ok = await self.sender.reconnect(d.slot)
        if self._stopped:
            return
        if ok:
            for x in self.devices if self.shared else (d,):
                x.dropped = False
            self.report.reconnects += 1
        else:
            self._push(self.clock() + RECONNECT_RETRY_S, RECONNECT, d.slot, None)
            self._wake()

    def _storm(self, at: float, now: float) -> None:
        storm = self.template.faults.reconnect_storm
        assert storm is not None and self.started_at is not None
        rate, reconnect_after, start_after, duration = storm
        if duration is not None and at >= self.started_at + start_after + duration:
            return
        rng = self.devices[0].rng if self.devices else None
        if rng is not None:
            # A few random picks find an up device without scanning the fleet.
            for _ in range(8):
                d = self.devices[rng.randrange(len(self.devices))]
                if not d.dropped:
                    self._drop(d, now, reconnect_after)
                    count(self.report.faults, "reconnect_storm")
                    break
        # Keep the phase (at + 1/rate), so the rate holds even when a tick runs late.
        self._push(max(at + 1 / rate, now - 1), STORM, -1, None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- verification ------------------------------------------------------------

    async def _verify_loop(self, ready: asyncio.Event) -> None:
        import aiomqtt  # only groups with verify: true pay for it

        spec = self.template.transport.mqtt
        assert spec is not None and self.verifier is not None
        tls = client_context(spec) if spec.tls else None
        a = self.assignment
        topics = set(self.topics)
        verifier, rep = self.verifier, self.report
        async with aiomqtt.Client(
            spec.host,
            spec.port,
            identifier=f"mm-verify-{a.group}-{a.run_id}-{a.index_start}",
            username=spec.username,
            password=spec.password,
            tls_context=tls,
            tls_insecure=True if getattr(spec, "insecure", False) else None,
            transport="websockets" if spec.ws_path else "tcp",
            websocket_path=spec.ws_path,
        ) as client:
            qos = self.template.verify_qos if self.template.verify_qos is not None else 1
            await client.subscribe(_wildcard(self.template.transport.topic), qos=qos)
            ready.set()
            last = 0.0
            async for m in client.messages:
                source = str(m.topic)
                if source not in topics:
                    continue
                now = time.time()
                data = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                verifier.observe_payload(source, data, now * 1000)
                if now - last > 1.0:
                    rep.verify = verifier.snapshot()
                    last = now

    def _verify_failure(self) -> str:
        task = self._verify_task
        spec = self.template.transport.mqtt
        where = f"{spec.host}:{spec.port}" if spec is not None else "?"
        if task is None or not task.done():
            return f"no subscription at {where} within {VERIFY_READY_S:g}s"
        if task.cancelled():
            return "cancelled"
        e = task.exception()
        return f"cannot subscribe at {where}: {e}" if e else "ended early"

    async def _finish_verify(self) -> None:
        verifier = self.verifier
        if verifier is None or self._verify_task is None:
            return
        expected = {d.topic: d.seq for d in self.devices if d.seq}
        total = sum(expected.values())
        deadline = time.monotonic() + VERIFY_GRACE_S
        while time.monotonic() < deadline and not self._verify_task.done():
            r = verifier.report
            if r.received - r.duplicates + r.malformed >= total:
                break
            await asyncio.sleep(0.05)
        self._verify_task.cancel()
        await asyncio.gather(self._verify_task, return_exceptions=True)
        self.report.verify = verifier.finish(expected)

    async def stop(self, reason: str = "") -> None:
        self._stopped = True
        self._wake()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except TimeoutError:
                self._task.cancel()
        # A held (out-of-order) message is still owed; it goes out in order after
        # all, so it no longer counts as reordered.
        for d in self.devices:
            if d.held is not None and not d.dropped:
                held, d.held = d.held, None
                self._out(d, held)
                count(self.report.faults, "out_of_order", -1)
        for task in list(self._tasks):
            task.cancel()
        await self._finish_verify()
        await self.sender.close()
        self._settle()
        self.report.running = 0
        self.report.state = "stopped"
        self.report.reason = f"failed: {self.failed}" if self.failed else reason


_SPARKPLUG: type[GroupRunner] | None = None


def _sparkplug_runner() -> type[GroupRunner]:
    global _SPARKPLUG
    if _SPARKPLUG is None:
        from agent.sparkplug import make_runner_class

        _SPARKPLUG = make_runner_class(GroupRunner)
    return _SPARKPLUG


# ---- preview -------------------------------------------------------------------


class _Recorder:
    """A sender that only records (for preview): always connected, never fails."""

    last_error = ""
    errors = 0

    def __init__(self, device_ids: list[str], options: SenderOptions | None = None) -> None:
        self.device_ids = device_ids
        self.options = options or SenderOptions()

    def connect_all(self) -> None:
        """What a real sender does on each connect: wills, then the connect hook."""
        o = self.options
        for slot in range(len(self.device_ids)):
            if o.will_for is not None:
                o.will_for(slot)
            if o.on_connected is not None:
                o.on_connected(slot)

    async def open(self) -> None:
        pass

    def send(self, slot: int, topic: str, payload: bytes, *, qos: int | None = None) -> bool:
        return True

    def is_connected(self, slot: int) -> bool:
        return True

    def drop(self, slot: int) -> None:
        pass

    async def reconnect(self, slot: int) -> bool:
        return True

    async def close(self) -> None:
        pass


async def preview(
    template_name: str,
    template: dict[str, Any],
    *,
    group: str = "preview",
    devices: int = 3,
    count: int = 5,
    seed: int | None = None,
    start: float | None = None,
) -> list[dict[str, Any]]:
    """What ``devices`` mocks would send first, on a virtual clock; sends nothing.

    Runs the real engine (statuses, faults, timing) against a recording sender,
    jumping the clock from event to event instead of waiting.
    """
    now = [time.time() if start is None else start]
    a = wire.Assignment(
        group_id=0,
        group=group,
        run_id=0,
        template_name=template_name,
        template=template,
        index_start=0,
        index_end=devices,
        seed=seed,
        lease_until=math.inf,
    )
    runner = GroupRunner(
        a, sender_factory=lambda t, ids, o: _Recorder(ids, o), clock=lambda: now[0]
    )
    runner.trace = []
    runner.begin(now[0])
    assert isinstance(runner.sender, _Recorder)
    runner.sender.connect_all()  # e.g. Sparkplug births
    want = devices * count
    for _ in range(want * 50 + 1000):  # silent devices must not spin forever
        if len(runner.trace) >= want or not runner._heap:
            break
        now[0] = max(now[0], runner._heap[0][0])
        runner.fire(now[0])
        await asyncio.sleep(0)  # let reconnect tasks run
    out = []
    for at, slot, topic, data, status in runner.trace[:want]:
        row: dict[str, Any] = {"t": round(at, 3), "device": runner.device_ids[slot]}
        row["topic"] = topic
        row["status"] = status
        try:
            row["payload"] = orjson.loads(data)
        except orjson.JSONDecodeError:
            if runner.template.encoding.json and runner.template.sparkplug is None:
                row["raw"] = data.decode(errors="replace")  # a malformed_json fault
            else:
                row["hex"] = data.hex()  # msgpack, cbor, protobuf, raw bytes
        out.append(row)
    return out
