"""Multi-row INSERTs for batch work (the month close), without a node per value.

peewee's ``insert_many`` builds an expression node for every value; the month close
of 10,000 orgs inserts some 400,000 values (invoices, closes, audit rows), and that
building was half of its time. Here each row becomes a model instance (so peewee
fills the defaults, exactly as ``create`` would), each field's ``db_value`` gives
the parameters, and the statement text is written once per chunk. SQLite and
PostgreSQL both take ``VALUES (...), (...)`` and ``RETURNING``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import peewee as pw

from appliance.db import database


def insert_rows(
    model: type[pw.Model],
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[pw.Field] = (),
    chunk: int = 500,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (field name → value, the same names in every row); returns the
    ``returning`` columns of the inserted rows, if asked."""
    if not rows:
        return []
    db = database.obj
    q = db.quote[0]
    made = [model(**row) for row in rows]
    fields = [f for f in model._meta.sorted_fields if f.name in made[0].__data__]
    columns = ", ".join(f"{q}{f.column_name}{q}" for f in fields)
    group = "(" + ", ".join([db.param] * len(fields)) + ")"
    tail = ""
    if returning:
        tail = " RETURNING " + ", ".join(f"{q}{f.column_name}{q}" for f in returning)
    table = f"{q}{model._meta.table_name}{q}"
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(made), chunk):
        part = made[i : i + chunk]
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([group] * len(part)) + tail
        params = [f.db_value(m.__data__.get(f.name)) for m in part for f in fields]
        cursor = db.execute_sql(sql, params)
        if returning:
            out.extend(tuple(r) for r in cursor.fetchall())
    return out


def insert_values(
    model: type[pw.Model],
    fields: Sequence[pw.Field],
    rows: Sequence[Sequence[Any]],
    *,
    chunk: int = 500,
) -> None:
    """Insert ``rows`` of values for ``fields`` (no defaults filled, no model instances:
    ranges a failover splits by the thousand)."""
    if not rows:
        return
    db = database.obj
    q = db.quote[0]
    columns = ", ".join(f"{q}{f.column_name}{q}" for f in fields)
    group = "(" + ", ".join([db.param] * len(fields)) + ")"
    table = f"{q}{model._meta.table_name}{q}"
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([group] * len(part))
        params = [f.db_value(v) for row in part for f, v in zip(fields, row, strict=True)]
        db.execute_sql(sql, params)


def update_rows(
    model: type[pw.Model], rows: Sequence[pw.Model], fields: Sequence[pw.Field], *, chunk: int = 200
) -> None:
    """``Model.bulk_update`` with the statement text written once per chunk: one
    ``CASE id WHEN ? THEN ? ... END`` per field (peewee builds a node per value)."""
    if not rows:
        return
    db = database.obj
    q = db.quote[0]
    pk = model._meta.primary_key
    key = f"{q}{pk.column_name}{q}"
    table = f"{q}{model._meta.table_name}{q}"
    for i in range(0, len(rows), chunk):
        part = rows[i : i + chunk]
        whens = " ".join([f"WHEN {db.param} THEN {db.param}"] * len(part))
        sets = ", ".join(f"{q}{f.column_name}{q} = CASE {key} {whens} END" for f in fields)
        keys = ", ".join([db.param] * len(part))
        params: list[Any] = []
        for f in fields:
            for row in part:
                params += [row._pk, f.db_value(getattr(row, f.name))]
        params += [row._pk for row in part]
        db.execute_sql(f"UPDATE {table} SET {sets} WHERE {key} IN ({keys})", params)
