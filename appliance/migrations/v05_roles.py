"""v5: Coupons limited to named orgs; audit rows sealed with a key outside the database."""

from __future__ import annotations

import peewee

from appliance.audit.models import AuditEntry
from appliance.invoices.models import Coupon
from appliance.migrations.schema_ops import add_missing_columns


def apply(db: peewee.Database) -> None:
    add_missing_columns(db, Coupon, "orgs")
    add_missing_columns(db, AuditEntry, "seal")
