"""`serve --db-url postgresql://...` on a real PostgreSQL: the schema is created or
migrated; a missing database, role or driver is one clear line, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import db
from appliance.migrations import MIGRATIONS
from tests.fixtures.mosquitto import Mosquitto
from tests.fixtures.ports import free_port
from tests.fixtures.postgres import database_url
from tests.fixtures.processes import Appliance, mockmock

pytestmark = [pytest.mark.pg]


def serve_once(tmp_path: Path, db_url: str, env: dict[str, str] | None = None):
    args = ["--mqtt-url", "mqtt://127.0.0.1:1", "--db-url", db_url]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.command",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_wrong_database_name_is_one_line(pg_dsn: str, tmp_path: Path) -> None:
    url = database_url(pg_dsn, "no_such_db")
    line = one_line(serve_once(tmp_path, url))
    assert line.startswith("error: --db-url: cannot open ")
    assert 'database "no_such_db" does not exist' in line and "createdb" in line


def test_unknown_role_and_password_are_one_line_and_hide_the_password(
    pg_dsn: str, tmp_path: Path
) -> None:
    base = database_url(pg_dsn, "postgres")
    url = base.replace("postgresql://postgres", "postgresql://ghost:hunter2", 1)
    line = one_line(serve_once(tmp_path, url))
    assert 'role "ghost" does not exist' in line and "createuser" in line
    assert "hunter2" not in line and "ghost:***@" in line


def test_missing_driver_is_one_line(pg_dsn: str, tmp_path: Path) -> None:
    # A stand-in package that fails to import, as on a machine without psycopg2.
    shadow = tmp_path / "shadow" / "psycopg2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed (test)')\n")
    done = serve_once(
        tmp_path, database_url(pg_dsn, "postgres"), env={"PYTHONPATH": str(shadow.parent)}
    )
    line = one_line(done)
    assert "driver is not installed" in line and "psycopg2" in line


@pytest.fixture
def owned_database(pg_dsn: str) -> Iterator[str]:
    """A database owned by a fresh login role (as deploy/postgresql.md sets it up)."""
    import psycopg2
    from psycopg2 import sql

    name = f"mm_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        cur.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(name)
            )
        )
    url = database_url(pg_dsn, name).replace("postgresql://postgres@", f"postgresql://{name}@", 1)
    try:
        yield url
    finally:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.close()


@pytest.mark.mqtt
@pytest.mark.slow
def test_serve_creates_then_keeps_the_schema(
    owned_database: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    data = tmp_path / "appliance"
    for _ in range(2):  # created on the first start, left as it is on the second
        port = free_port()
        args = ["--data-dir", str(data), "--http-port", str(port)]
        args += ["--mqtt-url", mosquitto.url, "--db-url", owned_database]
        app = Appliance(data, port, mockmock("serve", *args))
        app.start()
        try:
            health = app.api("GET", "/api/v1/health", auth=False)
            assert health["database"] == "postgresql"
            assert app.api("GET", "/api/v1/me")["role"] == "admin"
        finally:
            app.proc.stop()
    conn = db.connect(owned_database)
    try:
        assert db.current_version() == len(MIGRATIONS)
        assert db.SchemaVersion.select().count() == len(MIGRATIONS)
    finally:
        conn.close()


@pytest.mark.mqtt
@pytest.mark.slow
def test_backup_and_restore_with_pg_dump(
    owned_database: str, new_pg_database, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    data = tmp_path / "appliance"
    port = free_port()
    args = ["--data-dir", str(data), "--http-port", str(port)]
    args += ["--mqtt-url", mosquitto.url, "--db-url", owned_database]
    app = Appliance(data, port, mockmock("serve", *args)).start()
    try:
        app.api("POST", "/api/v1/users", {"name": "ci", "role": "operator"})
        out = tmp_path / "pg.tar.gz"
        backup = ["backup", "--data-dir", str(data), "--db-url", owned_database, "--out", str(out)]
        done = subprocess.run(mockmock(*backup), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        app.proc.stop()
    assert "pg_dump" not in done.stderr and out.stat().st_mode & 0o777 == 0o600

    target = new_pg_database()
    restored = tmp_path / "restored"
    restore = ["restore", str(out), "--data-dir", str(restored), "--db-url", target]
    done = subprocess.run(mockmock(*restore), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    verify = ["audit", "verify", "--db-url", target, "--data-dir", str(restored)]
    done = subprocess.run(mockmock(*verify), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stdout + done.stderr
    # A second restore into the same (now used) database is refused.
    again = ["restore", str(out), "--data-dir", str(tmp_path / "r2"), "--db-url", target]
    done = subprocess.run(mockmock(*again), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "already has tables" in done.stderr

    port = free_port()
    args = ["--data-dir", str(restored), "--http-port", str(port)]
    args += ["--mqtt-url", mosquitto.url, "--db-url", target]
    app2 = Appliance(restored, port, mockmock("serve", *args)).start()
    try:
        assert app2.token == app.token
        assert {u["name"] for u in app2.api("GET", "/api/v1/users")} >= {"ci"}
    finally:
        app2.proc.stop()
