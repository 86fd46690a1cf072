"""v4: Invoices, month closes, the charge outbox, coupons, credits and Stripe customers."""

from __future__ import annotations

import peewee

from appliance.invoices.models import TABLES as BILLING


def apply(db: peewee.Database) -> None:
    db.create_tables(BILLING, safe=True)
