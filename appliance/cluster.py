"""What every replica of one appliance shares through the database.

Today: the name of the MQTT 5 shared-subscription group the replicas read agent
traffic through (``$share/<name>/mm/v1/agents/+/usage`` ...). The broker hands
each message to one member of a group; a client that joins the group but may
not read the topic makes the broker drop that member's share (Mosquitto's ACL
file does not check subscriptions, only deliveries), so the name must be one an
agent cannot guess: random, made once, kept here.
"""

from __future__ import annotations

import secrets

import peewee as pw

from appliance.db import BaseModel

SHARE_GROUP = "bus.share_group"


class ClusterSetting(BaseModel):
    key = pw.CharField(unique=True)
    value = pw.CharField()

    class Meta:
        table_name = "cluster_setting"


TABLES: list[type[BaseModel]] = [ClusterSetting]


def share_group() -> str:
    """The replicas' shared-subscription group: made by the first, read by the rest."""
    ClusterSetting.insert(
        key=SHARE_GROUP, value=f"mm-{secrets.token_hex(12)}"
    ).on_conflict_ignore().execute()
    return ClusterSetting.get(ClusterSetting.key == SHARE_GROUP).value
