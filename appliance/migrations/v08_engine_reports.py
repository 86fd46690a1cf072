"""v8: Agents' whole group reports (faults, statuses, commands, verify) for the API."""

from __future__ import annotations

import peewee

from appliance import models
from appliance.migrations.schema_ops import add_missing_columns


def apply(db: peewee.Database) -> None:
    add_missing_columns(db, models.GroupStats, "report")
