"""A big fleet in one database, built fast, for the in-process perf drivers.

Agents go in with one INSERT per 500 (enrolling a thousand hashes a thousand
passwords); the group is placed by the real ``groups.start_group``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from playhouse.test_utils import count_queries

from appliance import db, models
from appliance.groups import service as groups
from appliance.targets.policy import Rules
from tests.fixtures.postgres import start_private_postgres


def arguments(doc: str) -> argparse.ArgumentParser:
    """The options every fleet driver takes; each adds its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--mocks", type=int, default=100_000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--profile", action="store_true")
    return parser


@contextlib.contextmanager
def database(sqlite: bool) -> Iterator[str]:
    """A fresh, migrated database: a private PostgreSQL cluster or a SQLite file."""
    with contextlib.ExitStack() as stack:
        if sqlite:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        else:
            cluster = start_private_postgres()
            stack.callback(cluster.stop)
            url = cluster.dsn
        conn = db.connect(url)
        stack.callback(conn.close)
        db.migrate()
        yield "sqlite" if sqlite else "postgresql"


def fleet(n_agents: int, mocks: int, capacity: int) -> tuple[models.Org, models.Group, list[str]]:
    """An org with ``n_agents`` online agents and one running group of ``mocks``."""
    org = models.Org.create(name="bench")
    ids = [f"a{i:011x}" for i in range(n_agents)]
    rows = [
        dict(
            agent_id=a,
            org=org.id,
            mqtt_username=a,
            mqtt_password_hash="-",
            capacity=capacity,
            online=True,
            last_seen=models.utcnow(),
        )
        for a in ids
    ]
    for i in range(0, len(rows), 500):
        models.Agent.insert_many(rows[i : i + 500]).execute()
    tpl = models.Template.create(org=org, name="t", body=json.dumps({}))
    models.Group.create(
        org=org, name="bench", template=tpl, count=mocks, entitlement="on_demand:cn100000"
    )
    group, _ = groups.start_group(org.id, "bench", 60, Rules())
    return org, group, ids


def measure(fn: Callable[..., Any], *args: Any) -> tuple[dict[str, float], Any]:
    """Queries and milliseconds of one call."""
    t0 = time.perf_counter()
    with count_queries() as counted:
        result = fn(*args)
    ms = 1000 * (time.perf_counter() - t0)
    return {"queries": counted.count, "ms": round(ms, 1)}, result
