"""v1: the first schema, frozen: orgs, tokens, agents, templates, groups, usage, stats.

A copy of the tables as release v1 created them (``appliance/models.py`` at 58fa028), not
today's models: later model edits must not change what v1 creates, or a database migrated
from empty would differ from one that was upgraded step by step. Later columns and tables
come from v2 onwards. Never edit this file. Python-side defaults of the time (``utcnow``
for ``created_at`` and the like) are left out: they never reach the DDL.
"""

from __future__ import annotations

import peewee as pw


class _Frozen(pw.Model):
    """Bound to the database being migrated only while :func:`apply` runs."""


class Org(_Frozen):
    name = pw.CharField(unique=True)
    currency = pw.CharField(default="JPY")
    timezone = pw.CharField(default="Asia/Tokyo")
    registered_at = pw.DateTimeField()
    default_entitlement = pw.CharField(default="on_demand:cn10000")
    stripe_mode = pw.CharField(default="test")


class ApiToken(_Frozen):
    """Only the SHA-256 of a token is stored; the token is shown once."""

    org = pw.ForeignKeyField(Org, backref="tokens", on_delete="CASCADE")
    name = pw.CharField()
    role = pw.CharField()  # viewer | operator | admin
    token_hash = pw.CharField(unique=True)
    created_at = pw.DateTimeField()
    revoked_at = pw.DateTimeField(null=True)


class EnrollmentToken(_Frozen):
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    token_hash = pw.CharField(unique=True)
    expires_at = pw.DateTimeField()
    used_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField()


class Agent(_Frozen):
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
    revision = pw.IntegerField(default=0)  # last desired revision published
    reported_revision = pw.IntegerField(default=0)
    acked_seq = pw.BigIntegerField(default=0)  # highest contiguous usage seq stored
    cpu_percent = pw.FloatField(default=0)
    rss_mb = pw.FloatField(default=0)
    last_errors = pw.TextField(default="")
    created_at = pw.DateTimeField()


class Template(_Frozen):
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    name = pw.CharField()
    version = pw.IntegerField(default=1)
    body = pw.TextField()  # JSON of the validated template document
    updated_at = pw.DateTimeField()

    class Meta:
        indexes = ((("org", "name"), True),)


class Group(_Frozen):
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


class Assignment(_Frozen):
    group = pw.ForeignKeyField(Group, backref="assignments", on_delete="CASCADE")
    agent = pw.ForeignKeyField(Agent, backref="assignments", on_delete="CASCADE")
    run_id = pw.IntegerField()
    index_start = pw.IntegerField()
    index_end = pw.IntegerField()
    lease_until = pw.DoubleField()


class UsageRecord(_Frozen):
    """One per (agent, seq): the unique key that makes ingest idempotent."""

    agent = pw.ForeignKeyField(Agent, on_delete="CASCADE")
    seq = pw.BigIntegerField()
    received_at = pw.DateTimeField()

    class Meta:
        indexes = ((("agent", "seq"), True),)


class Usage(_Frozen):
    """``devices`` mocks of a group ran on an agent during [start_ms, end_ms)."""

    record = pw.ForeignKeyField(UsageRecord, on_delete="CASCADE")
    org = pw.ForeignKeyField(Org, on_delete="CASCADE")
    group = pw.ForeignKeyField(Group, on_delete="CASCADE")
    run_id = pw.IntegerField()
    devices = pw.IntegerField()
    start_ms = pw.BigIntegerField(index=True)
    end_ms = pw.BigIntegerField()
    device_ms = pw.BigIntegerField()


class GroupStats(_Frozen):
    """The latest cumulative figures an agent reported for one run of a group."""

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
    updated_at = pw.DateTimeField()

    class Meta:
        indexes = ((("group", "run_id", "agent"), True),)


TABLES: list[type[pw.Model]] = [
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


def apply(db: pw.Database) -> None:
    with db.bind_ctx(TABLES):
        db.create_tables(TABLES, safe=True)
