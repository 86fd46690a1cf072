"""v9: Billing contacts and the billing-mail outbox."""

from __future__ import annotations

import peewee

from appliance.notify.models import TABLES as NOTIFY


def apply(db: peewee.Database) -> None:
    db.create_tables(NOTIFY, safe=True)
