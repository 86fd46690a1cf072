"""``mockmock``: the appliance-side command line (up, serve, run, tui, billing)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any

import click

from appliance import exit_codes
from appliance.config import DEFAULT_HTTP_PORT, DEFAULT_MQTT_PORT, Settings
from appliance.errors import ApplianceError


def fail(message: str, code: int = exit_codes.USAGE) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _check_port(host: str, port: int, option: str) -> None:
    """One clear line instead of a server traceback when a port is taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            why = "already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
            fail(f"{option}: cannot listen on {host}:{port} ({why}); pick another port")


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State directory [default: $MOCKMOCK_DATA_DIR or ~/.local/share/mockmock].",
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
@click.version_option(package_name="mockmock")
def main(verbose: bool) -> None:
    """mockmock: a self-hosted IoT device-mock appliance."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Per-request and per-job chatter would drown the live line.
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _serve(settings: Settings, *, live: bool, tui: bool) -> None:
    import uvicorn

    from appliance.app import create_app

    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",  # the live feed at /api/v1/live
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serve_task = asyncio.create_task(server.serve())
    while not server.started:
        if serve_task.done():
            await serve_task
            raise ApplianceError("the server did not start (see the messages above)")
        await asyncio.sleep(0.05)
    click.echo(
        f"mockmock appliance ready at {settings.url}  (API {settings.url}/api/v1, "
        f"OpenAPI {settings.url}/schema/openapi.json)"
    )
    click.echo(f"admin token: {settings.admin_token_path}")
    click.echo(f"control bus: {settings.bus_url}")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    extra: list[asyncio.Task[Any]] = []
    if tui:
        from tui.app import run_tui_async

        # Quitting this TUI stops the appliance, so it asks first.
        tui_run = run_tui_async(settings.url, settings.admin_token_path, stops_appliance=True)
        extra.append(asyncio.create_task(tui_run))
        extra[-1].add_done_callback(lambda _: stop.set())
    elif live:
        extra.append(asyncio.create_task(_live_line(settings)))
    await stop.wait()
    for t in extra:
        t.cancel()
    server.should_exit = True
    await serve_task


async def _live_line(settings: Settings) -> None:
    """A live line of counts: agents online, groups running, messages sent."""
    import httpx

    token = settings.admin_token_path.read_text().strip()
    tty = sys.stdout.isatty()
    async with httpx.AsyncClient(
        base_url=settings.url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        last = ""
        while True:
            await asyncio.sleep(2)
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                health = (await http.get("/api/v1/health")).json()
                groups = (await http.get("/api/v1/groups")).json()
                running = [g for g in groups if g["state"] == "running"]
                line = (
                    f"agents online {health['agents_online']}  groups running "
                    f"{len(running)}  mocks {sum(g['running'] for g in running)}  "
                    f"sent {sum(g['sent'] for g in groups)}  "
                    f"errors {sum(g['errors'] for g in groups)}"
                )
                if tty:
                    click.echo("\r" + line.ljust(len(last)), nl=False)
                elif line != last:
                    click.echo(line)
                last = line


def _claim_database(settings: Settings) -> Any:
    """A replica needs PostgreSQL; a SQLite database is owned by one process (the
    returned lock file, held until exit)."""
    from appliance import leader

    url = settings.database_url
    try:
        leader.check_replica(url, settings.replica)
        if leader.is_postgres(url) or ":///" not in url or url.endswith(":memory:"):
            return None
        return leader.claim_sqlite(Path(url.split(":///", 1)[1]))
    except ApplianceError as e:
        fail(e.message)


def _run_server(settings: Settings, *, live: bool, tui: bool, owner: Any = None) -> None:
    _check_port(settings.http_host, settings.http_port, "--http-port")
    if settings.embedded_broker and not settings.mqtt_url:
        _check_port(settings.mqtt_host, settings.mqtt_port, "--mqtt-port")
    owner = owner or _claim_database(settings)
    try:
        asyncio.run(_serve(settings, live=live, tui=tui))
    except ApplianceError as e:
        fail(e.message)
    finally:
        if owner is not None:
            owner.close()


@main.command()
@click.option("--headless", is_flag=True, help="No TUI: print the URL and a live line.")
@data_dir_option
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    default=None,
    help=f"API port [default: {DEFAULT_HTTP_PORT}].",
)
@click.option(
    "--mqtt-port",
    type=click.IntRange(1, 65535),
    default=None,
    help=f"Embedded control-bus broker port [default: {DEFAULT_MQTT_PORT}].",
)
@click.option(
    "--demo-billing/--no-demo-billing",
    default=True,
    show_default=True,
    help="Without Stripe keys configured, run localstripe (Stripe test mode, offline) "
    "on 127.0.0.1 so cards, charges and webhooks work in the demo.",
)
def up(
    headless: bool,
    data_dir: Path | None,
    http_port: int | None,
    mqtt_port: int | None,
    demo_billing: bool,
) -> None:
    """All in one: appliance, scheduler, embedded MQTT broker and a local agent."""
    settings = Settings.from_env(
        data_dir=data_dir,
        http_port=http_port,
        mqtt_port=mqtt_port,
        local_agent=True,
        embedded_broker=True,
    )
    tui = not headless and sys.stdin.isatty() and sys.stdout.isatty()
    stripe = None
    if demo_billing and not settings.stripe_api_key:
        stripe, settings = _demo_billing(settings)
    try:
        _run_server(settings, live=True, tui=tui)
    finally:
        if stripe is not None:
            stripe.stop()


def _demo_billing(settings: Settings) -> tuple[Any, Settings]:
    from dataclasses import replace

    from appliance import demo_stripe

    if not demo_stripe.available():
        click.echo("demo billing off: localstripe is not installed (a dev dependency)", err=True)
        return None, settings
    try:
        stripe, extra = demo_stripe.start_demo(settings.data_dir)
        stripe.send_webhooks_to(
            f"{settings.url}/api/v1/stripe/webhook", extra["stripe_webhook_secret"]
        )
    except (RuntimeError, OSError) as e:
        click.echo(f"demo billing off: {e}", err=True)
        return None, settings
    click.echo(f"demo billing: Stripe test mode on localstripe at {stripe.url}")
    return stripe, replace(settings, **extra)


@main.command()
@data_dir_option
@click.option("--http-host", default=None, help="Bind address [default: 127.0.0.1].")
@click.option("--http-port", type=click.IntRange(1, 65535), default=None)
@click.option("--mqtt-url", default=None, help="External control-bus broker, mqtt://host:port.")
@click.option("--db-url", default=None, help="sqlite:///path or postgresql://user@host/db.")
@click.option(
    "--replica",
    is_flag=True,
    default=None,
    help="One of several serve processes on one PostgreSQL and broker (refuses SQLite); "
    "one of them, the elected leader, runs the scheduler [env: MOCKMOCK_REPLICA].",
)
def serve(
    data_dir: Path | None,
    http_host: str | None,
    http_port: int | None,
    mqtt_url: str | None,
    db_url: str | None,
    replica: bool | None,
) -> None:
    """The appliance alone, on an external broker (production)."""
    settings = Settings.from_env(
        data_dir=data_dir,
        http_host=http_host,
        http_port=http_port,
        mqtt_url=mqtt_url,
        db_url=db_url,
        embedded_broker=False,
        replica=replica,
    )
    if not settings.mqtt_url:
        fail(
            "--mqtt-url: required for serve (or set MOCKMOCK_MQTT_URL); "
            "`mockmock up` embeds a broker instead"
        )
    from appliance import leader
    from appliance.app import prepare_database
    from appliance.orgs.service import ensure_demo_org

    owner = _claim_database(settings)
    with leader.migration_lock(settings.database_url):  # replicas starting together take turns
        prepare_database(settings)
        _, created = ensure_demo_org(settings.admin_token_path)
    if created:
        click.echo(f"admin token written to {settings.admin_token_path} (mode 0600)")
    _run_server(settings, live=False, tui=False, owner=owner)


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration", default="30s", show_default=True, help="How long to run: 10s, 2m.")
@click.option("--url", default=None, help="Appliance URL [default: http://127.0.0.1:8383].")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="API token file [default: DATA_DIR/admin.token].",
)
@data_dir_option
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON report here.",
)
@click.option(
    "--max-error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fail when a group's errors exceed this share of its sends.",
)
def run(
    scenario: Path,
    duration: str,
    url: str | None,
    token_file: Path | None,
    data_dir: Path | None,
    report: Path | None,
    max_error_rate: float,
) -> None:
    """Apply SCENARIO to a running appliance, run it, print a JSON report."""
    from agent.errors import ScenarioError
    from agent.template import load_scenario
    from appliance import runner

    seconds = runner.parse_duration(duration)
    try:
        parsed = load_scenario(scenario)
    except ScenarioError as e:
        fail(str(e))
    settings = Settings.from_env(data_dir=data_dir)
    token = runner.token_from(token_file or settings.admin_token_path)
    api = runner.Client(url or settings.url, token)
    try:
        result = runner.execute(api, parsed, seconds)
    except runner.RunError as e:
        fail(e.message, exit_codes.UNAVAILABLE)
    text = json.dumps(result, indent=2)
    click.echo(text)
    if report:
        report.write_text(text + "\n")
    problems = runner.verdict(result, max_error_rate)
    for p in problems:
        click.echo(f"failed: {p}", err=True)
    sys.exit(exit_codes.RUN_FAILED if problems else exit_codes.OK)


@main.command()
@click.option("--url", default=None, help="Appliance URL [default: http://127.0.0.1:8383].")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@data_dir_option
def tui(url: str | None, token_file: Path | None, data_dir: Path | None) -> None:
    """The operator and admin TUI."""
    from tui.app import run_tui

    settings = Settings.from_env(data_dir=data_dir)
    run_tui(url or settings.url, token_file or settings.admin_token_path)


@main.command("mosquitto-config")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the password file (passwd, 0600) and the ACL file (acl).",
)
@data_dir_option
@click.option("--db-url", default=None, help="sqlite:///path or postgresql://user@host/db.")
def mosquitto_config(out: Path, data_dir: Path | None, db_url: str | None) -> None:
    """Write Mosquitto's password and ACL files for every enrolled agent.

    Each agent may touch only mm/v1/agents/<its id>/#; the appliance all of mm/v1/#;
    anonymous clients anything but mm/#. Rerun after enrolling agents and send
    Mosquitto a SIGHUP to reload both files.
    """
    from appliance.app import prepare_database
    from appliance.auth import write_secret_file
    from appliance.fleet.credentials import ensure_appliance_user, mosquitto_files

    settings = Settings.from_env(data_dir=data_dir, db_url=db_url)
    try:
        prepare_database(settings)
        username, _ = ensure_appliance_user(settings.data_dir)
        passwd, acl_text, warnings = mosquitto_files()
        out.mkdir(parents=True, exist_ok=True)
        write_secret_file(out / "passwd", passwd.rstrip("\n"))
        (out / "acl").write_text(acl_text)
    except OSError as e:
        fail(f"--out: cannot write to {out}: {e.strerror or e}")
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {out / 'passwd'} and {out / 'acl'}; add to mosquitto.conf:")
    click.echo(f"  password_file {(out / 'passwd').resolve()}")
    click.echo(f"  acl_file {(out / 'acl').resolve()}")
    click.echo(
        f"the appliance connects as {username} (secret in {settings.data_dir}/bus.secret); "
        "run `mockmock serve` with the same --data-dir"
    )


def _mount_optional() -> None:
    with contextlib.suppress(ImportError):
        from billing.cli import billing

        main.add_command(billing)
    from appliance.audit.cli import audit

    main.add_command(audit)
    from appliance.template_cli import template

    main.add_command(template)


_mount_optional()

if __name__ == "__main__":
    main()
