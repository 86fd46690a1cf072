"""The database: a proxy bound at start-up, and ordered schema migrations.

SQLite by default, PostgreSQL at scale; the URL picks (``sqlite:///…``,
``postgresql://…``). Migrations are numbered steps recorded in
``schema_version`` so an upgrade never asks a user to delete their data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import peewee
from playhouse.db_url import connect as connect_url

log = logging.getLogger(__name__)

database = peewee.DatabaseProxy()


class BaseModel(peewee.Model):
    class Meta:
        database = database


def connect(url: str) -> peewee.Database:
    """Open the database at ``url`` and bind every model to it."""
    if url.startswith("sqlite:"):
        db = connect_url(
            url,
            pragmas={
                # WAL lets the API read while the bus writes usage; synchronous
                # stays FULL so an acknowledged usage record survives a power cut.
                "journal_mode": "wal",
                "synchronous": "full",
                "busy_timeout": 10_000,
                "foreign_keys": 1,
            },
            # A deferred transaction that reads, then writes after another writer
            # committed, fails at once with "database is locked" (WAL snapshots are
            # not upgraded, busy_timeout does not help); taking the write lock at
            # BEGIN makes writers queue for it instead.
            lock_type="IMMEDIATE",
        )
    else:
        db = connect_url(url)
    database.initialize(db)
    return db


class SchemaVersion(BaseModel):
    version = peewee.IntegerField(primary_key=True)
    applied_at = peewee.DateTimeField(constraints=[peewee.SQL("DEFAULT CURRENT_TIMESTAMP")])

    class Meta:
        table_name = "schema_version"


Migration = Callable[[peewee.Database], None]


# A fresh database gets today's models from _v1, an old one gets them step by
# step; so every later step must be idempotent: new tables with safe=True and
# new columns through add_missing_columns, never a bare ALTER.


def add_missing_columns(db: peewee.Database, model: type[peewee.Model], *names: str) -> None:
    """Add ``model``'s fields ``names`` to its table where the column is absent."""
    from playhouse.migrate import SchemaMigrator
    from playhouse.migrate import migrate as run_ops

    table = model._meta.table_name
    have = {c.name for c in db.get_columns(table)}
    migrator = SchemaMigrator.from_database(db)
    ops = []
    for name in names:
        f = model._meta.fields[name]
        if f.column_name not in have:
            ops.append(migrator.add_column(table, f.column_name, f))
    if ops:
        run_ops(*ops)


def replace_indexes(
    db: peewee.Database, model: type[peewee.Model], *obsolete: tuple[str, ...]
) -> None:
    """Drop ``model``'s indexes over exactly the ``obsolete`` column lists; create its own."""
    table = model._meta.table_name
    for index in db.get_indexes(table):
        if tuple(index.columns) in obsolete:
            db.execute_sql(f'DROP INDEX IF EXISTS "{index.name}"')
    model._schema.create_indexes(safe=True)


def _v1(db: peewee.Database) -> None:
    from appliance import models

    db.create_tables(models.ALL, safe=True)


def _v2_fleet_access(db: peewee.Database) -> None:
    """Control-bus accounts of the appliance; when an agent went offline (failover)."""
    from appliance import models
    from appliance.fleet import credentials

    db.create_tables(credentials.MODELS, safe=True)
    add_missing_columns(db, models.Agent, "offline_since")


def _v3_accounts_entitlements_audit(db: peewee.Database) -> None:
    """Users, token owners and last use, entitlement windows and intervals, the audit log."""
    from appliance import models
    from appliance.accounts.models import TABLES as ACCOUNTS
    from appliance.audit.models import TABLES as AUDIT
    from appliance.audit.models import AuditHead
    from appliance.entitlements.models import TABLES as ENTITLEMENTS
    from appliance.once import ScheduledAction

    db.create_tables([*ACCOUNTS, *ENTITLEMENTS, *AUDIT, ScheduledAction], safe=True)
    add_missing_columns(db, models.ApiToken, "user_id", "last_used_at")
    if not AuditHead.select().where(AuditHead.id == 1).exists():
        AuditHead.insert(id=1).execute()


def _v4_billing(db: peewee.Database) -> None:
    """Invoices, month closes, the charge outbox, coupons, credits and Stripe customers."""
    from appliance.invoices.models import TABLES as BILLING

    db.create_tables(BILLING, safe=True)


def _v5_roles(db: peewee.Database) -> None:
    """Coupons limited to named orgs; audit rows sealed with a key outside the database."""
    from appliance.audit.models import AuditEntry
    from appliance.invoices.models import Coupon

    add_missing_columns(db, Coupon, "orgs")
    add_missing_columns(db, AuditEntry, "seal")


def _v6_targets(db: peewee.Database) -> None:
    """Lab networks granted by a superuser and targets whose owners proved control."""
    from appliance.targets.models import TABLES as TARGETS

    db.create_tables(TARGETS, safe=True)


def _v7_bus_usage(db: peewee.Database) -> None:
    """Usage per journal epoch and only inside assignment spans; counters per agent process."""
    from appliance import models
    from appliance.fleet import history
    from appliance.usage.models import MODELS as USAGE
    from appliance.usage.models import UsageEpoch

    db.create_tables([*history.MODELS, *USAGE], safe=True)
    filled = {
        models.Agent: ("incarnation", "incarnation_at"),
        models.UsageRecord: ("epoch",),
        models.GroupStats: ("incarnation", "incarnation_at"),
    }
    add_missing_columns(db, models.Usage, "agent", "index_start")
    for model, names in filled.items():
        add_missing_columns(db, model, *names)
        for name in names:  # nullable columns are added empty: give old rows the default
            field = model._meta.fields[name]
            model.update({field: field.default}).where(field.is_null()).execute()
    replace_indexes(db, models.UsageRecord, ("agent_id", "seq"))
    replace_indexes(db, models.GroupStats, ("group_id", "run_id", "agent_id"))
    replace_indexes(db, models.Usage)
    # Journals older than epochs keep their sequence under the empty epoch.
    for agent in models.Agent.select().where(models.Agent.acked_seq > 0):
        UsageEpoch.get_or_create(agent=agent.id, epoch="", defaults={"acked_seq": agent.acked_seq})
    history.backfill()


def _v8_engine_reports(db: peewee.Database) -> None:
    """Agents' whole group reports (faults, statuses, commands, verify) for the API."""
    from appliance import models

    add_missing_columns(db, models.GroupStats, "report")


def _v9_notify(db: peewee.Database) -> None:
    """Billing contacts and the billing-mail outbox."""
    from appliance.notify.models import TABLES as NOTIFY

    db.create_tables(NOTIFY, safe=True)


def _v10_scale(db: peewee.Database) -> None:
    """What replicas share through the database (the bus share group)."""
    from appliance.cluster import TABLES as CLUSTER

    db.create_tables(CLUSTER, safe=True)


MIGRATIONS: list[Migration] = [
    _v1,
    _v2_fleet_access,
    _v3_accounts_entitlements_audit,
    _v4_billing,
    _v5_roles,
    _v6_targets,
    _v7_bus_usage,
    _v8_engine_reports,
    _v9_notify,
    _v10_scale,
]
"""Append new steps; never edit or reorder a released one."""


def current_version() -> int:
    if not database.table_exists("schema_version"):
        return 0
    row = SchemaVersion.select(peewee.fn.MAX(SchemaVersion.version)).scalar()
    return int(row or 0)


_CORRUPT = ("file is not a database", "database disk image is malformed")


def _corrupt(e: peewee.DatabaseError) -> Exception | None:
    """One line naming the file and the way out, for a SQLite file that is not one."""
    from appliance.errors import ApplianceError

    db = database.obj
    if not isinstance(db, peewee.SqliteDatabase) or not any(m in str(e) for m in _CORRUPT):
        return None
    path = db.database
    return ApplianceError(
        f"{path}: the database is corrupt ({e}); move it aside (mv {path} {path}.corrupt) "
        "and restore the last backup (mockmock restore FILE --data-dir DIR)"
    )


def migrate() -> int:
    """Apply every pending migration, each in its own transaction."""
    try:
        return _migrate()
    except peewee.DatabaseError as e:
        clear = _corrupt(e)
        if clear is None:
            raise
        raise clear from None


def _migrate() -> int:
    database.create_tables([SchemaVersion], safe=True)
    done = current_version()
    for number, step in enumerate(MIGRATIONS[done:], start=done + 1):
        with database.atomic():
            step(database.obj)
            SchemaVersion.create(version=number)
        log.info("database migrated to version %d", number)
    return len(MIGRATIONS)
