"""Tables of the appliance (peewee). Rules live in the services, not here."""

from __future__ import annotations

import datetime as dt

import peewee as pw

from appliance.db import BaseModel
from appliance.schedule import clock


def utcnow() -> dt.datetime:
    """The appliance's clock as the naive UTC the columns store (:func:`clock.utcnow`)."""
    return clock.utcnow()


class Org(BaseModel):
    name = pw.CharField(unique=True)
    currency = pw.CharField(default="JPY")
    timezone = pw.CharField(default="Asia/Tokyo")
    registered_at = pw.DateTimeField(default=utcnow)
    default_entitlement = pw.CharField(default="on_demand:cn10000")
    stripe_mode = pw.CharField(default="test")


class ApiToken(BaseModel):
    """Only the SHA-256 of a token is stored; the token is shown once."""

    org = pw.ForeignKeyField(Org, backref="tokens", on_delete="CASCADE")
    name = pw.CharField()
    role = pw.CharField()  # viewer | operator | admin
    token_hash = pw.CharField(unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    revoked_at = pw.DateTimeField(null=True)
    user_id = pw.IntegerField(null=True)  # appliance.accounts.models.User; NULL: legacy token
    last_used_at = pw.DateTimeField(null=True)


class EnrollmentToken(BaseModel):
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    token_hash = pw.CharField(unique=True)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)


class Agent(BaseModel):
    agent_id = pw.CharField(unique=True)
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    mqtt_username = pw.CharField(unique=True)
    mqtt_password_hash = pw.CharField()
    hostname = pw.CharField(default="")
    arch = pw.CharField(default="")
    version = pw.CharField(default="")
    cores = pw.IntegerField(default=0)
    mem_mb = pw.IntegerField(default=0)
    capacity = pw.IntegerField(default=0)
    online = pw.BooleanField(default=False)
    last_seen = pw.DateTimeField(null=True)
    offline_since = pw.DateTimeField(null=True)  # set by the LWT; drives failover
    revision = pw.IntegerField(default=0)  # last desired revision published
    reported_revision = pw.IntegerField(default=0)
    acked_seq = pw.BigIntegerField(default=0)  # of the journal it used last (appliance.usage)
    cpu_percent = pw.FloatField(default=0)
    rss_mb = pw.FloatField(default=0)
    last_errors = pw.TextField(default="")
    created_at = pw.DateTimeField(default=utcnow)
    # The agent process reporting now (wire.Reported.incarnation) and when it started.
    # Columns added by a migration are nullable; the application never writes NULL.
    incarnation = pw.CharField(default="", null=True)
    incarnation_at = pw.DoubleField(default=0, null=True)


class Template(BaseModel):
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    name = pw.CharField()
    version = pw.IntegerField(default=1)
    body = pw.TextField()  # JSON of the validated template document
    updated_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("org", "name"), True),)


class Group(BaseModel):
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    name = pw.CharField()
    template = pw.ForeignKeyField(Template, on_delete="RESTRICT")
    count = pw.IntegerField()
    seed = pw.BigIntegerField(null=True)
    entitlement = pw.CharField(default="")
    state = pw.CharField(default="stopped")  # stopped | running
    run_id = pw.IntegerField(default=0)  # bumped by every start
    started_at = pw.DateTimeField(null=True)
    stopped_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("org", "name"), True),)


class Assignment(BaseModel):
    group = pw.ForeignKeyField(Group, backref="assignments", on_delete="CASCADE")
    agent = pw.ForeignKeyField(Agent, backref="assignments", on_delete="CASCADE")
    run_id = pw.IntegerField()
    index_start = pw.IntegerField()
    index_end = pw.IntegerField()
    lease_until = pw.DoubleField()


class UsageRecord(BaseModel):
    """One per (agent, journal epoch, seq): the unique key that makes ingest idempotent."""

    agent = pw.ForeignKeyField(Agent, on_delete="CASCADE")
    seq = pw.BigIntegerField()
    received_at = pw.DateTimeField(default=utcnow)
    epoch = pw.CharField(default="", null=True)

    class Meta:
        indexes = ((("agent", "epoch", "seq"), True),)


class Usage(BaseModel):
    """``devices`` mocks of a group ran on an agent during [start_ms, end_ms)."""

    record = pw.ForeignKeyField(UsageRecord, on_delete="CASCADE")
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    group = pw.ForeignKeyField(Group, on_delete="CASCADE")
    run_id = pw.IntegerField()
    devices = pw.IntegerField()
    start_ms = pw.BigIntegerField(index=True)
    end_ms = pw.BigIntegerField()
    device_ms = pw.BigIntegerField()
    # The range (agent, first index) it was counted for: no two rows of one range
    # overlap in time. NULL in rows stored before ranges were checked.
    agent = pw.ForeignKeyField(Agent, null=True, on_delete="CASCADE")
    index_start = pw.IntegerField(null=True)

    class Meta:
        indexes = ((("agent", "group", "run_id", "index_start", "start_ms"), False),)


class GroupStats(BaseModel):
    """The latest cumulative figures one agent process reported for one run of a group.

    An agent that restarts counts from zero under a new incarnation: its rows add up.
    """

    group = pw.ForeignKeyField(Group, on_delete="CASCADE")
    run_id = pw.IntegerField()
    agent = pw.ForeignKeyField(Agent, on_delete="CASCADE")
    running = pw.IntegerField(default=0)
    state = pw.CharField(default="starting")
    sent = pw.BigIntegerField(default=0)
    errors = pw.BigIntegerField(default=0)
    lateness = pw.TextField(default="{}")  # JSON of wire.Histogram
    reason = pw.CharField(default="")
    last_error = pw.TextField(default="")
    updated_at = pw.DateTimeField(default=utcnow)
    incarnation = pw.CharField(default="", null=True)
    incarnation_at = pw.DoubleField(default=0, null=True)
    # JSON of the whole wire.GroupReport: faults, statuses, commands, verify, readiness.
    report = pw.TextField(default="")

    class Meta:
        indexes = ((("group", "run_id", "agent", "incarnation"), True),)


ALL: list[type[BaseModel]] = [
    Org,
    ApiToken,
    EnrollmentToken,
    Agent,
    Template,
    Group,
    Assignment,
    UsageRecord,
    Usage,
    GroupStats,
]
