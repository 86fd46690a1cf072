"""``mockmock-agent``: enroll a board, run the agent."""

from __future__ import annotations

import contextlib
import json
import logging
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
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


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
@data_dir_option
def enroll(url: str, token: str, capacity: int, data_dir: Path | None) -> None:
    """Enroll this board with the appliance at URL using a one-time TOKEN."""
    data_dir = data_dir or default_data_dir()
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
        with urllib.request.urlopen(req, timeout=15) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("detail", detail)
        fail(f"enrollment refused ({e.code}): {detail}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"cannot reach the appliance at {url}: {getattr(e, 'reason', e)}")
    cfg = AgentConfig(
        agent_id=answer["agent_id"],
        mqtt_url=answer["mqtt_url"],
        username=answer.get("username", ""),
        password=answer.get("password", ""),
        appliance_url=url,
        capacity=capacity,
    )
    path = cfg.save(data_dir)
    click.echo(f"enrolled as agent {cfg.agent_id}; credentials in {path} (mode 0600)")


@main.command()
@data_dir_option
def run(data_dir: Path | None) -> None:
    """Run the agent until interrupted."""
    try:
        run_agent(data_dir or default_data_dir())
    except AgentError as e:
        fail(str(e))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
