"""The hash-chained audit log: ``/api/v1/audit`` and ``/api/v1/audit/verify``."""

from __future__ import annotations

from typing import Any

import msgspec


class AuditLogEntry(msgspec.Struct, kw_only=True):
    id: int
    at: str
    """ISO 8601 with offset (UTC)."""
    actor: str
    """``user:<name>``, ``token:<id>``, ``public``, ``scheduler`` or ``system``."""
    org_id: int | None
    action: str
    target: str
    before: Any
    """The JSON the entry recorded (secrets redacted); None: nothing."""
    after: Any
    hash: str
    """sha256(previous entry's hash + canonical JSON of this entry), hex."""


class AuditPage(msgspec.Struct, kw_only=True):
    entries: list[AuditLogEntry]
    """Newest first."""
    next_before_id: int | None
    """Pass as ``before_id`` for the next (older) page; None: this is the last."""


class AuditVerdict(msgspec.Struct, kw_only=True):
    ok: bool
    rows: int
    """Rows checked."""
    broken_id: int | None
    """The first row that does not hold, when known."""
    reason: str
    """Why not, in one line; empty when ok."""
