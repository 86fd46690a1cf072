"""Check the audit hash chain across the rows the API returned (pure: the shared contract only).

Each entry's hash is sha256(previous hash + canonical JSON of the entry). The API
gives each entry's hash, so every pair of consecutive ids on a page can be
checked here; rows of other orgs between them are not visible to the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from appliance.contract.audit import AuditLogEntry


@dataclass(frozen=True)
class ChainStatus:
    checked: int
    broken_id: int | None = None

    def line(self) -> str:
        if self.broken_id is not None:
            return f"[red b]chain BROKEN at #{self.broken_id}[/] (run `mockmock audit verify`)"
        if not self.checked:
            return "chain: no consecutive rows to check here"
        return f"[green]chain ok[/] ({self.checked} links checked on this page)"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, e: AuditLogEntry) -> str:
    at = dt.datetime.fromisoformat(e.at).astimezone(dt.UTC)
    body = _canonical(
        {
            "id": e.id,
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor": e.actor,
            "org_id": e.org_id,
            "action": e.action,
            "target": e.target,
            "before": None if e.before is None else _canonical(e.before),
            "after": None if e.after is None else _canonical(e.after),
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def check(entries: list[AuditLogEntry]) -> ChainStatus:
    by_id = {e.id: e for e in entries}
    checked = 0
    for i in sorted(by_id):
        prev = by_id.get(i - 1)
        if prev is None:
            continue
        if entry_hash(prev.hash, by_id[i]) != by_id[i].hash:
            return ChainStatus(checked, i)
        checked += 1
    return ChainStatus(checked)
