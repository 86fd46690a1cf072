"""v6: Lab networks granted by a superuser and targets whose owners proved control."""

from __future__ import annotations

import peewee

from appliance.targets.models import TABLES as TARGETS


def apply(db: peewee.Database) -> None:
    db.create_tables(TARGETS, safe=True)
