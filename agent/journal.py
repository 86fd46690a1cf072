"""The agent's durable usage journal (stdlib sqlite3, fsync'd on every commit).

Billable usage is written here *before* it is published, and stays until the
appliance acknowledges it, so neither an agent crash, a broker restart nor an
appliance outage loses a second. Acknowledged records are kept (marked) for a
while so an operator can audit what a board reported; ``prune`` drops old ones.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from agent import wire

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL,
    acked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Journal:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # FULL + WAL: a commit returns only once it is on disk, so a kill -9 or a
        # power cut after append() never loses the record.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
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

    def append(self, lines: list[wire.UsageLine]) -> wire.UsageRecord:
        """Durably store the next record and return it (seq = last + 1)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            seq = self.last_seq + 1
            rec = wire.UsageRecord(seq=seq, lines=lines)
            self._db.execute(
                "INSERT INTO usage (seq, body, created_at) VALUES (?, ?, ?)",
                (seq, wire.encode(rec), time.time()),
            )
            self._set_meta("last", seq)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return rec

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
        now = time.time()
        self._db.executemany("UPDATE usage SET sent_at=? WHERE seq=?", [(now, s) for s in seqs])

    def ack(self, seq: int) -> None:
        """Everything up to ``seq`` is stored by the appliance."""
        if seq <= self.acked_seq:
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("UPDATE usage SET acked=1 WHERE seq<=? AND acked=0", (seq,))
        self._set_meta("acked", min(seq, self.last_seq))
        self._db.execute("COMMIT")

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM usage WHERE acked=0").fetchone()[0])

    def total_device_ms(self) -> int:
        """All device-milliseconds ever journaled (for audits and tests)."""
        total = 0
        for (body,) in self._db.execute("SELECT body FROM usage"):
            total += sum(line.device_ms for line in wire.decode(wire.UsageRecord, body).lines)
        return total

    def prune(self, keep_seconds: float = 7 * 86400) -> int:
        cur = self._db.execute(
            "DELETE FROM usage WHERE acked=1 AND created_at < ?", (time.time() - keep_seconds,)
        )
        return cur.rowcount
