"""Small builders for appliance tests: an org's agents, templates and groups."""

from __future__ import annotations

import datetime as dt
import json

from appliance import models
from appliance.fleet import service as fleet
from appliance.groups import service as groups
from appliance.schedule import clock
from appliance.targets.policy import Rules

T0 = dt.datetime(2026, 10, 1, 0, 0, tzinfo=dt.UTC)


def online_agent(org: models.Org, capacity: int = 100_000) -> str:
    agent_id = fleet.local_agent(org.id, capacity=capacity, mqtt_url="mqtt://127.0.0.1:1").agent_id
    models.Agent.update(online=True).where(models.Agent.agent_id == agent_id).execute()
    return agent_id


def group(org: models.Org, name: str, count: int, entitlement: str = "") -> models.Group:
    tpl = models.Template.get_or_none(models.Template.org == org.id, models.Template.name == "t")
    if tpl is None:
        tpl = models.Template.create(org=org, name="t", body=json.dumps({}))
    return models.Group.create(
        org=org, name=name, template=tpl, count=count, entitlement=entitlement
    )


def start(org: models.Org, name: str) -> models.Group:
    return groups.start_group(org.id, name, 60, Rules())[0]


def stop(org: models.Org, name: str) -> models.Group:
    return groups.stop_group(org.id, name)[0]


def registered(org: models.Org, at: dt.datetime) -> models.Org:
    org.registered_at = clock.aware(at).astimezone(dt.UTC).replace(tzinfo=None)
    org.save()
    return org
