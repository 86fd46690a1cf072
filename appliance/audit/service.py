"""Append, verify and query the audit log.

Each entry's hash is ``sha256(prev_hash + canonical JSON of the entry)``, so
changing, removing or reordering any row breaks every hash after it.
Appends are serialised by updating the one-row head first: on SQLite that
takes the database's write lock, on PostgreSQL a row lock held to commit, so
two writers can never both extend the same head and fork the chain.

The chain is anchored outside the database (:mod:`appliance.audit.anchor`):
each row is sealed with the data dir's key, and the newest committed row is
written to the anchor file, so neither a re-chain nor a dropped tail passes
:func:`verify`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import peewee as pw

from appliance import bulk
from appliance.audit import anchor as anchoring
from appliance.audit.models import GENESIS, AuditEntry, AuditHead
from appliance.contract.audit import AuditLogEntry, AuditPage, AuditVerdict
from appliance.db import database
from appliance.errors import ApplianceError
from appliance.schedule import clock

SCHEDULER = "scheduler"

# Secrets never enter the log: by key, and by their shape wherever they appear
# (an enrollment command line carries its token).
_SECRET_KEYS = frozenset(
    {"token", "password", "secret", "token_hash", "password_hash", "mqtt_password"}
)
_SECRET_SHAPE = re.compile(r"\bmm[a-z]?_[A-Za-z0-9_-]{16,}")
REDACTED = "[redacted]"


def canonical(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in _SECRET_KEYS and v is not None else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_SHAPE.sub(REDACTED, value)
    if isinstance(value, dt.datetime):
        return clock.aware(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _json(value: Any) -> str | None:
    return None if value is None else canonical(redact(value))


def _stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The chain link: ``row`` holds id, at, actor, org_id, action, target, before, after."""
    body = canonical(
        {
            "id": int(row["id"]),
            "at": _stamp(row["at"]),
            "actor": row["actor"],
            "org_id": row["org_id"],
            "action": row["action"],
            "target": row["target"],
            "before": row["before"],
            "after": row["after"],
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def write_transaction() -> AbstractContextManager[Any]:
    """A transaction that takes SQLite's write lock at BEGIN.

    A deferred SQLite transaction that read first and writes later fails with
    "database is locked" when another connection committed in between; taking
    the lock up front makes it wait its turn instead. Nested calls are savepoints.
    """
    if isinstance(database.obj, pw.SqliteDatabase) and database.transaction_depth() == 0:
        return database.atomic(lock_type="IMMEDIATE")
    return database.atomic()


def record(
    action: str,
    *,
    actor: str,
    target: str = "",
    org_id: int | None = None,
    before: Any = None,
    after: Any = None,
) -> int:
    """Append one entry (in the caller's transaction, if any); returns its id."""
    at = clock.utcnow()
    with write_transaction():
        # Lock the head before reading it: this UPDATE is the serialisation point.
        locked = AuditHead.update(seq=AuditHead.seq + 1).where(AuditHead.id == 1).execute()
        if not locked:
            AuditHead.insert(id=1, seq=1, hash=GENESIS).execute()
        head = AuditHead.get_by_id(1)
        row = {
            "id": head.seq,
            "at": at,
            "actor": actor[:255],
            "org_id": org_id,
            "action": action[:255],
            "target": target[:255],
            "before": _json(before),
            "after": _json(after),
        }
        digest = entry_hash(head.hash, row)
        anchor = anchoring.current()
        seal = anchor.seal(digest) if anchor is not None else None
        AuditEntry.insert(**row, prev_hash=head.hash, hash=digest, seal=seal).execute()
        AuditHead.update(hash=digest).where(AuditHead.id == 1).execute()
        if anchor is not None:
            anchor.after_commit()
    return int(row["id"])


@dataclass(frozen=True)
class Entry:
    """One entry for :func:`record_many`; the fields of :func:`record`."""

    action: str
    actor: str
    target: str = ""
    org_id: int | None = None
    before: Any = None
    after: Any = None


def record_many(entries: list[Entry]) -> list[int]:
    """Append entries in order with one head update (in the caller's transaction).

    The same chain as one :func:`record` per entry, for work done in batches (the
    month close of thousands of orgs) where four statements per entry would be
    most of the time.
    """
    if not entries:
        return []
    at = clock.utcnow()
    n = len(entries)
    anchor = anchoring.current()
    with write_transaction():
        locked = AuditHead.update(seq=AuditHead.seq + n).where(AuditHead.id == 1).execute()
        if not locked:
            AuditHead.insert(id=1, seq=n, hash=GENESIS).execute()
        head = AuditHead.get_by_id(1)
        prev = head.hash
        rows = []
        for i, e in enumerate(entries):
            row = {
                "id": head.seq - n + 1 + i,
                "at": at,
                "actor": e.actor[:255],
                "org_id": e.org_id,
                "action": e.action[:255],
                "target": e.target[:255],
                "before": _json(e.before),
                "after": _json(e.after),
            }
            digest = entry_hash(prev, row)
            seal = anchor.seal(digest) if anchor is not None else None
            rows.append({**row, "prev_hash": prev, "hash": digest, "seal": seal})
            prev = digest
        bulk.insert_rows(AuditEntry, rows, chunk=200)
        AuditHead.update(hash=prev).where(AuditHead.id == 1).execute()
        if anchor is not None:
            anchor.after_commit()
    return [int(r["id"]) for r in rows]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    broken_id: int | None = None
    reason: str = ""

    def out(self) -> AuditVerdict:
        return AuditVerdict(
            ok=self.ok, rows=self.rows, broken_id=self.broken_id, reason=self.reason
        )

    def line(self) -> str:
        if self.ok:
            return f"ok: {self.rows} rows"
        if self.broken_id is None:
            return f"broken: {self.reason}"
        return f"broken at row {self.broken_id}: {self.reason}"


def _rows(batch: int = 2000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        page = list(
            AuditEntry.select().where(AuditEntry.id > last).order_by(AuditEntry.id).limit(batch)
        )
        if not page:
            return
        yield from page
        last = page[-1].id


def verify(*, use_anchor_file: bool = True) -> Verdict:
    """Walk the chain from the first row; name the first row that does not hold.

    Anchored (the appliance, ``mockmock audit verify``): every row's seal must match
    the key, and the row in the anchor file must still be there, unchanged.
    ``use_anchor_file=False`` checks seals only (``reanchor`` after a restore).
    """
    if not database.table_exists(AuditEntry._meta.table_name):
        raise ApplianceError("this database has no audit log (is it a mockmock database?)")
    anchor = anchoring.current()
    mark = None
    if anchor is not None and use_anchor_file:
        # Read before the walk: rows appended meanwhile are newer, never missing.
        try:
            mark = anchor.read()
        except anchoring.AnchorDamaged as e:
            return Verdict(False, 0, None, e.message)
        if mark is None:
            return Verdict(False, 0, None, f"no anchor file at {anchor.path} (was it deleted?)")
    head = AuditHead.get_or_none(AuditHead.id == 1)
    wanted = {m.seq for m in (head, mark) if m is not None}
    seen: dict[int, str] = {}  # the hashes of the rows the head and the anchor name
    prev, expected, count = GENESIS, 1, 0
    for e in _rows():
        if e.id != expected:
            return Verdict(False, count, e.id, f"row {expected} is missing before it")
        if e.prev_hash != prev:
            return Verdict(False, count, e.id, f"prev_hash does not match row {e.id - 1}'s hash")
        fields = {
            "id": e.id,
            "at": e.at,
            "actor": e.actor,
            "org_id": e.org_id,
            "action": e.action,
            "target": e.target,
            "before": e.before,
            "after": e.after,
        }
        if entry_hash(prev, fields) != e.hash:
            return Verdict(False, count, e.id, "its contents do not match its hash (modified)")
        if anchor is not None and not anchor.sealed(e.hash, e.seal):
            why = "it has no seal" if e.seal is None else "its seal does not match the audit key"
            return Verdict(
                False, count, e.id, f"{why} (rewritten without the key, or the wrong audit.key)"
            )
        if e.id in wanted:
            seen[e.id] = e.hash
        prev, expected, count = e.hash, expected + 1, count + 1
    if head is not None and head.seq < count:
        # Rows past the head read before the walk: appended meanwhile, or a head rolled back.
        head = AuditHead.get_or_none(AuditHead.id == 1)
        if head is not None and head.seq < count:
            return Verdict(
                False,
                count,
                head.seq + 1,
                f"the head records {head.seq} rows but the chain goes on to row {count}",
            )
        head = None
    if head is not None and (head.seq > count or seen.get(head.seq, GENESIS) != head.hash):
        return Verdict(
            False,
            count,
            count + 1,
            f"the head records {head.seq} rows but the chain ends at row {count} "
            "(rows were removed from the end)",
        )
    if mark is not None and mark.seq > count:
        return Verdict(
            False,
            count,
            count + 1,
            f"the anchor outside the database records {mark.seq} rows but the chain ends at "
            f"row {count} (rows were removed from the end and the head rolled back)",
        )
    if mark is not None and mark.seq and seen.get(mark.seq) != mark.hash:
        return Verdict(
            False,
            count,
            mark.seq,
            f"row {mark.seq} is not the one anchored outside the database (rewritten)",
        )
    return Verdict(True, count)


def reanchor() -> Verdict:
    """Anchor the chain at its end now (after restoring an older database on purpose).

    Refused unless every row holds (links and seals); recorded as an entry itself.
    """
    anchor = anchoring.current()
    if anchor is None:
        raise ApplianceError("the audit log has no key configured (give --data-dir)")
    try:
        before = anchor.read()
    except anchoring.AnchorDamaged:
        before = None
    checked = verify(use_anchor_file=False)
    if not checked.ok:
        return checked
    newest = anchor.newest()
    if newest is None:  # verify just checked every seal
        raise ApplianceError("the newest audit row changed while reanchoring; try again")
    anchor.reset_to(newest)
    record(
        "audit.reanchor",
        actor="system",
        target=f"anchor:{anchor.path.name}",
        before={"anchored_rows": before.seq if before else None},
        after={"anchored_rows": newest.seq},
    )
    return verify()


def entry_out(e: AuditEntry) -> AuditLogEntry:
    return AuditLogEntry(
        id=e.id,
        at=clock.aware(e.at).isoformat(),
        actor=e.actor,
        org_id=e.org_id,
        action=e.action,
        target=e.target,
        before=None if e.before is None else json.loads(e.before),
        after=None if e.after is None else json.loads(e.after),
        hash=e.hash,
    )


MAX_PAGE = 500


def query(
    org_id: int | None,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> AuditPage:
    """Newest first. ``org_id`` None: every org (appliance superusers)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ApplianceError(f"limit: must be between 1 and {MAX_PAGE}")
    if before_id is not None and not 1 <= before_id <= 2**62:
        raise ApplianceError("before_id: must be a positive row id")
    for name, value in (("action", action), ("actor", actor), ("target", target)):
        if value is not None and ("\x00" in value or len(value) > 255):
            raise ApplianceError(f"{name}: at most 255 characters, no NUL")
    q = AuditEntry.select()
    if org_id is not None:
        q = q.where(AuditEntry.org_id == org_id)
    if action:
        q = q.where(AuditEntry.action.startswith(action))
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if target:
        q = q.where(AuditEntry.target.startswith(target))
    if since:
        q = q.where(AuditEntry.at >= clock.aware(since).astimezone(dt.UTC).replace(tzinfo=None))
    if until:
        q = q.where(AuditEntry.at < clock.aware(until).astimezone(dt.UTC).replace(tzinfo=None))
    if before_id is not None:
        q = q.where(AuditEntry.id < before_id)
    rows = list(q.order_by(AuditEntry.id.desc()).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        entries=[entry_out(e) for e in rows], next_before_id=rows[-1].id if more else None
    )
