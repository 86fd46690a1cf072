"""``mockmock template``: look at what a template would send, without sending it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import orjson

from appliance import exit_codes


@click.group()
def template() -> None:
    """Work with device templates offline (no appliance, no broker)."""


@template.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--devices", type=click.IntRange(1, 10_000), default=3, show_default=True)
@click.option(
    "--count",
    type=click.IntRange(1, 100_000),
    default=5,
    show_default=True,
    help="Messages per device.",
)
@click.option("--seed", type=int, default=None, help="[default: the group's seed, else random]")
@click.option("--template", "name", default=None, help="[default: the first template]")
def preview(file: Path, devices: int, count: int, seed: int | None, name: str | None) -> None:
    """Print the first messages of FILE's mocks as JSON lines; sends nothing.

    The engine runs on a virtual clock, so statuses, faults and timing show as
    they would on the wire (a malformed message appears as "raw" text).
    """
    from agent.engine import preview as run_preview
    from agent.errors import ScenarioError
    from agent.template import load_scenario

    def fail(message: str) -> None:
        click.echo(f"error: {message}", err=True)
        sys.exit(exit_codes.USAGE)

    try:
        scenario = load_scenario(file)
    except ScenarioError as e:
        fail(str(e))
    if name is None:
        name = next(iter(scenario.templates))
    if name not in scenario.templates:
        fail(f"--template: unknown template {name!r} (known: {', '.join(scenario.templates)})")
    group = next((g for g in scenario.groups if g.template == name), None)
    if seed is None and group is not None:
        seed = group.seed
    tpl = scenario.templates[name]
    rows = asyncio.run(
        run_preview(
            name,
            tpl.to_dict(),
            group=group.name if group is not None else name,
            devices=devices,
            count=count,
            seed=seed,
        )
    )
    out = sys.stdout.buffer
    for row in rows:
        out.write(orjson.dumps(row) + b"\n")
    out.flush()
