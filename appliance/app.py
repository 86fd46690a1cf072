"""The application factory: wiring only. Lifecycles start in the lifespan hook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

from appliance import __version__, at_rest, db
from appliance import ca as test_ca
from appliance.accounts import routes as account_routes
from appliance.api import caller, guard
from appliance.audit import anchor as audit_anchor
from appliance.audit import http as audit_http
from appliance.audit import routes as audit_routes
from appliance.bus.control import Bus
from appliance.config import Settings
from appliance.contract.errors import ErrorBody
from appliance.entitlements import routes as entitlement_routes
from appliance.errors import ApplianceError
from appliance.fleet import routes as fleet_routes
from appliance.groups import routes as group_routes
from appliance.http_options import allow_every_method
from appliance.inspect import routes as inspect_routes
from appliance.install import routes as install_routes
from appliance.invoices import routes as invoice_routes
from appliance.invoices.context import Billing
from appliance.notify import routes as notify_routes
from appliance.observability import routes as observability_routes
from appliance.openapi import CompletedJson
from appliance.orgs import routes as org_routes
from appliance.request_limits import MAX_BODY, request_limits, validation_error
from appliance.schedule import leader
from appliance.targets import routes as target_routes
from appliance.targets.policy import Rules
from appliance.tls import bus_context
from billing.errors import BillingError

log = logging.getLogger(__name__)


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    # A bug, not a user mistake: keep the traceback in the log, not in the answer.
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return Response(ErrorBody(detail="internal error; see the appliance log"), status_code=500)


def _error(_: Request[Any, Any, Any], exc: ApplianceError) -> Response[ErrorBody]:
    return Response(
        ErrorBody(status_code=exc.status_code, detail=exc.message), status_code=exc.status_code
    )


def prepare_database(settings: Settings) -> None:
    at_rest.tighten(settings.data_dir)
    db.connect(settings.database_url)
    db.migrate()
    audit_anchor.configure(settings.data_dir)  # the audit key and anchor live outside the DB
    # A new database file (and its WAL), the audit key and anchor may have been created now.
    at_rest.tighten(settings.data_dir)


def preflight(settings: Settings) -> None:
    """Open what the server opens at start, so a corrupt database or local agent journal
    is one line (an ApplianceError) before the server starts, not a traceback in it."""
    from agent.errors import AgentError
    from agent.journal import JOURNAL_FILE, Journal

    prepare_database(settings)
    db.database.close()
    journal = settings.data_dir / "agent" / JOURNAL_FILE
    if settings.local_agent and journal.exists():
        try:
            Journal(journal).close()
        except AgentError as e:
            raise ApplianceError(str(e)) from None


def create_app(settings: Settings) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from appliance.schedule import scheduler as scheduling

        await asyncio.to_thread(prepare_database, settings)
        bus: Bus = app.state.bus
        await asyncio.to_thread(bus.use_own_credentials, settings.data_dir)
        if settings.mqtt_url and settings.mqtt_shared:  # replicas split agent traffic
            from appliance import cluster

            bus.share = await asyncio.to_thread(cluster.share_group)
        broker = None
        if settings.embedded_broker and not settings.mqtt_url:
            from appliance.bus.broker import EmbeddedBroker
            from appliance.fleet.credentials import identify

            async def verify(username: str, password: str) -> Any:
                return await asyncio.to_thread(identify, username, password)

            broker = EmbeddedBroker(settings.mqtt_host, settings.mqtt_port, verify)
            await broker.start()
        bus.start()
        # The scheduler runs on the leader only: always this process on SQLite.
        jobs = scheduling.Scheduling(settings, bus)
        leadership = leader.for_database(
            db.database.obj, jobs.on_change, poll_s=settings.leader_poll_seconds
        )
        app.state.leadership = leadership
        await leadership.start()
        local = None
        if settings.local_agent:  # a child process, as on a board (appliance.fleet.local_agent)
            from appliance.fleet import local_agent

            cfg = await asyncio.to_thread(local_agent.prepare_config, settings)
            local = local_agent.LocalAgent(local_agent.agent_dir(settings))
            local.start()
            try:
                await local.wait_online(cfg.agent_id)  # "ready" means a group can start
            except BaseException:  # a failed or interrupted start leaves no agent behind
                await local.stop()
                raise
        app.state.local_agent = local
        try:
            yield
        finally:
            if local is not None:
                await local.stop()
            await leadership.stop()
            await bus.stop()
            if broker is not None:
                await broker.stop()
            db.database.close()

    app = Litestar(
        route_handlers=[
            *org_routes.ROUTES,
            *fleet_routes.ROUTES,
            *group_routes.ROUTES,
            *inspect_routes.ROUTES,
            *account_routes.ROUTES,
            *entitlement_routes.ROUTES,
            *audit_routes.ROUTES,
            *observability_routes.ROUTES,
            *invoice_routes.ROUTES,
            *target_routes.ROUTES,
            *test_ca.ROUTES,
            *install_routes.ROUTES,
            *notify_routes.ROUTES,
        ],
        dependencies={"caller": Provide(caller)},
        # Every route needs a token and a role unless it says otherwise (appliance.api).
        guards=[guard],
        # Every successful mutation is appended to the audit log.
        before_send=[audit_http.before_send],
        # Paths and bodies are bounded (UTF-8, depth, int64) before any route reads them.
        middleware=[request_limits, allow_every_method],
        request_max_body_size=MAX_BODY,
        exception_handlers={
            ApplianceError: _error,
            ValidationException: validation_error,
            BillingError: invoice_routes.billing_error,
            500: _internal,
        },
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="mockmock appliance",
            version=__version__,
            path="/schema",
            # openapi.json with every error answer, the token scheme and optional bodies
            render_plugins=[
                CompletedJson(),
                RedocRenderPlugin(path=["/", "/redoc"]),
                SwaggerRenderPlugin(),
            ],
        ),
        debug=False,
        # The CLI owns logging; Litestar's default would reconfigure the root logger.
        logging_config=None,
    )
    app.state.settings = settings
    app.state.billing = Billing.from_settings(settings)
    app.state.bus = Bus(settings.bus_url, tls_context=bus_context(settings))
    try:
        app.state.targets = Rules.parse(settings.lab_networks, settings.allow_loopback)
    except ValueError as e:
        raise ApplianceError(f"MOCKMOCK_LAB_NETWORKS: {e}") from None
    return app
