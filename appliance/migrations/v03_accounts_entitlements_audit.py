"""v3: Users, token owners and last use, entitlement windows and intervals, the audit log."""

from __future__ import annotations

import peewee

from appliance import models
from appliance.accounts.models import TABLES as ACCOUNTS
from appliance.audit.models import TABLES as AUDIT
from appliance.audit.models import AuditHead
from appliance.entitlements.models import TABLES as ENTITLEMENTS
from appliance.migrations.schema_ops import add_missing_columns
from appliance.schedule.once import ScheduledAction


def apply(db: peewee.Database) -> None:
    db.create_tables([*ACCOUNTS, *ENTITLEMENTS, *AUDIT, ScheduledAction], safe=True)
    add_missing_columns(db, models.ApiToken, "user_id", "last_used_at")
    if not AuditHead.select().where(AuditHead.id == 1).exists():
        AuditHead.insert(id=1).execute()
