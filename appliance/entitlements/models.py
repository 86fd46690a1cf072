"""Entitlement tables: bought flat windows and the intervals billing rates."""

from __future__ import annotations

import peewee as pw

from appliance.db import BaseModel
from appliance.models import Org, utcnow


class FlatWindow(BaseModel):
    """A bought Flat Plan: ``capacity`` mocks during [start, end)."""

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    plan = pw.CharField()
    capacity = pw.IntegerField()
    days = pw.IntegerField()
    price = pw.BigIntegerField()  # minor units of ``currency`` at purchase time
    currency = pw.CharField()
    start = pw.DateTimeField(index=True)  # naive UTC
    end = pw.DateTimeField(index=True)
    state = pw.CharField(default="scheduled")  # scheduled | active | ended | cancelled
    created_at = pw.DateTimeField(default=utcnow)
    created_by = pw.CharField(default="")

    class Meta:
        table_name = "flat_window"


class EntitlementInterval(BaseModel):
    """An entitlement was active during [start, end) (end NULL while it still is).

    ``on_demand``/``free``: one row per group run under the tier (group_id,
    run_id set); billing takes the union per tier. ``flat``: one row per window
    (window_id set), written when the window starts; plus one row per group run
    under the plan (group_id set) so the appliance knows what runs under what.
    """

    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    kind = pw.CharField()  # on_demand | flat | free
    item = pw.CharField()  # tier, plan, or "free"
    capacity = pw.IntegerField()
    group_id = pw.IntegerField(null=True, index=True)  # no FK: intervals outlive groups
    run_id = pw.IntegerField(null=True)
    window_id = pw.IntegerField(null=True)
    start = pw.DateTimeField()
    end = pw.DateTimeField(null=True)

    class Meta:
        table_name = "entitlement_interval"
        indexes = ((("org", "kind", "start"), False),)


TABLES: list[type[BaseModel]] = [FlatWindow, EntitlementInterval]
