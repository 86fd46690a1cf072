"""v10: What replicas share through the database (the bus share group)."""

from __future__ import annotations

import peewee

from appliance.cluster import TABLES as CLUSTER


def apply(db: peewee.Database) -> None:
    db.create_tables(CLUSTER, safe=True)
