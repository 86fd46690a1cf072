"""Audit tables: the entries and the one-row chain head that serialises appends."""

from __future__ import annotations

import peewee as pw

from appliance.db import BaseModel

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""


class AuditEntry(BaseModel):
    """One event. ``id`` is the position in the chain (1, 2, ...), never reused."""

    id = pw.BigIntegerField(primary_key=True)
    at = pw.DateTimeField(index=True)  # naive UTC
    actor = pw.CharField()  # "user:alice", "token:7", "scheduler", "agent:a1b2c3", "public"
    org_id = pw.IntegerField(null=True, index=True)
    action = pw.CharField(index=True)  # "user.create", "api.start_group", "flat.start", ...
    target = pw.CharField(default="")
    before = pw.TextField(null=True)  # canonical JSON, or NULL
    after = pw.TextField(null=True)
    prev_hash = pw.CharField(max_length=64)
    hash = pw.CharField(max_length=64, unique=True)
    seal = pw.CharField(max_length=64, null=True)  # HMAC of hash with the key file's key

    class Meta:
        table_name = "audit_log"


class AuditHead(BaseModel):
    """Always one row (id 1): the last entry's id and hash. Appends lock it first."""

    id = pw.IntegerField(primary_key=True)
    seq = pw.BigIntegerField(default=0)
    hash = pw.CharField(max_length=64, default=GENESIS)

    class Meta:
        table_name = "audit_head"


TABLES: list[type[BaseModel]] = [AuditEntry, AuditHead]
