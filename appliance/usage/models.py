"""Tables of usage ingest beyond the records themselves (appliance.models)."""

from __future__ import annotations

import peewee as pw

from appliance import models
from appliance.db import BaseModel


class UsageEpoch(BaseModel):
    """One agent journal (wire.UsageRecord.epoch) and the highest contiguous seq stored.

    A board whose journal was replaced starts a new one at seq 1: its own sequence,
    acknowledged on its own, instead of duplicates of the old one.
    """

    agent = pw.ForeignKeyField(models.Agent, on_delete="CASCADE")
    epoch = pw.CharField()  # "" for journals older than epochs
    acked_seq = pw.BigIntegerField(default=0)
    created_at = pw.DateTimeField(default=models.utcnow)

    class Meta:
        table_name = "usageepoch"
        indexes = ((("agent", "epoch"), True),)


MODELS: list[type[BaseModel]] = [UsageEpoch]
