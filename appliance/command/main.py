"""``mockmock``: the appliance-side command line (up, serve, run, tui, billing)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from appliance import at_rest, exit_codes
from appliance.config import DEFAULT_HTTP_PORT, DEFAULT_MQTT_PORT, Settings
from appliance.errors import ApplianceError

if TYPE_CHECKING:
    from appliance.contract.groups import Group
    from appliance.contract.health import Health


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
    from agent.log_format import configure

    configure(verbose)  # the journal's format under systemd
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
            ssl_certfile=settings.tls_cert or None,
            ssl_keyfile=settings.tls_key or None,
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    # Before the server starts: a SIGTERM while it starts (and its local agent with it)
    # stops everything in order instead of killing the process half-started.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
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
    from appliance.db_errors import redacted

    click.echo(f"control bus: {redacted(settings.bus_url)}")
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
    import msgspec

    from appliance.contract.groups import GROUPS_PATH, Group
    from appliance.contract.health import HEALTH_PATH, Health

    token = settings.admin_token_path.read_text().strip()
    tty = sys.stdout.isatty()
    async with httpx.AsyncClient(
        base_url=settings.url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        last = ""
        while True:
            await asyncio.sleep(2)
            with contextlib.suppress(httpx.HTTPError, msgspec.DecodeError):
                health = msgspec.json.decode((await http.get(HEALTH_PATH)).content, type=Health)
                groups = msgspec.json.decode(
                    (await http.get(GROUPS_PATH)).content, type=list[Group]
                )
                line = live_line(health, groups)
                if tty:
                    click.echo("\r" + line.ljust(len(last)), nl=False)
                elif line != last:
                    click.echo(line)
                last = line


def live_line(health: Health, groups: list[Group]) -> str:
    """``mockmock up --headless``'s line of counts (scripts may read it)."""
    running = [g for g in groups if g.state == "running"]
    return (
        f"agents online {health.agents_online}  groups running "
        f"{len(running)}  mocks {sum(g.running for g in running)}  "
        f"sent {sum(g.sent for g in groups)}  "
        f"errors {sum(g.errors for g in groups)}"
    )


def _check_settings(settings: Settings) -> None:
    """Settings a user typed, checked before anything starts: one line each."""
    from appliance import tls
    from appliance.install.script import safe_base_url

    if settings.public_url and not safe_base_url(settings.public_url):
        fail(
            f"--public-url: {settings.public_url!r} is not an http(s)://host[:port][/path] URL "
            "(MOCKMOCK_PUBLIC_URL)"
        )
    try:
        tls.bus_context(settings)
        tls.agent_ca_pem(settings)
        tls.check_server_files(settings)
        _check_mail(settings)
    except ApplianceError as e:
        fail(e.message)


def _claim_database(settings: Settings) -> Any:
    """A replica needs PostgreSQL; a SQLite database is owned by one process (the
    returned lock file, held until exit)."""
    from appliance.schedule import leader

    url = settings.database_url
    try:
        leader.check_replica(url, settings.replica)
        if leader.is_postgres(url) or ":///" not in url or url.endswith(":memory:"):
            return None
        return leader.claim_sqlite(Path(url.split(":///", 1)[1]))
    except ApplianceError as e:
        fail(e.message)


def _check_mail(settings: Settings) -> None:
    from appliance.notify.service import parse_admins
    from appliance.notify.smtp import SmtpConfig

    if settings.smtp_url:
        try:
            SmtpConfig.parse(settings.smtp_url)
        except ValueError as e:
            raise ApplianceError(str(e).replace("smtp_url:", "MOCKMOCK_SMTP_URL:", 1)) from None
    if settings.smtp_ca and not os.access(settings.smtp_ca, os.R_OK):
        raise ApplianceError(f"MOCKMOCK_SMTP_CA: cannot read {settings.smtp_ca}")
    parse_admins(settings.billing_admins)


def _run_server(settings: Settings, *, live: bool, tui: bool, owner: Any = None) -> None:
    _check_settings(settings)
    _check_port(settings.http_host, settings.http_port, "--http-port")
    if settings.embedded_broker and not settings.mqtt_url:
        _check_port(settings.mqtt_host, settings.mqtt_port, "--mqtt-port")
    owner = owner or _claim_database(settings)
    try:
        from appliance.app import preflight

        preflight(settings)
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
    at_rest.protect(settings.data_dir)  # before anything (localstripe too) writes there
    tui = not headless and sys.stdin.isatty() and sys.stdout.isatty()
    from appliance import db_errors

    try:
        db_errors.prepare(settings)  # a wrong MOCKMOCK_DB_URL is one line, before anything
    except ApplianceError as e:
        fail(e.message)
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
@click.option(
    "--http-host",
    default=None,
    help="Bind address [default: 127.0.0.1, this machine only]. 0.0.0.0 serves every "
    "interface so boards can enroll: firewall the port to the lab network.",
)
@click.option("--http-port", type=click.IntRange(1, 65535), default=None)
@click.option(
    "--public-url",
    default=None,
    help="The URL boards reach the API at (the enrollment command) [MOCKMOCK_PUBLIC_URL].",
)
@click.option(
    "--mqtt-url",
    default=None,
    help="External control-bus broker: mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS "
    "(verified; never falls back to plaintext).",
)
@click.option("--mqtt-ca", default=None, help="CA (PEM) of the broker's certificate [system CAs].")
@click.option("--mqtt-cert", default=None, help="Client certificate (PEM) if the broker asks.")
@click.option("--mqtt-key", default=None, help="Private key of --mqtt-cert.")
@click.option(
    "--agent-mqtt-url",
    default=None,
    help="The broker URL boards are told at enrollment [default: --mqtt-url's host and port].",
)
@click.option(
    "--agent-mqtt-ca",
    default=None,
    help="CA (PEM) handed to enrolling boards for mqtts:// [default: --mqtt-ca].",
)
@click.option("--tls-cert", default=None, help="Certificate (PEM) for HTTPS on the API.")
@click.option("--tls-key", default=None, help="Private key of --tls-cert.")
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
    public_url: str | None,
    mqtt_url: str | None,
    mqtt_ca: str | None,
    mqtt_cert: str | None,
    mqtt_key: str | None,
    agent_mqtt_url: str | None,
    agent_mqtt_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    db_url: str | None,
    replica: bool | None,
) -> None:
    """The appliance alone, on an external broker (production)."""
    settings = Settings.from_env(
        data_dir=data_dir,
        http_host=http_host,
        http_port=http_port,
        public_url=public_url,
        mqtt_url=mqtt_url,
        mqtt_ca=mqtt_ca,
        mqtt_cert=mqtt_cert,
        mqtt_key=mqtt_key,
        agent_mqtt_url=agent_mqtt_url,
        agent_mqtt_ca=agent_mqtt_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        db_url=db_url,
        embedded_broker=False,
        replica=replica,
    )
    if not settings.mqtt_url:
        fail(
            "--mqtt-url: required for serve (or set MOCKMOCK_MQTT_URL); "
            "`mockmock up` embeds a broker instead"
        )
    at_rest.protect(settings.data_dir)
    _check_settings(settings)
    import peewee

    from appliance import db_errors
    from appliance.orgs.service import ensure_demo_org
    from appliance.schedule import leader

    owner = _claim_database(settings)
    try:
        # Replicas starting together migrate (and seed) one after the other.
        with leader.migration_lock(settings.database_url):
            db_errors.prepare(settings)
            _, created = ensure_demo_org(settings.admin_token_path)
    except ApplianceError as e:
        fail(e.message)
    except (peewee.DatabaseError, peewee.ImproperlyConfigured, ImportError) as e:
        fail(db_errors.explain(settings.database_url, e))
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
@click.option("--max-loss", default=None, help="Gate: verified messages lost, e.g. 0.1%.")
@click.option("--max-p99-latency", default=None, help="Gate: end-to-end p99 (verify), e.g. 50ms.")
@click.option("--max-p99-lateness", default=None, help="Gate: send lateness p99, e.g. 10ms.")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write JUnit XML: one test case per group and gate.",
)
@click.option(
    "--ready-timeout",
    default="60s",
    show_default=True,
    help="How long to wait for every device to connect and subscribe.",
)
def run(
    scenario: Path,
    duration: str,
    url: str | None,
    token_file: Path | None,
    data_dir: Path | None,
    report: Path | None,
    max_error_rate: float,
    max_loss: str | None,
    max_p99_latency: str | None,
    max_p99_lateness: str | None,
    junit: Path | None,
    ready_timeout: str,
) -> None:
    """Apply SCENARIO to a running appliance, run it, print a JSON report."""
    from agent.errors import ScenarioError
    from agent.template import load_scenario
    from appliance import gates
    from appliance.command import run as runner

    seconds = runner.parse_duration(duration)
    ready_s = runner.parse_duration(ready_timeout, "--ready-timeout")
    try:
        limits = gates.Limits(
            max_error_rate=max_error_rate,
            max_loss=None if max_loss is None else gates.parse_rate(max_loss, "--max-loss"),
            max_p99_latency_ms=None
            if max_p99_latency is None
            else runner.parse_duration(max_p99_latency, "--max-p99-latency") * 1000,
            max_p99_lateness_ms=None
            if max_p99_lateness is None
            else runner.parse_duration(max_p99_lateness, "--max-p99-lateness") * 1000,
        )
    except ValueError as e:
        fail(str(e))
    try:
        parsed = load_scenario(scenario)
    except ScenarioError as e:
        fail(str(e))
    settings = Settings.from_env(data_dir=data_dir)
    token = runner.token_from(token_file or settings.admin_token_path)
    api = runner.Client(url or settings.url, token)
    try:
        result = runner.execute(api, parsed, seconds, ready_timeout=ready_s)
    except runner.RunError as e:
        fail(e.message, exit_codes.UNAVAILABLE)
    text = json.dumps(result, indent=2)
    click.echo(text)
    if report:
        report.write_text(text + "\n")
    checks = gates.checks(result, limits)
    if junit:
        gates.junit(checks, duration_s=seconds, path=junit)
    problems = gates.failures(checks)
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


def _listen(value: str, option: str) -> Any:
    from appliance.fleet.acl import Listen

    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        fail(f"{option}: {value!r} is not HOST:PORT (e.g. 0.0.0.0:8883)")
    return Listen(host.strip("[]"), int(port))


@main.command("mosquitto-config")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for passwd, acl, acl-mock (0640, group --group) and mosquitto.conf.",
)
@data_dir_option
@click.option("--db-url", default=None, help="sqlite:///path or postgresql://user@host/db.")
@click.option("--tls-cert", default=None, help="The broker's certificate (PEM): a TLS listener.")
@click.option("--tls-key", default=None, help="Private key of --tls-cert.")
@click.option("--tls-ca", default=None, help="CA (PEM) for client certificates.")
@click.option(
    "--require-client-cert", is_flag=True, help="Clients must show a certificate (--tls-ca)."
)
@click.option(
    "--listen",
    default=None,
    help="Control-bus listener HOST:PORT [default: 0.0.0.0:8883 with TLS, else 0.0.0.0:1883].",
)
@click.option(
    "--mock-listen",
    default=None,
    help="Also an anonymous listener HOST:PORT for mock traffic (never the control bus).",
)
@click.option(
    "--persistence-dir",
    default="/var/lib/mosquitto/",
    show_default=True,
    help="Mosquitto's persistence folder; '' for none.",
)
@click.option(
    "--group",
    default="mosquitto",
    show_default=True,
    help="The broker's group: it may read the files (Mosquitto drops root to its own user).",
)
def mosquitto_config(
    out: Path,
    data_dir: Path | None,
    db_url: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    require_client_cert: bool,
    listen: str | None,
    mock_listen: str | None,
    persistence_dir: str,
    group: str,
) -> None:
    """Write Mosquitto's password and ACL files for every bus account, and mosquitto.conf.

    Each agent may touch only mm/v1/agents/<its id>/#; the appliance all of mm/v1/#;
    anonymous clients (only on --mock-listen) anything but mm/#. On the control
    listener the broker takes the username as client id, so no client can knock
    another off the bus with its id. Rerun after enrolling agents and reload
    Mosquitto (SIGHUP), or let the appliance rewrite them itself (MOCKMOCK_MOSQUITTO_DIR).
    """
    from appliance import db_errors
    from appliance.fleet import acl
    from appliance.fleet.credentials import (
        MOSQUITTO_USER,
        Reader,
        ensure_appliance_user,
        write_mosquitto_files,
    )

    if bool(tls_cert) != bool(tls_key):
        fail(f"{'--tls-key' if tls_cert else '--tls-cert'}: a TLS listener needs both files")
    if require_client_cert and not tls_ca:
        fail("--require-client-cert: needs --tls-ca (the CA that signs client certificates)")
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key), ("--tls-ca", tls_ca)):
        if path and not Path(path).is_file():
            fail(f"{option}: {path} is not a file")
    tls = None
    if tls_cert and tls_key:
        tls = acl.BrokerTLS(
            str(Path(tls_cert).resolve()),
            str(Path(tls_key).resolve()),
            str(Path(tls_ca).resolve()) if tls_ca else "",
            require_client_cert,
        )
    control = _listen(listen or ("0.0.0.0:8883" if tls else "0.0.0.0:1883"), "--listen")
    mock = _listen(mock_listen, "--mock-listen") if mock_listen else None
    folder = out.resolve()
    conf = acl.mosquitto_conf(
        folder=str(folder),
        control=control,
        tls=tls,
        mock=mock,
        persistence_dir=persistence_dir or None,
    )
    settings = Settings.from_env(data_dir=data_dir, db_url=db_url)
    try:
        db_errors.prepare(settings)
    except ApplianceError as e:
        fail(e.message)
    try:
        username, _ = ensure_appliance_user(settings.data_dir)
        warnings = write_mosquitto_files(out, conf=conf, group=group)
    except OSError as e:
        fail(f"--out: cannot write to {out}: {e.strerror or e}")
    reader = Reader.lookup(MOSQUITTO_USER)
    if reader is not None:
        named = [folder / n for n in ("passwd", "acl", "acl-mock")]
        named += [Path(p) for p in (tls_cert, tls_key, tls_ca) if p]
        warnings += [b for b in (reader.blocked(p) for p in named) if b]
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    if tls is None:
        click.echo(
            "warning: no --tls-cert/--tls-key: the control listener is plaintext "
            "(passwords cross the network in clear)",
            err=True,
        )
    click.echo(f"wrote passwd, acl, acl-mock and mosquitto.conf in {folder}")
    click.echo(f"  run Mosquitto on it:  mosquitto -c {folder / 'mosquitto.conf'}")
    click.echo(
        f"  (or copy it to /etc/mosquitto/mosquitto.conf); it reads {folder}/passwd and "
        f"{folder}/acl"
    )
    scheme = "mqtts" if tls else "mqtt"
    click.echo(
        f"the appliance connects as {username} (secret in {settings.data_dir}/bus.secret): "
        f"mockmock serve --data-dir {settings.data_dir} --mqtt-url {scheme}://BROKER:{control.port}"
        + (" --mqtt-ca CA.pem" if tls else "")
    )


@main.command()
@data_dir_option
@click.option("--db-url", default=None, help="sqlite:///path or postgresql://user@host/db.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The backup file to write (mode 0600: it holds secrets).",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file to include (Stripe, SMTP secrets) "
    "[default: /etc/mockmock/mockmock.env if readable].",
)
def backup(data_dir: Path | None, db_url: str | None, out: Path, env_file: Path | None) -> None:
    """Back up the database and the data dir's secrets into one file; safe while running.

    SQLite is copied with its online backup API (a consistent snapshot while the
    appliance writes), PostgreSQL with pg_dump. Boards' usage journals need no
    backup: they replay what the appliance has not acknowledged.
    """
    from appliance import backup as backups

    settings = Settings.from_env(data_dir=data_dir, db_url=db_url)
    if env_file is None and os.access(backups.DEFAULT_ENV_FILE, os.R_OK):
        env_file = backups.DEFAULT_ENV_FILE
    try:
        manifest = backups.backup(settings, out, env_file=env_file)
    except ApplianceError as e:
        fail(e.message, exit_codes.RUN_FAILED)
    except OSError as e:
        fail(f"--out: cannot write {out}: {e.strerror or e}")
    data = [n for n in manifest.files if n.startswith("data/")]
    click.echo(
        f"wrote {out} (0600): {manifest.database} database, {len(data)} file(s) of "
        f"{settings.data_dir}" + (f", {env_file}" if env_file else "")
    )


@main.command()
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@data_dir_option
@click.option(
    "--db-url",
    default=None,
    help="Where to restore the database [default: SQLite in --data-dir]; a postgresql:// "
    "URL for a PostgreSQL backup (an empty database).",
)
def restore(archive: Path, data_dir: Path | None, db_url: str | None) -> None:
    """Restore a backup into an empty data directory (and an empty database).

    The restored appliance has the same tokens, users, agents and bus accounts,
    and its audit chain verifies. Start it with `mockmock serve --data-dir DIR`.
    """
    from appliance import backup as backups
    from appliance import db_errors

    if data_dir is None:
        fail("--data-dir: required (a new, empty directory for the restored appliance)")
    settings = Settings.from_env(data_dir=data_dir, db_url=db_url)
    try:
        restored = backups.restore(archive, settings)
        db_errors.prepare(settings)  # a backup of an older version: migrate
    except ApplianceError as e:
        fail(e.message, exit_codes.RUN_FAILED)
    except OSError as e:
        fail(f"--data-dir: cannot write {settings.data_dir}: {e.strerror or e}")
    finally:
        from appliance import db

        if db.database.obj is not None:
            db.database.close()
    m = restored.manifest
    click.echo(
        f"restored a {m.database} backup of mockmock {m.version} made {m.created_at} into "
        f"{settings.data_dir} ({len(restored.files)} file(s))"
    )
    if restored.env_file is not None:
        click.echo(
            f"its settings file is in {restored.env_file} (0600): move it to "
            "/etc/mockmock/mockmock.env on this machine"
        )


@main.command("agent-bundle")
@click.option(
    "--platform",
    "platform",
    type=click.Choice(["native", "linux_aarch64", "linux_armv7l", "linux_x86_64"]),
    default="native",
    show_default=True,
    help="Boards to prepare for: native = this machine's platform and Python; "
    "linux_aarch64 = Raspberry Pi OS 64-bit; linux_armv7l = Raspberry Pi OS 32-bit.",
)
@click.option(
    "--python-version",
    default="3.11",
    show_default=True,
    help="The boards' Python (Raspberry Pi OS bookworm: 3.11); not for native.",
)
@click.option("--index-url", default=None, help="Package index or mirror to download from.")
@click.option("--extra-index-url", multiple=True, help="More indexes (one with armv7l wheels).")
@click.option("--find-links", multiple=True, help="Folders or pages of wheels to take from.")
@click.option("--no-index", is_flag=True, help="Only --find-links, no index at all.")
@data_dir_option
def agent_bundle(
    platform: str,
    python_version: str,
    index_url: str | None,
    extra_index_url: tuple[str, ...],
    find_links: tuple[str, ...],
    no_index: bool,
    data_dir: Path | None,
) -> None:
    """Prepare the agent wheelhouse that boards install from (GET /agent/wheels/).

    Boards of this machine's own platform need nothing more: the appliance builds
    their wheels from its own environment on first request. For other boards, run
    this once at appliance install time, where the network (or a mirror, or a
    folder of wheels) is reachable; afterwards the appliance serves them offline.
    """
    import re

    from appliance.install import bundle

    if not re.fullmatch(r"3\.\d{1,2}", python_version):
        fail(f"--python-version: {python_version!r} is not like 3.11")
    settings = Settings.from_env(data_dir=data_dir)
    source = bundle.Source(index_url, extra_index_url, find_links, no_index)
    try:
        added, notes = bundle.bundle(
            settings.data_dir, platform, python_version=python_version, source=source
        )
    except bundle.BundleError as e:
        fail(str(e), exit_codes.UNAVAILABLE)
    except OSError as e:
        fail(f"--data-dir: cannot write the wheelhouse in {settings.data_dir}: {e.strerror or e}")
    from appliance.install import wheelhouse

    out = wheelhouse.wheel_dir(settings.data_dir)
    for note in notes:
        click.echo(note)
    click.echo(f"{len(added)} wheel(s) added; {len(wheelhouse.listing(out))} in {out}")


def _mount_optional() -> None:
    with contextlib.suppress(ImportError):
        from billing.cli import billing

        main.add_command(billing)
    from appliance.audit.cli import audit

    main.add_command(audit)
    from appliance.command.template import template

    main.add_command(template)


_mount_optional()

from appliance.ca import ca_cli  # noqa: E402 - the test CA's commands

main.add_command(ca_cli)


if __name__ == "__main__":
    main()
