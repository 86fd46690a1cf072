"""``mockmock audit verify|reanchor``: check the audit chain of an appliance against its anchor."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import peewee

from appliance import db, exit_codes
from appliance.config import Settings
from appliance.errors import ApplianceError

db_url_option = click.option(
    "--db-url",
    default=None,
    help="sqlite:///path or postgresql://user@host/db [default: the data dir's SQLite].",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The appliance's state directory: its audit key and anchor (and SQLite database).",
)


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


def _on_the_log(db_url: str | None, data_dir: Path | None, work: Callable[[], Any]) -> Any:
    """Open the database and the data dir's audit key, run ``work``; errors are one line."""
    from appliance.audit import anchor

    settings = Settings.from_env(data_dir=data_dir, db_url=db_url)
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        click.echo(f"error: --data-dir: no database at {url[len('sqlite:///') :]}", err=True)
        sys.exit(exit_codes.USAGE)
    try:
        db.connect(url)
        anchor.configure(settings.data_dir, create=False)
        return work()
    except ApplianceError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(exit_codes.USAGE)
    except peewee.OperationalError as e:
        click.echo(f"error: --db-url: cannot read the database: {e}".splitlines()[0], err=True)
        sys.exit(exit_codes.UNAVAILABLE)
    except OSError as e:
        click.echo(f"error: --data-dir: {e.strerror or e}: {e.filename or ''}", err=True)
        sys.exit(exit_codes.UNAVAILABLE)
    finally:
        if db.database.obj is not None:
            db.database.close()


@audit.command()
@db_url_option
@data_dir_option
def verify(db_url: str | None, data_dir: Path | None) -> None:
    """Check every row's hash link and seal, and the anchored row; name the first broken
    row (exit 1) or print "ok: N rows"."""
    from appliance.audit import service

    verdict = _on_the_log(db_url, data_dir, service.verify)
    click.echo(verdict.line())
    sys.exit(exit_codes.OK if verdict.ok else exit_codes.RUN_FAILED)


@audit.command()
@db_url_option
@data_dir_option
def reanchor(db_url: str | None, data_dir: Path | None) -> None:
    """Anchor the chain where it ends now, after restoring an older database on purpose.

    Every row must still hold (hash links and seals); only the anchor file's record
    of rows since removed is given up. The change is itself an audit entry.
    """
    from appliance.audit import service

    verdict = _on_the_log(db_url, data_dir, service.reanchor)
    click.echo(verdict.line())
    sys.exit(exit_codes.OK if verdict.ok else exit_codes.RUN_FAILED)
