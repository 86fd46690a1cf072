"""``mockmock-agent``: enroll a board, run the agent."""

from __future__ import annotations

import contextlib
import json
import platform
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import click

from agent.errors import AgentError
from agent.runtime import AgentConfig, default_data_dir, run_agent

EXIT_USAGE = 2

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the agent keeps its credentials and usage journal "
    "[default: $MOCKMOCK_AGENT_DIR or ~/.local/share/mockmock-agent].",
)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """mockmock agent: runs mock devices for a mockmock appliance."""
    from agent.log_format import configure

    configure(verbose)  # the journal's format under systemd


@main.command()
@click.argument("url")
@click.argument("token")
@click.option(
    "--capacity",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="How many mocks this board offers.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing enrollment (its usage journal is kept aside, renamed).",
)
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CA certificate (PEM) of an https:// appliance a private CA signed [system CAs].",
)
@data_dir_option
def enroll(
    url: str, token: str, capacity: int, force: bool, ca_file: Path | None, data_dir: Path | None
) -> None:
    """Enroll this board with the appliance at URL using a one-time TOKEN.

    The appliance answers with this agent's id and its own MQTT credentials (and,
    for an mqtts:// bus, the CA of its broker); they are stored in
    DATA_DIR/agent.json, readable by this user only (0600).
    """
    from agent.tls import control_context, https_context

    data_dir = data_dir or default_data_dir()
    context = None
    if url.startswith("https://") or ca_file is not None:
        try:
            context = https_context(str(ca_file) if ca_file else "")
        except AgentError as e:
            fail(str(e))
    try:
        old = AgentConfig.load(data_dir)
    except AgentError:
        old = None
    if old is not None and not force:
        fail(
            f"--data-dir: {data_dir} is already enrolled as agent {old.agent_id}; "
            "pass --force to replace it"
        )
    body = json.dumps(
        {
            "token": token,
            "hostname": socket.gethostname(),
            "arch": platform.machine(),
            "capacity": capacity,
        }
    ).encode()
    req = urllib.request.Request(
        url.rstrip("/") + "/api/v1/agents/enroll",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=15, context=context) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("detail", detail)
        fail(f"enrollment refused ({e.code}): {detail}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"cannot reach the appliance at {url}: {getattr(e, 'reason', e)}")
    try:
        cfg = AgentConfig(
            agent_id=str(answer["agent_id"]),
            mqtt_url=str(answer["mqtt_url"]),
            username=str(answer["username"]),
            password=str(answer["password"]),
            appliance_url=url,
            capacity=capacity,
            mqtt_ca=str(answer.get("mqtt_ca") or ""),
        )
    except (KeyError, TypeError) as e:
        fail(f"the appliance at {url} answered without {e} (is it a mockmock appliance?)")
    if cfg.mqtt_ca:
        try:
            control_context(cfg.mqtt_ca)
        except AgentError as e:
            fail(f"the appliance handed over a broker CA that does not load: {e}")
    if old is not None:
        # Its unacknowledged usage belongs to the old identity; never resend it as ours.
        journal = data_dir / "usage-journal.sqlite3"
        if journal.exists():
            journal.rename(data_dir / f"usage-journal.{old.agent_id}.sqlite3")
            for suffix in ("-wal", "-shm"):
                side = data_dir / f"usage-journal.sqlite3{suffix}"
                if side.exists():
                    side.rename(data_dir / f"usage-journal.{old.agent_id}.sqlite3{suffix}")
    path = cfg.save(data_dir)
    click.echo(f"enrolled as agent {cfg.agent_id}; credentials in {path} (mode 0600)")


@main.command()
@data_dir_option
@click.option(
    "--usage-interval",
    type=click.FloatRange(min=0.05, max=60),
    default=1.0,
    show_default=True,
    help="Seconds between usage records (each is journaled, then sent).",
)
def run(data_dir: Path | None, usage_interval: float) -> None:
    """Run the agent until interrupted."""
    from agent.runtime import broker_address
    from agent.tls import control_context

    data_dir = data_dir or default_data_dir()
    try:
        cfg = AgentConfig.load(data_dir)
        if broker_address(cfg.mqtt_url)[2]:  # mqtts://: a CA that loads, before any connect
            control_context(cfg.mqtt_ca)
        run_agent(data_dir, usage_interval=usage_interval)
    except AgentError as e:
        fail(str(e))
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration", default="10s", show_default=True, help="How long to send: 10s, 2m.")
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    default=None,
    help="Run this many devices in all, spread over the groups like their counts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(scenario: Path, duration: str, devices: int | None, as_json: bool) -> None:
    """Run SCENARIO's groups in this process (no appliance) and measure them."""
    import asyncio

    from agent.bench import format_table, load, run_bench
    from agent.template import parse_duration_ms

    try:
        duration_s = parse_duration_ms(duration) / 1000
    except ValueError as e:
        fail(f"--duration: {e}")
    if duration_s <= 0:
        fail("--duration: must be > 0")
    try:
        parsed = load(str(scenario), devices)
        progress = None if as_json else lambda m: click.echo(m, err=True)
        result = asyncio.run(run_bench(parsed, duration_s, progress=progress))
    except AgentError as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)
    click.echo(json.dumps(result) if as_json else format_table(result))
    if result["sent"] == 0:
        sys.exit(1)  # nothing got out: the target is down or refuses every device


if __name__ == "__main__":
    main()
