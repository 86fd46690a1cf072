"""The database: a proxy bound at start-up, and :func:`migrate`, which runs the steps.

SQLite by default, PostgreSQL at scale; the URL picks (``sqlite:///…``,
``postgresql://…``). The steps live in ``appliance/migrations/``, one module each,
numbered and recorded in ``schema_version`` so an upgrade never asks a user to delete
their data.
"""

from __future__ import annotations

import logging

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
    # Imported here: the steps import the models, and the models import this module.
    from appliance.migrations import MIGRATIONS

    database.create_tables([SchemaVersion], safe=True)
    done = current_version()
    for number, step in enumerate(MIGRATIONS[done:], start=done + 1):
        with database.atomic():
            step(database.obj)
            SchemaVersion.create(version=number)
        log.info("database migrated to version %d", number)
    return len(MIGRATIONS)
