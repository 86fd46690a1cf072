"""Exactly-once markers for time-driven actions.

A scheduled action (a flat window's start, a month's close) writes a marker
row keyed by what it does, in the same transaction as its effect. The unique
key makes a second attempt (a catch-up racing the regular job, a restart, a
second replica) fail to insert and roll back, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import peewee as pw

from appliance.db import BaseModel, database
from appliance.schedule import clock

T = TypeVar("T")


class ScheduledAction(BaseModel):
    key = pw.CharField(unique=True)  # e.g. "flat.start:17", "free.end:3"
    due_at = pw.DateTimeField(null=True)
    applied_at = pw.DateTimeField()

    class Meta:
        table_name = "scheduled_action"


def done(key: str) -> bool:
    return ScheduledAction.select().where(ScheduledAction.key == key).exists()


def apply_once(key: str, action: Callable[[], T], *, due_at: dt.datetime | None = None) -> T | None:
    """Run ``action`` and record ``key`` atomically; None when ``key`` was applied before."""
    with database.atomic():
        try:
            with database.atomic():  # a savepoint: PostgreSQL aborts it, not the whole unit
                ScheduledAction.create(key=key, due_at=due_at, applied_at=clock.utcnow())
        except pw.IntegrityError:
            return None
        return action()
