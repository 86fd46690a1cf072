"""The agent process: converge on the desired state, run mocks, report usage.

Control plane on aiomqtt (low volume, clean async API). The retained desired
state is the truth: on every (re)connect the agent reconciles to it. Usage is
journaled before it is published and replayed until acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import platform
import random
import resource
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt
import msgspec

from agent import __version__, identity, wire
from agent.engine import GroupRunner
from agent.errors import AgentError
from agent.journal import JOURNAL_FILE, Journal
from agent.limits import raise_open_files_limit
from agent.tail import Inspector
from agent.tls import control_context

log = logging.getLogger(__name__)

CONFIG_FILE = "agent.json"
CHECKPOINT_S = 0.25
"""At most this long between writes of the open usage and the counters to the journal:
what a kill -9 can lose of them."""
DURABLE_S = 1.0
"""At most this long between fsync'd writes: what a power cut can lose (one fsync a
second is fine on a board; the checkpoints between reach the OS, not the disk)."""
PAST_REPORTS_S = 3600.0
"""How long a restarted agent repeats its killed predecessors' last counters."""


class AgentConfig(msgspec.Struct, kw_only=True):
    """What enrollment gave this board; stored 0600 because it holds a secret."""

    agent_id: str
    mqtt_url: str
    username: str = ""
    password: str = ""
    appliance_url: str = ""
    capacity: int = 10_000
    mqtt_ca: str = ""
    """PEM of the CA that signed the broker's certificate (mqtts://); empty: system CAs."""

    def save(self, data_dir: Path) -> Path:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)  # mkdir's mode yields to the umask, and never to an old dir
        path = data_dir / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a leftover .tmp may have had looser bits
        with os.fdopen(fd, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(self)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, data_dir: Path) -> AgentConfig:
        path = data_dir / CONFIG_FILE
        try:
            return msgspec.json.decode(path.read_bytes(), type=cls)
        except FileNotFoundError:
            raise AgentError(
                f"{path}: not enrolled yet (run `mockmock-agent enroll URL TOKEN` first)"
            ) from None
        except msgspec.DecodeError as e:
            raise AgentError(f"{path}: {e}") from None


def broker_address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise AgentError(f"mqtt_url: {url!r} is not an mqtt:// or mqtts:// URL")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


SlotKey = tuple[int, int, int]
"""(group id, run id, index start): one agent may run several ranges of one run."""


def slot_of(a: wire.Assignment) -> SlotKey:
    return (a.group_id, a.run_id, a.index_start)


def fold(into: wire.GroupReport | None, rep: wire.GroupReport) -> wire.GroupReport:
    """Add one range's cumulative report to the (group, run) total the appliance sees."""
    if into is None:
        into = wire.GroupReport(
            group_id=rep.group_id, run_id=rep.run_id, running=0, state="stopped"
        )
    into.running += rep.running
    into.sent += rep.sent
    into.errors += rep.errors
    into.lateness.merge(rep.lateness)
    into.merge_behaviour(rep)
    order = ("stopped", "starting", "running")
    if order.index(rep.state) > order.index(into.state):
        into.state, into.reason = rep.state, ""
    elif rep.state == into.state == "stopped" and rep.reason:
        into.reason = rep.reason
    into.last_error = rep.last_error or into.last_error
    return into


def _ended(rep: wire.GroupReport) -> wire.GroupReport:
    """An earlier process's figures: what it counted stays, nothing of it runs."""
    return msgspec.structs.replace(
        rep, running=0, state="stopped", reason=rep.reason or "agent restarted"
    )


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Agent:
    """One agent: the control loop, the usage ticker and the running groups."""

    def __init__(
        self,
        config: AgentConfig,
        data_dir: Path,
        *,
        tick_s: float = 1.0,
        lease_check_s: float = 1.0,
        report_s: float = 2.0,
        prune_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.journal = Journal(data_dir / JOURNAL_FILE, clock=clock)
        self.tick_s = tick_s
        # Between usage records, the open intervals and the counters are checkpointed
        # every CHECKPOINT_S at most: ``step`` divides the usage interval evenly.
        per_cut = max(1, math.ceil(tick_s / CHECKPOINT_S - 1e-9))
        self.step_s = tick_s / per_cut
        self._steps_per_cut = per_cut
        self._steps_per_save = max(1, round(CHECKPOINT_S / self.step_s))
        self._steps_per_sync = max(1, round(DURABLE_S / self.step_s))
        self._steps = 0
        self._saved_report = b""
        self.prune_s = prune_s
        self._pruned_at = float("-inf")
        self.lease_check_s = lease_check_s
        self.report_s = report_s
        self.clock = clock
        # This process: counters start from zero under a new incarnation, which the
        # appliance adds to the earlier ones instead of replacing them.
        self.incarnation = secrets.token_hex(8)
        self.started_at = clock()
        self.previous = [
            wire.PastIncarnation(
                incarnation=p.incarnation,
                started_at=p.started_at,
                groups=[_ended(g) for g in p.groups],
            )
            for p in self.journal.past_reports(
                exclude=self.incarnation, since=self.started_at - PAST_REPORTS_S
            )
        ]
        self.revision = 0
        self.runners: dict[SlotKey, GroupRunner] = {}
        # Per (group, run): the folded reports of ranges that stopped, and when.
        self.finished: dict[tuple[int, int], tuple[float, wire.GroupReport]] = {}
        self.errors: list[str] = []
        self._last_cut: dict[SlotKey, int] = {}
        self._client: aiomqtt.Client | None = None
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cpu_mark = (time.monotonic(), time.process_time())
        self.connected = asyncio.Event()
        self.inspector = Inspector(
            lambda: list(self.runners.values()),
            lambda: self._client,
            self._t(wire.INSPECT_REPLY),
            clock=clock,
        )
        identity.configure_for_agent(config, data_dir)  # per-device certificates, if asked

    def _t(self, kind: str) -> str:
        return wire.topic(self.config.agent_id, kind)

    # ---- lifecycle -------------------------------------------------------

    async def run(self) -> None:
        """Run until ``stop()``; survives broker and appliance outages."""
        loops = [
            self._control_loop(),
            self._tick_loop(),
            self._lease_loop(),
            self._report_loop(),
        ]
        tasks = [asyncio.create_task(c) for c in loops]
        try:
            await self._stop.wait()
            await self._goodbye()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for key in list(self.runners):
                await self._stop_runner(key, "agent stopped")
            self._save_report()
            self.journal.close()

    async def _goodbye(self, timeout: float = 3.0) -> None:
        """A clean stop: final counts and usage out, then ``offline`` (no LWT fires)."""
        for key in list(self.runners):
            await self._stop_runner(key, "agent stopped")
        client = self._client
        if client is None:
            return
        offline = wire.encode(wire.Presence(status="offline", at=self.clock()))
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(timeout):
                await self._publish_report()
                await self._flush_usage(stale_only=False)
                await client.publish(self._t(wire.PRESENCE), offline, qos=1, retain=True)

    def stop(self) -> None:
        self._stop.set()

    async def _control_loop(self) -> None:
        host, port, tls = broker_address(self.config.mqtt_url)
        offline = wire.encode(wire.Presence(status="offline"))
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(
                    host,
                    port,
                    identifier=wire.agent_client_id(self.config.agent_id),
                    username=self.config.username or None,
                    password=self.config.password or None,
                    will=aiomqtt.Will(self._t(wire.PRESENCE), offline, qos=1, retain=True),
                    tls_context=control_context(self.config.mqtt_ca) if tls else None,
                    protocol=aiomqtt.ProtocolVersion.V311,
                    keepalive=15,
                ) as client:
                    delay = 0.5
                    await client.subscribe(self._t(wire.DESIRED), qos=1)
                    await client.subscribe(self._t(wire.USAGE_ACK), qos=1)
                    await client.subscribe(self._t(wire.INSPECT), qos=1)
                    await client.publish(
                        self._t(wire.PRESENCE), self._presence(), qos=1, retain=True
                    )
                    self._client = client
                    self.connected.set()
                    log.info("agent %s connected to %s:%s", self.config.agent_id, host, port)
                    await self._flush_usage(stale_only=False)
                    async for msg in client.messages:
                        await self._on_message(str(msg.topic), msg.payload, retained=msg.retain)
            except aiomqtt.MqttError as e:
                log.warning("control bus: %s; retrying in %.1fs", e, delay)
            finally:
                self._client = None
                self.connected.clear()
            # Exponential backoff with full jitter: a broker restart must not be met
            # by every board of a lab at the same instant.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, 30.0)

    def _presence(self) -> bytes:
        return wire.encode(
            wire.Presence(
                status="online",
                version=__version__,
                hostname=socket.gethostname(),
                arch=platform.machine(),
                cores=os.cpu_count() or 1,
                mem_mb=int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20),
                capacity=self.config.capacity,
                at=self.clock(),
            )
        )

    async def _on_message(self, topic: str, payload: object, *, retained: bool = False) -> None:
        data = payload if isinstance(payload, (bytes, bytearray)) else str(payload).encode()
        try:
            if topic == self._t(wire.DESIRED):
                if data:
                    await self.apply(wire.decode(wire.Desired, data))
            elif topic == self._t(wire.USAGE_ACK) and data:
                self.on_ack(wire.decode(wire.UsageAck, data), retained=retained)
            elif topic == self._t(wire.INSPECT) and data:
                self.inspector.answer_soon(wire.decode(wire.InspectRequest, data))
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            self._error(f"bad message on {topic}: {e}")

    def on_ack(self, ack: wire.UsageAck, *, retained: bool = False) -> None:
        """Apply an ack meant for this journal; an earlier journal's (retained) is not."""
        epoch = self.journal.epoch
        # An ack without an epoch comes from an appliance older than epochs: a live one
        # answers our records, a retained one may be about an earlier journal.
        if ack.epoch == epoch or (not ack.epoch and not retained):
            self.journal.ack(ack.seq)

    def _error(self, text: str) -> None:
        log.warning("%s", text)
        self.errors = [*self.errors[-9:], text]

    # ---- reconcile -------------------------------------------------------

    async def apply(self, desired: wire.Desired) -> None:
        """Converge on ``desired``: start what is missing, stop what is extra."""
        self.revision = desired.revision
        now = self.clock()
        # Keyed by range, so a range added by a scale-up or a failover starts without
        # touching the ranges this agent already runs.
        wanted = {slot_of(a): a for a in desired.assignments}
        for key, runner in list(self.runners.items()):
            a = wanted.get(key)
            if a is None:
                await self._stop_runner(key, "stopped by appliance")
            elif a.index_end != runner.assignment.index_end:
                await self._stop_runner(key, "rescaled")
            else:
                runner.assignment = a  # a renewed lease
        for key, a in wanted.items():
            if key in self.runners:
                continue
            if a.lease_until <= now:
                continue
            try:
                runner = GroupRunner(a, clock=self.clock)
            except AgentError as e:
                self._error(f"group {a.group}: {e}")
                continue
            self.runners[key] = runner
            runner.start()
        await self._publish_report()

    async def _stop_runner(self, key: SlotKey, reason: str) -> None:
        self._cut_usage(only=key)  # bill up to the moment it stops, not the last tick
        runner = self.runners.pop(key)
        await runner.stop(reason)
        self._last_cut.pop(key, None)
        run = (key[0], key[1])
        _, done = self.finished.get(run, (0.0, None))
        self.finished[run] = (self.clock(), fold(done, runner.report))

    # ---- usage -----------------------------------------------------------

    def _open_usage(self, only: SlotKey | None = None) -> list[wire.UsageLine]:
        """What each range ran since its last record, up to now."""
        now_ms = int(self.clock() * 1000)
        lines = []
        for key, r in self.runners.items():
            if only is not None and key != only:
                continue
            if r.running <= 0 or r.started_at is None:
                continue
            start = self._last_cut.get(key, int(r.started_at * 1000))
            if now_ms <= start:
                continue
            lines.append(
                wire.UsageLine(
                    group_id=key[0],
                    run_id=key[1],
                    index_start=key[2],
                    devices=r.running,
                    start_ms=start,
                    end_ms=now_ms,
                )
            )
        return lines

    def _cut_usage(self, only: SlotKey | None = None) -> wire.UsageRecord | None:
        lines = self._open_usage(only)
        if not lines:
            return None
        rec = self.journal.append(lines)
        for line in lines:
            self._last_cut[line.slot] = line.end_ms
        return rec

    def tick(self) -> wire.UsageRecord | None:
        """One step (every CHECKPOINT_S at most) of the usage ticker: cut a record when the
        usage interval is over, else checkpoint the open intervals; the counters ride
        along, all in one commit."""
        self._steps += 1
        cut_due = self._steps % self._steps_per_cut == 0
        report = None
        if self._steps % self._steps_per_save == 0:
            report = self._report_to_save()
        lines = self._open_usage()
        saving = report[0] if report is not None else None
        if cut_due:
            rec = self.journal.save(cut=lines, report=saving) if lines or saving else None
            if rec is not None:
                for line in lines:
                    self._last_cut[line.slot] = line.end_ms
        else:
            rec = None
            if lines or saving or self.journal.open_lines():
                durable = self._steps % self._steps_per_sync == 0
                self.journal.save(open_lines=lines, report=saving, durable=durable)
        if report is not None:
            self._saved_report = report[1]
        return rec

    def _report_to_save(
        self,
    ) -> tuple[tuple[str, float, list[wire.GroupReport]], bytes] | None:
        """This process's counters and their encoding, when they changed since saved."""
        groups = self._group_reports()
        encoded = msgspec.json.encode(groups)
        if not groups or encoded == self._saved_report:
            return None
        return (self.incarnation, self.started_at, groups), encoded

    def _save_report(self) -> None:
        report = self._report_to_save()
        if report is not None:
            self.journal.save(report=report[0])
            self._saved_report = report[1]

    async def _flush_usage(self, *, stale_only: bool) -> None:
        client = self._client
        if client is None:
            return
        older = self.clock() - 10 if stale_only else None
        recs = self.journal.unacked(limit=500, older_than=older)
        for rec in recs:
            await client.publish(self._t(wire.USAGE), wire.encode(rec), qos=1)
        if recs:
            self.journal.mark_sent([r.seq for r in recs])

    async def _tick_loop(self) -> None:
        flushed = time.monotonic()
        while True:
            now = self.clock()
            if now - self._pruned_at >= self.prune_s:
                self._pruned_at = now
                self.journal.prune()  # acknowledged rows would grow forever
            await asyncio.sleep(self.step_s)
            rec = self.tick()
            client = self._client
            if rec is not None and client is not None:
                try:
                    await client.publish(self._t(wire.USAGE), wire.encode(rec), qos=1)
                    self.journal.mark_sent([rec.seq])
                except aiomqtt.MqttError:
                    pass  # stays in the journal; replayed on reconnect
            if time.monotonic() - flushed >= 5:
                flushed = time.monotonic()
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._flush_usage(stale_only=True)
            live = {(k[0], k[1]) for k in self.runners}
            for run, (at, _) in list(self.finished.items()):
                if now - at > 600 and run not in live:
                    del self.finished[run]
            if self.previous and now - self.started_at > PAST_REPORTS_S:
                self.previous = []

    async def _lease_loop(self) -> None:
        """Licensing on hardware the vendor does not control: no renewal, no mocks."""
        while True:
            await asyncio.sleep(self.lease_check_s)
            await self.expire_leases()

    async def expire_leases(self) -> None:
        now = self.clock()
        expired = [k for k, r in self.runners.items() if r.assignment.lease_until <= now]
        for key in expired:
            a = self.runners[key].assignment
            self._error(
                f"group {a.group}: lease expired, mocks {a.index_start}-{a.index_end - 1} "
                "stopped (no renewal from the appliance)"
            )
            await self._stop_runner(key, "lease expired")
        if expired:
            await self._publish_report()

    # ---- reports ---------------------------------------------------------

    def _cpu_percent(self) -> float:
        t, c = time.monotonic(), time.process_time()
        t0, c0 = self._cpu_mark
        self._cpu_mark = (t, c)
        return round(100 * (c - c0) / (t - t0), 1) if t > t0 else 0.0

    def _group_reports(self) -> list[wire.GroupReport]:
        merged: dict[tuple[int, int], wire.GroupReport] = {}
        for run, (_, done) in self.finished.items():
            merged[run] = fold(None, done)
        for (group_id, run_id, _), r in self.runners.items():
            merged[(group_id, run_id)] = fold(merged.get((group_id, run_id)), r.report)
        return list(merged.values())

    def reported(self) -> wire.Reported:
        return wire.Reported(
            revision=self.revision,
            groups=self._group_reports(),
            errors=list(self.errors),
            cpu_percent=self._cpu_percent(),
            rss_mb=round(_rss_mb(), 1),
            at=self.clock(),
            incarnation=self.incarnation,
            started_at=self.started_at,
            previous=self.previous,
        )

    async def _publish_report(self) -> None:
        client = self._client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(
                self._t(wire.REPORTED), wire.encode(self.reported()), qos=1, retain=True
            )

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_s)
            await self._publish_report()


def run_agent(
    data_dir: Path, config: AgentConfig | None = None, *, usage_interval: float = 1.0
) -> None:
    """Blocking entry point for ``mockmock-agent run``."""
    cfg = config or AgentConfig.load(data_dir)
    raise_open_files_limit()  # one descriptor per per-device connection
    agent = Agent(cfg, data_dir, tick_s=usage_interval)

    async def main() -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop)
        await agent.run()

    asyncio.run(main())


def default_data_dir() -> Path:
    return Path(os.environ.get("MOCKMOCK_AGENT_DIR", "~/.local/share/mockmock-agent")).expanduser()
