"""Migrations: every database reaches today's schema through the same steps.

v1 is a frozen copy of the first schema, so "migrated from empty by v1..v10" and "created
from today's models" are two different roads; the test demands they end at the same
tables, columns (type, null, primary key, default), indexes and foreign keys, on SQLite
and on PostgreSQL. A model edit without a migration step fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import peewee
import pytest
from playhouse.db_url import connect as connect_url

import appliance
from appliance import db, models
from appliance.migrations import MIGRATIONS, v01_initial
from appliance.usage.models import UsageEpoch


def todays_models() -> list[type[peewee.Model]]:
    """Every table class of the appliance (all its modules imported, so none is missed)."""
    for m in pkgutil.walk_packages(appliance.__path__, "appliance."):
        importlib.import_module(m.name)

    def below(cls: type[peewee.Model]) -> Iterator[type[peewee.Model]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted(set(below(db.BaseModel)), key=lambda m: m._meta.table_name)


def schema(database: peewee.Database) -> dict[str, Any]:
    """What the DDL made, as the database reports it (not what the models say)."""
    out: dict[str, Any] = {}
    for table in sorted(database.get_tables()):
        out[table] = {
            "columns": sorted(
                (c.name, c.data_type.lower(), c.null, c.primary_key, str(c.default))
                for c in database.get_columns(table)
            ),
            "indexes": sorted(
                (i.name, tuple(i.columns), i.unique) for i in database.get_indexes(table)
            ),
            "foreign_keys": sorted(
                (f.column, f.dest_table, f.dest_column) for f in database.get_foreign_keys(table)
            ),
        }
    return out


@pytest.fixture
def other_database(appliance_db: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """A second empty database of the same kind as ``appliance_db``."""
    if appliance_db.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.sqlite3'}"
    return request.getfixturevalue("new_pg_database")()


def created_from_todays_models(url: str) -> dict[str, Any]:
    database = connect_url(url)
    try:
        tables = todays_models()
        with database.bind_ctx(tables):
            database.create_tables(tables)
        return schema(database)
    finally:
        database.close()


def test_migrated_from_empty_has_exactly_the_schema_of_todays_models(
    appliance_db: str, other_database: str
) -> None:
    migrated = schema(db.database.obj)
    expected = created_from_todays_models(other_database)
    assert set(migrated) == set(expected)
    for table in expected:
        assert migrated[table] == expected[table], table
    assert "offline_since" in {c[0] for c in migrated["agent"]["columns"]}  # from v2, not v1


def test_v1_creates_the_first_schema_whatever_the_models_say_today(tmp_path) -> None:
    database = connect_url(f"sqlite:///{tmp_path / 'v1.sqlite3'}")
    try:
        v01_initial.apply(database)
        first = schema(database)
    finally:
        database.close()
    assert set(first) == {
        "org",
        "apitoken",
        "enrollmenttoken",
        "agent",
        "template",
        "group",
        "assignment",
        "usagerecord",
        "usage",
        "groupstats",
    }
    agent_columns = {c[0] for c in first["agent"]["columns"]}
    assert "acked_seq" in agent_columns
    # Columns today's models have and later steps add: v1 must not create them.
    assert {"offline_since", "incarnation"} & agent_columns == set()
    assert "report" not in {c[0] for c in first["groupstats"]["columns"]}


def test_a_database_left_at_v1_with_data_is_upgraded_to_todays_schema(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = db.connect(url)
    try:
        old.create_tables([db.SchemaVersion])
        MIGRATIONS[0](old)
        db.SchemaVersion.create(version=1)
        org = old.execute_sql(
            "INSERT INTO org (name, currency, timezone, registered_at, "
            "default_entitlement, stripe_mode) VALUES "
            "('acme', 'JPY', 'UTC', '2026-01-01', 'free', 'test')"
        ).lastrowid
        old.execute_sql(
            "INSERT INTO agent (agent_id, org_id, mqtt_username, mqtt_password_hash, hostname,"
            " arch, version, cores, mem_mb, capacity, online, revision, reported_revision,"
            " acked_seq, cpu_percent, rss_mb, last_errors, created_at) VALUES"
            " ('a1', ?, 'u1', 'h', '', '', '', 0, 0, 0, 0, 0, 0, 42, 0, 0, '', '2026-01-01')",
            (org,),
        )
        assert db.migrate() == len(MIGRATIONS)
        assert schema(old) == created_from_todays_models(f"sqlite:///{tmp_path / 'today.sqlite3'}")
        # v7 kept the old journal's position under the empty epoch.
        agent = models.Agent.get(models.Agent.agent_id == "a1")
        assert UsageEpoch.get(UsageEpoch.agent == agent.id, UsageEpoch.epoch == "").acked_seq == 42
    finally:
        old.close()
