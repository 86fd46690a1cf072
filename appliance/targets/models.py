"""Target policy tables: lab networks granted by a superuser, and proofs of control."""

from __future__ import annotations

import peewee as pw

from appliance.db import BaseModel
from appliance.models import Org, utcnow


class LabNetwork(BaseModel):
    """A network mock traffic may reach without a proof: every org's, or one org's."""

    org = pw.ForeignKeyField(Org, null=True, on_delete="CASCADE")  # NULL: every org
    cidr = pw.CharField()
    note = pw.CharField(default="")
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(default="")

    class Meta:
        table_name = "lab_network"


class TargetVerification(BaseModel):
    """An org's claim on a host, proven when the host serves the token (ACME http-01 style)."""

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    host = pw.CharField(index=True)  # policy.host_key form
    url = pw.CharField()  # scheme://host[:port] the token is fetched from
    token_id = pw.CharField(unique=True)
    token_hash = pw.CharField()  # SHA-256 of the token; the token itself is shown once
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(default="")
    verified_at = pw.DateTimeField(null=True)
    checked_at = pw.DateTimeField(null=True)
    last_error = pw.TextField(default="")

    class Meta:
        table_name = "target_verification"


TABLES: list[type[BaseModel]] = [LabNetwork, TargetVerification]
