"""``mockmock backup`` and ``mockmock restore``: the database and the data dir's secrets.

A backup is one tar file (mode 0600: it holds secrets) with

- ``manifest.json``: format, version, database kind, and a SHA-256 per member;
- ``database/mockmock.sqlite3`` (SQLite's online backup API: a consistent copy
  while the appliance writes) or ``database/mockmock.pgdump`` (``pg_dump
  --format=custom``);
- ``data/...``: every file of the data directory except databases and journals
  (copied above, or replayed by boards), logs, temporary files and the wheelhouse
  (rebuilt on demand). That is, generically, the secrets the database does not
  hold: ``bus.secret``, ``admin.token``, the local agent's identity, the audit
  key, the demo's Stripe webhook secret, and whatever later versions add;
- ``etc/mockmock.env``: the settings file with the Stripe and SMTP secrets, when
  one is given (``--env-file``, default ``/etc/mockmock/mockmock.env`` if readable).

Restore writes into an empty data directory (files 0600, folders 0700) and an
empty database, checks every member against the manifest first, and migrates
the schema if the backup came from an older version.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit

from appliance.config import Settings
from appliance.db_errors import redacted
from appliance.errors import ApplianceError
from appliance.schedule import clock

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database/mockmock.sqlite3"
PG_MEMBER = "database/mockmock.pgdump"
ENV_MEMBER = "etc/mockmock.env"
DEFAULT_ENV_FILE = Path("/etc/mockmock/mockmock.env")
SKIP_SUFFIXES = (".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".sqlite3-journal", ".log", ".tmp")
SKIP_DIRS = frozenset({"wheels"})


class BackupError(ApplianceError):
    """One line for the operator."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _skipped(rel: PurePosixPath) -> bool:
    if rel.parts[0] in SKIP_DIRS:
        return True
    return rel.name.endswith(SKIP_SUFFIXES) or ".sqlite3." in rel.name


def secret_files(data_dir: Path, exclude: Path | None = None) -> Iterator[tuple[str, Path]]:
    """(archive name, path) of every file of ``data_dir`` a backup carries."""
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        rel = PurePosixPath(path.relative_to(data_dir).as_posix())
        if not _skipped(rel):
            yield str(rel), path


# ---- the database ------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :] if url.startswith("sqlite:///") else url)


def _sqlite_copy(src: Path, dst: Path) -> None:
    if not src.is_file():
        raise BackupError(f"--data-dir: no database at {src}")
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dst)
    try:
        # One step: a consistent snapshot even while the appliance commits usage.
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        ok = target.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(f"the copy of {src} fails SQLite's check: {ok}")
    except sqlite3.DatabaseError as e:
        raise BackupError(f"cannot copy {src}: {e}") from None
    finally:
        target.close()
        source.close()


@dataclass(frozen=True)
class PgTarget:
    """A libpq URL without its password, and the password for PGPASSWORD (not argv)."""

    url: str
    password: str = ""

    @classmethod
    def parse(cls, url: str) -> PgTarget:
        parts = urlsplit(url)
        password = parts.password or ""
        netloc = parts.netloc.rsplit("@", 1)
        if parts.password is not None:
            netloc[0] = parts.username or ""
        query = []
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            if k == "password":
                password = v
            else:
                query.append((k, v))
        clean = parts._replace(
            scheme="postgresql", netloc="@".join(netloc), query=urlencode(query)
        ).geturl()
        return cls(clean, password)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install postgresql-client (PostgreSQL's tools)")
    return found


def _run_pg(cmd: list[str], target: PgTarget, what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=target.env())
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} did not finish within an hour") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        why = lines[0].split(": ", 1)[-1] if lines else f"exit code {done.returncode}"
        raise BackupError(f"{what} of {redacted(target.url)} failed: {why}")


def _pg_dump(url: str, dst: Path) -> None:
    target = PgTarget.parse(url)
    cmd = [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
    _run_pg([*cmd, "--file", str(dst), "--dbname", target.url], target, "pg_dump")


def _pg_restore(url: str, src: Path) -> None:
    target = PgTarget.parse(url)
    cmd = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    _run_pg([*cmd, "--dbname", target.url, str(src)], target, "pg_restore")


# ---- backup --------------------------------------------------------------------------


@dataclass
class Manifest:
    format: int
    version: str
    created_at: str
    database: str
    files: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, indent=1, sort_keys=True).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(clock.system().timestamp())
    tar.addfile(info, io.BytesIO(data))


def backup(settings: Settings, out: Path, *, env_file: Path | None = None) -> Manifest:
    """Write the backup of ``settings``' appliance to ``out`` (0600), atomically."""
    from appliance import __version__

    url = settings.database_url
    kind = "sqlite" if url.startswith("sqlite:") else "postgresql"
    if not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        raise BackupError(f"--db-url: {redacted(url)}: only SQLite and PostgreSQL are backed up")
    if not settings.data_dir.is_dir():
        raise BackupError(f"--data-dir: {settings.data_dir} is not a directory")
    manifest = Manifest(FORMAT, __version__, clock.system().isoformat(timespec="seconds"), kind)
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.fchmod(fd, 0o600)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory(prefix="mockmock-backup-") as scratch:
            members: list[tuple[str, bytes]] = []
            dump = Path(scratch) / "db"
            if kind == "sqlite":
                _sqlite_copy(sqlite_path(url), dump)
                members.append((SQLITE_MEMBER, dump.read_bytes()))
            else:
                _pg_dump(url, dump)
                members.append((PG_MEMBER, dump.read_bytes()))
            for name, path in secret_files(settings.data_dir, exclude=out):
                members.append((f"data/{name}", path.read_bytes()))
            if env_file is not None:
                try:
                    members.append((ENV_MEMBER, env_file.read_bytes()))
                except OSError as e:
                    raise BackupError(f"--env-file: cannot read {env_file}: {e.strerror}") from None
            manifest.files = {name: _sha256(data) for name, data in members}
            with tarfile.open(tmp, "w:gz") as tar:
                _add(tar, MANIFEST, manifest.encode())
                for name, data in members:
                    _add(tar, name, data)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return manifest


# ---- restore -------------------------------------------------------------------------


def _read(archive: Path) -> tuple[Manifest, dict[str, bytes]]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = {}
            for info in tar.getmembers():
                name = PurePosixPath(info.name)
                if not info.isfile() or name.is_absolute() or ".." in name.parts:
                    raise BackupError(f"{archive}: unexpected member {info.name!r}; not a backup")
                f = tar.extractfile(info)
                assert f is not None
                members[info.name] = f.read()
    except (OSError, tarfile.TarError) as e:
        raise BackupError(f"{archive}: not a mockmock backup ({e})") from None
    try:
        raw = json.loads(members.pop(MANIFEST))
        manifest = Manifest(**raw)
    except (KeyError, ValueError, TypeError):
        raise BackupError(f"{archive}: no manifest; not a mockmock backup") from None
    if manifest.format != FORMAT:
        raise BackupError(f"{archive}: format {manifest.format}; this version reads {FORMAT}")
    if set(members) != set(manifest.files):
        raise BackupError(f"{archive}: members differ from its manifest (damaged?)")
    for name, data in members.items():
        if _sha256(data) != manifest.files[name]:
            raise BackupError(f"{archive}: {name} does not match its checksum (damaged?)")
    return manifest, members


def _write_private(path: Path, data: bytes, root: Path) -> None:
    for parent in reversed(path.relative_to(root).parents):
        folder = root / parent
        if not folder.exists():
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class Restored:
    manifest: Manifest
    files: list[str]
    env_file: Path | None


def _pg_is_empty(url: str) -> bool:
    from appliance import db

    database = db.connect(url)
    try:
        return not database.get_tables()
    finally:
        database.close()


def restore(archive: Path, settings: Settings) -> Restored:
    """Restore ``archive`` into ``settings``' (empty) data directory and database."""
    manifest, members = _read(archive)
    data_dir = settings.data_dir
    url = settings.database_url
    kind = "sqlite" if url.startswith("sqlite:") else "postgresql"
    if kind != manifest.database:
        raise BackupError(
            f"--db-url: the backup holds a {manifest.database} database; restore it into "
            + ("a postgresql:// --db-url" if manifest.database == "postgresql" else "SQLite")
        )
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"--data-dir: {data_dir} is not empty; restore into a new directory")
    if kind == "postgresql" and not _pg_is_empty(url):
        raise BackupError(f"--db-url: {redacted(url)} already has tables; use an empty database")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    written = []
    for name, data in sorted(members.items()):
        if name.startswith("data/"):
            rel = name[len("data/") :]
            _write_private(data_dir / rel, data, data_dir)
            written.append(rel)
    env_path = None
    if ENV_MEMBER in members:
        env_path = data_dir / "mockmock.env"
        _write_private(env_path, members[ENV_MEMBER], data_dir)
    if kind == "sqlite":
        db_path = sqlite_path(url)
        if db_path.exists():
            raise BackupError(f"--db-url: {db_path} exists; restore into a new file")
        db_path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(db_path, members[SQLITE_MEMBER], db_path.parent)
    else:
        with tempfile.TemporaryDirectory(prefix="mockmock-restore-") as scratch:
            dump = Path(scratch) / "db.pgdump"
            dump.write_bytes(members[PG_MEMBER])
            _pg_restore(url, dump)
    return Restored(manifest, written, env_path)
