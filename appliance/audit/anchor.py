"""The audit chain's anchor outside the database: a key file and the newest sealed row.

The hash chain alone stops nobody who can write the database: they can drop the
tail and roll ``audit_head`` back, or rewrite every row and re-chain them. Two
things outside the database close that:

- **Seals.** Every row carries ``seal = HMAC-SHA256(key, "row:" + hash)``; the key
  is ``audit.key`` in the data dir (0600, made on first start), never in the
  database. Re-chaining without the key leaves seals that do not match.
- **The anchor.** Dropping the tail leaves only well-sealed rows, so after every
  commit that appended, the newest sealed row's id and hash are written to
  ``audit.anchor`` (0600, itself sealed). It is only ever raised, never lowered;
  ``verify`` then demands that row. Only committed rows are anchored (the export
  runs after the commit), so a rolled-back append is never mistaken for a
  truncation.

Replicas on one PostgreSQL share the key (copy ``audit.key`` with the data dir's
other secrets) and each keep their own anchor, raised to the newest committed
row each time they append. A restore to an older database is a truncation as far
as the anchor can tell: ``mockmock audit reanchor`` accepts it on purpose.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import peewee as pw

from appliance.audit.models import GENESIS, AuditEntry
from appliance.db import database
from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

KEY_FILE = "audit.key"
ANCHOR_FILE = "audit.anchor"
_LOCK_FILE = "audit.anchor.lock"


class AnchorDamaged(ApplianceError):
    """The anchor file is unreadable or its seal does not match the key."""


@dataclass(frozen=True)
class Mark:
    """A row of the chain: its id (the row count up to it) and its hash."""

    seq: int
    hash: str


def _open_0600(path: Path, flags: int) -> int:
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask
    return fd


def _read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ApplianceError(f"{path}: not a mockmock audit key (64 hex digits)")
    return key


def _create_key(path: Path) -> bytes:
    """A new random key, made once: a racing process's key wins and is read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = _open_0600(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return _read_key(path)
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


class Anchor:
    """The key and anchor file of one data dir."""

    def __init__(self, data_dir: Path, key: bytes) -> None:
        self.data_dir = data_dir
        self.path = data_dir / ANCHOR_FILE
        self._key = key
        self._lock = threading.Lock()
        self._raised_to = -1  # what this process last wrote (the file holds at least this)

    # --- seals -----------------------------------------------------------------

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def seal(self, row_hash: str) -> str:
        return self._mac("row:" + row_hash)

    def sealed(self, row_hash: str, seal: str | None) -> bool:
        return seal is not None and hmac.compare_digest(self.seal(row_hash), seal)

    # --- the anchor file -------------------------------------------------------

    def read(self) -> Mark | None:
        """The anchored row; None when there is no anchor file. AnchorDamaged if forged."""
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(raw)
            mark = Mark(int(doc["seq"]), str(doc["hash"]))
            mac = str(doc["mac"])
        except (ValueError, KeyError, TypeError):
            raise AnchorDamaged(f"{self.path}: unreadable (not an audit anchor)") from None
        if not hmac.compare_digest(self._mac(f"anchor:{mark.seq}:{mark.hash}"), mac):
            raise AnchorDamaged(f"{self.path}: its seal does not match the audit key (altered)")
        return mark

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time, across threads and processes sharing the data dir."""
        with self._lock:
            fd = _open_0600(self.data_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _write(self, mark: Mark) -> None:
        mac = self._mac(f"anchor:{mark.seq}:{mark.hash}")
        doc = {"seq": mark.seq, "hash": mark.hash, "mac": mac}
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = _open_0600(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def raise_to(self, mark: Mark) -> None:
        """Anchor ``mark`` unless the file already anchors that row or a later one."""
        if mark.seq <= self._raised_to:
            return
        with self._locked():
            try:
                current = self.read()
            except AnchorDamaged:
                log.error("%s is damaged; left for `mockmock audit verify` to report", self.path)
                return
            if current is None or mark.seq > current.seq:
                self._write(mark)
            self._raised_to = max(mark.seq, current.seq if current else -1)

    def reset_to(self, mark: Mark) -> None:
        """Anchor ``mark`` even below the current anchor (``mockmock audit reanchor``)."""
        with self._locked():
            self._write(mark)
            self._raised_to = mark.seq

    def newest(self) -> Mark | None:
        """The newest row in the database, when its seal holds (else None: nothing to trust)."""
        row = (
            AuditEntry.select(AuditEntry.id, AuditEntry.hash, AuditEntry.seal)
            .order_by(AuditEntry.id.desc())
            .first()
        )
        if row is None:
            return Mark(0, GENESIS)
        return Mark(int(row.id), row.hash) if self.sealed(row.hash, row.seal) else None

    def export(self) -> None:
        """Raise the anchor to the newest committed row (run after a commit that appended)."""
        try:
            mark = self.newest()
            if mark is not None:
                self.raise_to(mark)
            else:
                log.error("the newest audit row has a bad seal; the anchor was not raised")
        except (pw.PeeweeException, OSError) as e:
            # The commit stands; a missed raise only makes the anchor lag (never wrong).
            log.error("could not raise the audit anchor %s: %s", self.path, e)

    def after_commit(self) -> None:
        """Export once the outermost transaction commits (once per transaction)."""
        db = database.obj
        stack = db._state.transactions  # peewee keeps the open transactions per thread
        if not stack:
            self.export()
            return
        outer = stack[0]
        if getattr(outer, "_mm_audit_anchor", False):
            return
        outer._mm_audit_anchor = True
        db.after_commit(self.export)  # dropped on rollback: nothing to anchor then

    # --- first start -----------------------------------------------------------

    def seal_unsealed(self) -> int:
        """Seal the rows written before this data dir had a key (trust on first use)."""
        done = 0
        while True:
            with database.atomic():
                rows = list(
                    AuditEntry.select(AuditEntry.id, AuditEntry.hash)
                    .where(AuditEntry.seal.is_null())
                    .order_by(AuditEntry.id)
                    .limit(1000)
                )
                for r in rows:
                    AuditEntry.update(seal=self.seal(r.hash)).where(AuditEntry.id == r.id).execute()
            done += len(rows)
            if len(rows) < 1000:
                return done


_bound: tuple[object, Anchor] | None = None


def current() -> Anchor | None:
    """The anchor configured for the database that is connected now (None: unanchored)."""
    if _bound is not None and _bound[0] is database.obj:
        return _bound[1]
    return None


def configure(data_dir: Path, *, create: bool = True) -> Anchor:
    """Use ``data_dir``'s audit key (made on first start when ``create``) for this database.

    Refuses to make a new key for a database whose rows are already sealed: that is
    a replica or a moved database missing its ``audit.key``.
    """
    global _bound
    key_path = data_dir / KEY_FILE
    made = False
    try:
        key = _read_key(key_path)
    except FileNotFoundError:
        if not create:
            raise ApplianceError(
                f"--data-dir: no audit key at {key_path} (give the appliance's data dir)"
            ) from None
        if AuditEntry.select().where(AuditEntry.seal.is_null(False)).exists():
            raise ApplianceError(
                f"{key_path}: missing, but the audit log is sealed with a key; copy audit.key "
                "(with the other secrets) from the data dir of the appliance that made it"
            ) from None
        key = _create_key(key_path)
        made = True
    anchor = Anchor(data_dir, key)
    _bound = (database.obj, anchor)
    if create:
        if made:
            sealed = anchor.seal_unsealed()
            if sealed:
                log.warning("sealed %d audit rows written before %s existed", sealed, key_path)
        if anchor.read() is None:
            anchor.export()
        else:
            newest = anchor.newest()
            if newest is None:
                log.error(
                    "the newest audit row's seal does not match %s (the wrong key, or the log "
                    "was rewritten): run `mockmock audit verify`",
                    key_path,
                )
    return anchor
