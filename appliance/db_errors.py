"""Opening the database from the command line: one clear line for what a user can fix.

A missing database, an unknown role, a wrong password, a server that is down,
a schema the role may not write to, or a driver that is not installed are
setup mistakes, not bugs: each becomes an ``ApplianceError`` naming ``--db-url``
(password hidden) and what to do, never a driver traceback.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import peewee

from appliance.config import Settings
from appliance.errors import ApplianceError

GUIDE = "deploy/postgresql.md"


def redacted(url: str) -> str:
    """``url`` with its password (in the authority or the query) replaced by ***."""
    parts = urlsplit(url)
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
    if parts.password is None and query == parts.query:
        return url  # nothing to hide (and geturl() would drop sqlite:////'s empty host)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username}:***@{netloc.rsplit('@', 1)[1]}"
    return parts._replace(netloc=netloc, query=query).geturl()


def _fatal(exc: BaseException) -> str:
    """The server's reason out of a psycopg2 message ('... failed: FATAL:  reason')."""
    text = " ".join(str(exc).split())
    for marker in ("FATAL: ", "ERROR: "):
        if marker in text:
            return text.rsplit(marker, 1)[1].strip()
    return text.split(" failed: ", 1)[-1].strip() or type(exc).__name__


def explain(url: str, exc: BaseException) -> str:
    shown = redacted(url)
    kind = urlsplit(url).scheme.split("+", 1)[0]
    if isinstance(exc, (peewee.ImproperlyConfigured, ImportError)):
        return (
            f"--db-url: {shown}: the {kind} driver is not installed "
            "(pip install psycopg2-binary, or Debian's python3-psycopg2)"
        )
    if isinstance(exc, RuntimeError) and "scheme" in str(exc):
        return f"--db-url: {shown}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    reason = _fatal(exc)
    hint = ""
    m = re.search(r'database "([^"]+)" does not exist', reason)
    if m:
        hint = f"; create it: createdb --owner ROLE {m.group(1)} (see {GUIDE})"
    elif re.search(r'role "[^"]+" does not exist', reason):
        hint = f"; create the role: createuser --pwprompt ROLE (see {GUIDE})"
    elif "password authentication failed" in reason or "no password supplied" in reason:
        hint = f"; check the password in the URL or ~/.pgpass (see {GUIDE})"
    elif "permission denied" in reason:
        hint = f"; the role needs CREATE on the schema, or to own the database (see {GUIDE})"
    elif "Connection refused" in reason and "Is the server running" not in reason:
        hint = "; is PostgreSQL running and listening there?"
    elif kind == "sqlite":
        hint = "; check the data directory exists and is writable"
    return f"--db-url: cannot open {shown}: {reason}{hint}"


def prepare(settings: Settings) -> None:
    """Open (creating or migrating the schema) the settings' database, or one clear line."""
    from appliance.app import prepare_database

    try:
        prepare_database(settings)
    except (peewee.DatabaseError, peewee.ImproperlyConfigured, ImportError) as e:
        raise ApplianceError(explain(settings.database_url, e)) from None
    except RuntimeError as e:
        if "scheme" not in str(e):
            raise
        raise ApplianceError(explain(settings.database_url, e)) from None
