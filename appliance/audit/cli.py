"""``mockmock audit verify``: check the hash chain of an appliance database."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import peewee

from appliance import db, exit_codes
from appliance.config import Settings
from appliance.errors import ApplianceError


@click.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command()
@click.option("--db-url", default=None, help="sqlite:///path or postgresql://user@host/db.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The appliance's state directory (its SQLite database).",
)
def verify(db_url: str | None, data_dir: Path | None) -> None:
    """Check every row's hash link; name the first broken row (exit 1) or print "ok: N rows"."""
    from appliance.audit import service

    if db_url and data_dir:
        click.echo("error: --db-url and --data-dir: give one, not both", err=True)
        sys.exit(exit_codes.USAGE)
    settings = Settings.from_env(data_dir=data_dir, db_url=db_url)
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        click.echo(f"error: --data-dir: no database at {url[len('sqlite:///') :]}", err=True)
        sys.exit(exit_codes.USAGE)
    try:
        db.connect(url)
        verdict = service.verify()
    except ApplianceError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(exit_codes.USAGE)
    except peewee.OperationalError as e:
        click.echo(f"error: --db-url: cannot read the database: {e}".splitlines()[0], err=True)
        sys.exit(exit_codes.UNAVAILABLE)
    finally:
        if db.database.obj is not None:
            db.database.close()
    click.echo(verdict.line())
    sys.exit(exit_codes.OK if verdict.ok else exit_codes.RUN_FAILED)
