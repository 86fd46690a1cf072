"""Idempotent schema edits the migration steps share.

Steps v2 and later build their tables and columns from today's models, so a step can find
what it adds already there (an earlier step created the table with today's columns): every
step adds tables with ``safe=True`` and columns through :func:`add_missing_columns`, never a
bare ALTER.
"""

from __future__ import annotations

import peewee


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
