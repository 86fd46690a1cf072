"""Users of an org. Tokens (``models.ApiToken``) point at them by ``user_id``."""

from __future__ import annotations

import peewee as pw

from appliance.db import BaseModel
from appliance.models import Org, utcnow


class User(BaseModel):
    org = pw.ForeignKeyField(Org, backref="users", on_delete="CASCADE")
    name = pw.CharField()
    role = pw.CharField()  # viewer | operator | admin
    superuser = pw.BooleanField(default=False)  # may manage every org of the appliance
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        table_name = "app_user"  # "user" is reserved in PostgreSQL
        indexes = ((("org", "name"), True),)


TABLES: list[type[BaseModel]] = [User]
