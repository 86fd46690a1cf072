"""v2: Control-bus accounts of the appliance; when an agent went offline (failover)."""

from __future__ import annotations

import peewee

from appliance import models
from appliance.fleet import credentials
from appliance.migrations.schema_ops import add_missing_columns


def apply(db: peewee.Database) -> None:
    db.create_tables(credentials.MODELS, safe=True)
    add_missing_columns(db, models.Agent, "offline_since")
