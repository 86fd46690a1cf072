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
        from agent.journal import move_aside

        move_aside(data_dir, old.agent_id)
    path = cfg.save(data_dir)
    click.echo(f"enrolled as agent {cfg.agent_id}; credentials in {path} (mode 0600)")


@main.command()
@data_dir_option
@click.option(
    "--usage-interval",
    type=click.FloatRange(min=0.05, max=60),
    default=1.0,
    show_default=True,
    help="Seconds between usage records (each is journaled, then sent); what runs in "
    "between is checkpointed to the journal every 0.25 s.",
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


@main.group()
def journal() -> None:
    """Inspect or replace the usage journal (DATA_DIR/usage-journal.sqlite3)."""


@journal.command("status")
@data_dir_option
def journal_status(data_dir: Path | None) -> None:
    """Print the journal's epoch, sequence numbers and what is not acknowledged yet."""
    from agent.journal import JOURNAL_FILE, Journal

    path = (data_dir or default_data_dir()) / JOURNAL_FILE
    if not path.exists():
        fail(f"--data-dir: {path} does not exist (the agent has not run here yet)")
    try:
        j = Journal(path)
    except AgentError as e:
        fail(str(e), code=1)
    try:
        click.echo(json.dumps(j.status()))
    finally:
        j.close()


@journal.command("reset")
@data_dir_option
def journal_reset(data_dir: Path | None) -> None:
    """Move the journal aside (e.g. when it is corrupt); the agent starts a new one.

    Run it while the agent is stopped. The new journal has a new epoch, so the
    appliance counts its records as a new sequence. Usage the old journal had not
    delivered is not sent (the moved file keeps it for inspection).
    """
    import datetime as dt

    from agent.journal import move_aside

    data_dir = data_dir or default_data_dir()
    tag = "reset-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = move_aside(data_dir, tag)
    if moved is None:
        click.echo(f"no journal in {data_dir}; the agent starts a new one when it runs")
        return
    click.echo(f"moved the journal to {moved}; the agent starts a new one (a new epoch)")


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
@click.option(
    "--connect-timeout",
    default="120s",
    show_default=True,
    help="Give up (exit 1) when not every device is connected by then.",
)
@click.option(
    "--settle",
    default="0s",
    show_default=True,
    help="Wait this long after connecting before the measured window (several benches "
    "on one machine: let the others finish connecting).",
)
@click.option(
    "--ca",
    "ca_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="A CA folder (ca.key, ca.crt; `mockmock ca init` makes DATA_DIR/ca) that signs "
    "per-device certificates for templates with identity: per_device.",
)
@data_dir_option
def bench(
    scenario: Path,
    duration: str,
    devices: int | None,
    as_json: bool,
    connect_timeout: str,
    settle: str,
    ca_dir: Path | None,
    data_dir: Path | None,
) -> None:
    """Run SCENARIO's groups in this process (no appliance) and measure them."""
    import asyncio

    from agent import identity

    if ca_dir is not None:
        cache = (data_dir or default_data_dir()) / "identity"
        identity.configure(identity.Identities(identity.LocalIssuer(ca_dir), cache))

    from agent.bench import BenchFailed, format_table, load, run_bench
    from agent.spec import parse_duration_ms

    seconds = {}
    for name, text in (
        ("--duration", duration),
        ("--connect-timeout", connect_timeout),
        ("--settle", settle),
    ):
        try:
            seconds[name] = parse_duration_ms(text) / 1000
        except ValueError as e:
            fail(f"{name}: {e}")
        if seconds[name] <= 0 and name != "--settle":
            fail(f"{name}: must be > 0")
        if seconds[name] > 86_400:
            fail(f"{name}: must be at most 1 day")
    try:
        parsed = load(str(scenario), devices)
        progress = None if as_json else lambda m: click.echo(m, err=True)
        result = asyncio.run(
            run_bench(
                parsed,
                seconds["--duration"],
                progress=progress,
                connect_timeout_s=seconds["--connect-timeout"],
                settle_s=seconds["--settle"],
            )
        )
    except BenchFailed as e:
        fail(str(e), 1)
    except AgentError as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)
    click.echo(json.dumps(result) if as_json else format_table(result))
    if result["sent"] == 0:
        sys.exit(1)  # nothing got out: the target is down or refuses every device


if __name__ == "__main__":
    main()
