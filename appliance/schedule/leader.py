"""Which appliance process runs the scheduler: one leader among replicas.

Every replica serves the API, the live feed and its share of the bus traffic;
only the **leader** runs the time-driven work (month close, flat-window edges,
lease renewals, failover, payment retries). Exactly-once never depends on this
(every such action writes a unique marker row); leadership keeps the work from
being done N times and the replicas from racing each other for it.

- **SQLite** (the embedded default) serves one process: it is always the
  leader, and :func:`claim_sqlite` makes a second process on the same database
  file refuse to start with one clear line.
- **PostgreSQL**: a session-level advisory lock (:data:`LOCK_KEY`), taken with
  ``pg_try_advisory_lock`` on a dedicated connection that nothing else uses. The
  lock lives exactly as long as that session: when the leader dies its
  connection closes (kill -9: at once; a host that vanished: when the server's
  TCP keepalives give up, set per session below) and the server releases the
  lock; a standby polling every ``poll_s`` takes it. The leader checks its
  connection every ``poll_s`` too and stands down the moment it fails, so a
  leader cut off from the database stops scheduling within a few seconds.

A replica is declared with ``mockmock serve --replica`` (``MOCKMOCK_REPLICA=1``):
it refuses SQLite. Without the flag, ``serve`` on PostgreSQL still elects (a
single process simply always wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

LOCK_KEY = 0x6D6D_5343_4844  # "mmSCHD": the scheduler's advisory lock in this database
MIGRATE_KEY = 0x6D6D_4D49_4752  # "mmMIGR": held while a replica migrates the schema

LEADER = "leader"
STANDBY = "standby"

# Server side (per session): a dead leader host is noticed after IDLE + INTERVAL x
# COUNT seconds of silence (2 + 1 x 3 = 5 s), then its lock is released. Client side:
# an unanswered query fails after TCP_USER_TIMEOUT_MS instead of TCP's ~15 minutes.
KEEPALIVE_IDLE_S = 2
KEEPALIVE_INTERVAL_S = 1
KEEPALIVE_COUNT = 3
TCP_USER_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 5

OnChange = Callable[[bool], Awaitable[None]]
"""Called with True when this process becomes the leader, False when it stops."""


def is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgres", "postgresql", "postgresext")


def check_replica(database_url: str, replica: bool) -> None:
    """A declared replica needs a database other processes can share."""
    if replica and not is_postgres(database_url):
        raise ApplianceError(
            "--replica: replicas share one PostgreSQL database (--db-url postgresql://...); "
            "SQLite serves a single appliance process"
        )


def claim_sqlite(db_path: Path) -> IO[str]:
    """Own the SQLite database for this process; keep the returned file open.

    Two processes on one SQLite file would each run the scheduler and fight over
    the write lock: the second one stops here instead (the lock goes with the
    process, however it ends).
    """
    lock_path = db_path.with_name(db_path.name + ".owner")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    f = os.fdopen(fd, "r+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = f.read().strip() or "?"
        f.close()
        raise ApplianceError(
            f"database: another appliance process (pid {holder}) already serves {db_path}; "
            "SQLite serves one process, run replicas on PostgreSQL (serve --replica "
            "--db-url postgresql://...)"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def pg_connect_params(database: Any) -> dict[str, Any]:
    """libpq parameters of peewee's PostgreSQL database, for a dedicated connection."""
    params = dict(database.connect_params)
    params.setdefault("dbname", database.database)
    params.update(
        keepalives=1,
        keepalives_idle=KEEPALIVE_IDLE_S,
        keepalives_interval=KEEPALIVE_INTERVAL_S,
        keepalives_count=KEEPALIVE_COUNT,
        tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name="mockmock-scheduler-lock",
    )
    return params


@contextlib.contextmanager
def migration_lock(database_url: str) -> Iterator[None]:
    """Replicas starting together migrate (and seed) one after the other (PostgreSQL:
    an advisory lock on a connection of its own, released when the block ends)."""
    if not is_postgres(database_url):
        yield
        return
    from playhouse.db_url import connect

    conn = connect(database_url)
    try:
        conn.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATE_KEY,))
        yield
    finally:
        conn.close()  # ends the session, and with it the lock


class Embedded:
    """One process, one database: always the leader."""

    def __init__(self, on_change: OnChange) -> None:
        self.on_change = on_change
        self.leading = False

    @property
    def role(self) -> str:
        return LEADER if self.leading else STANDBY

    async def start(self) -> None:
        self.leading = True
        await self.on_change(True)

    async def stop(self) -> None:
        if self.leading:
            self.leading = False
            await self.on_change(False)


class AdvisoryLock:
    """Leader election on PostgreSQL with a session-level advisory lock."""

    def __init__(
        self,
        connect_params: dict[str, Any],
        on_change: OnChange,
        *,
        poll_s: float = 2.0,
        key: int = LOCK_KEY,
    ) -> None:
        self.params = connect_params
        self.on_change = on_change
        self.poll_s = poll_s
        self.key = key
        self.leading = False
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self.elected = asyncio.Event()  # set while leading (tests, benchmarks)

    @property
    def role(self) -> str:
        return LEADER if self.leading else STANDBY

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="scheduler-leader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._stand_down("stopping")
        await asyncio.to_thread(self._close)  # closing the session releases the lock

    # ---- blocking parts (run in a thread) -----------------------------------------

    def _connect(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(**self.params)
        conn.autocommit = True
        with conn.cursor() as cur:
            # Server-side keepalives: the lock of a leader whose host vanished is
            # released in seconds, not after the kernel's two-hour default.
            cur.execute(
                "SET tcp_keepalives_idle = %s; SET tcp_keepalives_interval = %s; "
                "SET tcp_keepalives_count = %s; SET statement_timeout = %s",
                (KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT, TCP_USER_TIMEOUT_MS),
            )
        return conn

    def _try_lock(self) -> bool:
        if self._conn is None:
            self._conn = self._connect()
        with self._conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
            return bool(cur.fetchone()[0])

    def _check(self) -> None:
        """Raises when the session (and with it the lock) is gone."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    # ---- the loop ---------------------------------------------------------------

    async def _loop(self) -> None:
        import psycopg2

        while True:
            try:
                if self.leading:
                    await asyncio.to_thread(self._check)
                elif await asyncio.to_thread(self._try_lock):
                    self.leading = True
                    self.elected.set()
                    log.warning("scheduler: this replica is the leader")
                    await self.on_change(True)
            except (psycopg2.Error, OSError) as e:
                await self._stand_down(f"lost the database session: {e}".strip())
                await asyncio.to_thread(self._close)
            except Exception:
                # The scheduler would not start here: let another replica lead.
                log.exception("scheduler: failed to start; releasing the leadership")
                await self._stand_down("the scheduler failed")
                await asyncio.to_thread(self._close)
            await asyncio.sleep(self.poll_s)

    async def _stand_down(self, why: str) -> None:
        if self.leading:
            self.leading = False
            self.elected.clear()
            log.warning("scheduler: standing down (%s)", why)
            await self.on_change(False)


Leadership = Embedded | AdvisoryLock


def for_database(database: Any, on_change: OnChange, *, poll_s: float = 2.0) -> Leadership:
    """The election that fits the bound peewee database."""
    import peewee as pw

    if isinstance(database, pw.PostgresqlDatabase):
        return AdvisoryLock(pg_connect_params(database), on_change, poll_s=poll_s)
    return Embedded(on_change)
