"""The agent's durable usage journal (stdlib sqlite3, fsync'd on every commit).

Billable usage is written here *before* it is published, and stays until the
appliance acknowledges it, so neither an agent crash, a broker restart nor an
appliance outage loses a second. Acknowledged records are kept (marked) for a
while so an operator can audit what a board reported; ``prune`` drops old ones.

Three more things live here because they must survive a kill -9 too:

- the journal's **epoch**, a random id made with the file: sequence numbers are
  per journal, so a board whose journal was replaced starts a new sequence the
  appliance tells apart from the old one instead of dropping it as duplicates;
- the **open intervals** (``checkpoint``): usage that has run since the last record
  but is not cut yet; a process killed before its next cut leaves them here, and the
  next start turns them into a record, so a crash loses at most the time since the
  last checkpoint;
- the last **counters** each agent process (incarnation) reported, so a restarted
  agent can repeat what its killed predecessor counted after its last report.

The file and its folder are private to the agent's user (0600/0700, whatever the
umask): usage is what the board's owner is billed on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from agent import wire
from agent.errors import AgentError

JOURNAL_FILE = "usage-journal.sqlite3"
SIDE_SUFFIXES = ("-wal", "-shm")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS open_usage (
    group_id INTEGER NOT NULL,
    run_id INTEGER NOT NULL,
    index_start INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (group_id, run_id, index_start)
);
CREATE TABLE IF NOT EXISTS reports (
    incarnation TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    body BLOB NOT NULL
);
"""


PRUNE_BATCH = 5_000
"""Records one prune may drop; the agent prunes every minute, so this outpaces the fastest
usage interval (20 records a second) many times over."""


class JournalCorrupt(AgentError):
    """The journal file cannot be read; the message says how to recover."""


def reset_command(data_dir: Path) -> str:
    return f"mockmock-agent journal reset --data-dir {shlex.quote(str(data_dir))}"


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 (or tighten it): SQLite gives its -wal and -shm the same bits."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken bits away, or an old file had more
    finally:
        os.close(fd)
    for suffix in SIDE_SUFFIXES:
        side = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(side, 0o600)


def move_aside(data_dir: Path, tag: str) -> Path | None:
    """Rename the journal (and its -wal/-shm) to ``usage-journal.<tag>.sqlite3``."""
    path = data_dir / JOURNAL_FILE
    if not path.exists():
        return None
    target = data_dir / f"usage-journal.{tag}.sqlite3"
    n = 1
    while target.exists():
        n += 1
        target = data_dir / f"usage-journal.{tag}-{n}.sqlite3"
    path.rename(target)
    for suffix in SIDE_SUFFIXES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


_groups_decoder = msgspec.json.Decoder(list[wire.GroupReport])


def _decode_groups(body: bytes) -> list[wire.GroupReport]:
    return _groups_decoder.decode(body)


@dataclass(frozen=True)
class PastReport:
    incarnation: str
    started_at: float
    groups: list[wire.GroupReport]


class Journal:
    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        _private_dir(self.path.parent)
        _private_file(self.path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                self._open()
            except BaseException:
                self._db.close()
                raise
        except sqlite3.DatabaseError as e:
            raise JournalCorrupt(
                f"{self.path}: the usage journal is unreadable ({e}); move it aside with "
                f"`{reset_command(self.path.parent)}` and start the agent again (usage it "
                "had not delivered yet is lost)"
            ) from None

    def _open(self) -> None:
        # FULL + WAL: a commit returns only once it is on disk, so a kill -9 or a
        # power cut after append() never loses the record.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(str(p) for p in problems[:3]))
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
        if row is not None:
            self.epoch = str(row[0])
        else:
            # A journal written before epochs keeps the empty one: the appliance knows
            # its records under it. A new journal is a new sequence.
            self.epoch = "" if self.last_seq else secrets.token_hex(16)
            with self._transaction():
                self._set_meta("epoch", self.epoch)
        self.recovered = self._recover_open()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[None]:
        if not durable:
            # Written to the WAL, not fsync'd: survives a kill -9 (the OS has it), not a
            # power cut; the next durable commit syncs it along with its own.
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        finally:
            if not durable:
                self._db.execute("PRAGMA synchronous=FULL")

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int | str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, str(value)),
        )

    @property
    def last_seq(self) -> int:
        # Kept in meta, not MAX(seq): pruning old rows must never make a seq reused,
        # or the appliance would drop new usage as a duplicate.
        return self._meta("last")

    @property
    def acked_seq(self) -> int:
        return self._meta("acked")

    # ---- records ---------------------------------------------------------------

    def _append(self, lines: list[wire.UsageLine]) -> wire.UsageRecord:
        seq = self.last_seq + 1
        rec = wire.UsageRecord(seq=seq, lines=lines, epoch=self.epoch)
        self._db.execute(
            "INSERT INTO usage (seq, body, created_at) VALUES (?, ?, ?)",
            (seq, wire.encode(rec), self.clock()),
        )
        self._set_meta("last", seq)
        # What this record covers is no longer open.
        self._db.executemany(
            "DELETE FROM open_usage WHERE group_id=? AND run_id=? AND index_start=?",
            [line.slot for line in lines],
        )
        return rec

    def append(self, lines: list[wire.UsageLine]) -> wire.UsageRecord:
        """Durably store the next record and return it (seq = last + 1)."""
        with self._transaction():
            return self._append(lines)

    def save(
        self,
        *,
        cut: list[wire.UsageLine] | None = None,
        open_lines: list[wire.UsageLine] | None = None,
        report: tuple[str, float, list[wire.GroupReport]] | None = None,
        durable: bool = True,
    ) -> wire.UsageRecord | None:
        """One transaction per tick: a record cut, or the open intervals checkpointed
        (they replace the previous checkpoint), and this process's counters. A record is
        always durable (fsync'd); a checkpoint alone may be written without a sync."""
        rec = None
        with self._transaction(durable=durable or bool(cut)):
            if cut:
                rec = self._append(cut)
            if open_lines is not None:
                self._db.execute("DELETE FROM open_usage")
                self._db.executemany(
                    "INSERT INTO open_usage (group_id, run_id, index_start, body) "
                    "VALUES (?, ?, ?, ?)",
                    [(*line.slot, wire.encode(line)) for line in open_lines],
                )
            if report is not None:
                incarnation, started_at, groups = report
                self._db.execute(
                    "INSERT INTO reports (incarnation, started_at, updated_at, body) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(incarnation) DO UPDATE SET "
                    "updated_at=excluded.updated_at, body=excluded.body",
                    (incarnation, started_at, self.clock(), msgspec.json.encode(groups)),
                )
        return rec

    def _recover_open(self) -> wire.UsageRecord | None:
        """Usage a killed process had checkpointed but not cut becomes a record now."""
        rows = self._db.execute(
            "SELECT body FROM open_usage ORDER BY group_id, run_id, index_start"
        ).fetchall()
        if not rows:
            return None
        lines = [wire.decode(wire.UsageLine, body) for (body,) in rows]
        return self.append(lines)

    def open_lines(self) -> list[wire.UsageLine]:
        rows = self._db.execute("SELECT body FROM open_usage").fetchall()
        return [wire.decode(wire.UsageLine, body) for (body,) in rows]

    def unacked(self, limit: int = 500, older_than: float | None = None) -> list[wire.UsageRecord]:
        """Records not yet acknowledged, oldest first (optionally only stale ones)."""
        if older_than is None:
            rows = self._db.execute(
                "SELECT body FROM usage WHERE acked=0 ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT body FROM usage WHERE acked=0 AND (sent_at IS NULL OR sent_at < ?) "
                "ORDER BY seq LIMIT ?",
                (older_than, limit),
            ).fetchall()
        return [wire.decode(wire.UsageRecord, r[0]) for r in rows]

    def mark_sent(self, seqs: list[int]) -> None:
        now = self.clock()
        self._db.executemany("UPDATE usage SET sent_at=? WHERE seq=?", [(now, s) for s in seqs])

    def ack(self, seq: int) -> None:
        """Everything up to ``seq`` is stored by the appliance."""
        if seq <= self.acked_seq:
            return
        with self._transaction():
            self._db.execute("UPDATE usage SET acked=1 WHERE seq<=? AND acked=0", (seq,))
            self._set_meta("acked", min(seq, self.last_seq))

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM usage WHERE acked=0").fetchone()[0])

    def total_device_ms(self) -> int:
        """All device-milliseconds ever journaled (for audits and tests)."""
        total = 0
        for (body,) in self._db.execute("SELECT body FROM usage"):
            total += sum(line.device_ms for line in wire.decode(wire.UsageRecord, body).lines)
        return total

    # ---- counters of agent processes -----------------------------------------------

    def past_reports(self, exclude: str, since: float, limit: int = 4) -> list[PastReport]:
        """The last counters of earlier incarnations, newest first."""
        rows = self._db.execute(
            "SELECT incarnation, started_at, body FROM reports "
            "WHERE incarnation != ? AND updated_at >= ? ORDER BY started_at DESC LIMIT ?",
            (exclude, since, limit),
        ).fetchall()
        return [PastReport(inc, at, _decode_groups(body)) for inc, at, body in rows]

    # ---- upkeep ---------------------------------------------------------------

    def prune(self, keep_seconds: float = 7 * 86400, limit: int = PRUNE_BATCH) -> int:
        """Drop acknowledged records and old incarnations' counters older than that.

        At most ``limit`` records, oldest first: the journal is synchronous on the agent's
        loop, so one call must not stall the sends; the next call takes the rest.
        """
        cutoff = self.clock() - keep_seconds
        with self._transaction():
            cur = self._db.execute(
                "DELETE FROM usage WHERE seq IN (SELECT seq FROM usage"
                " WHERE acked=1 AND created_at < ? ORDER BY seq LIMIT ?)",
                (cutoff, limit),
            )
            self._db.execute("DELETE FROM reports WHERE updated_at < ?", (cutoff,))
        return cur.rowcount

    def status(self) -> dict[str, object]:
        return {
            "file": str(self.path),
            "epoch": self.epoch,
            "last_seq": self.last_seq,
            "acked_seq": self.acked_seq,
            "pending": self.pending_count(),
            "open_intervals": len(self.open_lines()),
        }
