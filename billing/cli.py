"""``mockmock billing``: commands over the pure rating engine.

Mounted by the appliance CLI (``main.add_command(billing)``) and runnable alone
as ``python -m billing.cli``. Bad input never shows a traceback: one line on
stderr naming the file, the field and the problem, and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from billing.checks import decode_scenario
from billing.errors import BillingInputError
from billing.invoice import encode_invoice
from billing.rating import rate

# Same meaning as the appliance's exit_codes.USAGE, so scripts need one table.
EXIT_BAD_INPUT = 2


@click.group()
def billing() -> None:
    """Rate usage into invoices."""


@billing.command()
# A plain string, not click.Path(exists=True): click would print a multi-line
# usage error for a missing file, and that too is just bad input.
@click.argument("scenario", metavar="SCENARIO.json")
@click.option("--compact", is_flag=True, help="Print the JSON on one line.")
def quote(scenario: str, compact: bool) -> None:
    """Print, as JSON, the invoice a scenario rates to.

    SCENARIO.json may be - to read standard input. A bad scenario prints one
    line naming the field and the problem on stderr, and exits with status 2.
    """
    try:
        invoice = rate(decode_scenario(_read(scenario)))
    except BillingInputError as exc:
        # One line whatever the input holds: names and values are user text.
        line = " ".join(f"{scenario}: {exc}".splitlines())
        click.echo(line, err=True)
        raise click.exceptions.Exit(EXIT_BAD_INPUT) from None
    # Bytes, so names in any script reach stdout as UTF-8 whatever the locale.
    click.echo(encode_invoice(invoice, indent=0 if compact else 2))


def _read(name: str) -> bytes:
    if name == "-":
        return click.get_binary_stream("stdin").read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise BillingInputError("", f"cannot read: {exc.strerror or exc}") from None


if __name__ == "__main__":
    billing()
