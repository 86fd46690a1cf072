"""GET /metrics (Prometheus text) and the live feed at /api/v1/live (WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import Response, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect

from appliance import auth
from appliance.api import call
from appliance.contract.health import Health
from appliance.errors import ApplianceError
from appliance.observability import health as healthcheck
from appliance.observability import live, metrics, ops, snapshot
from appliance.observability.rates import RateWindow

log = logging.getLogger(__name__)

LIVE_PERIOD_S = 1.0
AUTH_TIMEOUT_S = 5.0
CLOSE_UNAUTHORIZED = 4401  # the 4000-4999 range is the application's; 4401 mirrors HTTP 401


@get("/api/v1/health")
async def health(state: State) -> Health:
    """Liveness: 200 while the process serves; ``status`` ok, or degraded with ``problems``."""
    return await call(
        healthcheck.check, state.settings.database_url, state.bus.connected.is_set(), _role(state)
    )


def _role(state: State) -> str:
    return state.leadership.role if "leadership" in state else "standby"


@get("/api/v1/ready", opt={"public": True})
async def ready(state: State) -> Response[Health]:
    """Readiness: 200 when the database and the control bus are up, else 503."""
    h = await call(
        healthcheck.check, state.settings.database_url, state.bus.connected.is_set(), _role(state)
    )
    return Response(h, status_code=200 if h.status == "ok" else 503)


@get("/metrics", media_type=metrics.CONTENT_TYPE)
async def get_metrics(caller: auth.CallerParam, state: State) -> Response[str]:
    """Prometheus text: every org for an appliance superuser, the caller's org otherwise."""
    org = None if caller.superuser else caller.org_id
    snap = await call(snapshot.take, org)
    text = metrics.render(snap, bus_connected=state.bus.connected.is_set())
    text += await call(ops.render, org)
    return Response(text, media_type=metrics.CONTENT_TYPE)


async def _token(socket: WebSocket[Any, Any, Any]) -> str:
    token = socket.query_params.get("token")
    if not token:
        try:
            first = await asyncio.wait_for(socket.receive_json(), AUTH_TIMEOUT_S)
        except (TimeoutError, ValueError):
            raise ApplianceError('send {"token": ...} first, or connect with ?token=') from None
        token = first.get("token") if isinstance(first, dict) else None
        if not isinstance(token, str):
            raise ApplianceError('the first message must be {"token": "..."}')
    return token


async def _refuse(socket: WebSocket[Any, Any, Any], message: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await socket.send_json({"error": message})
        await socket.close(code=CLOSE_UNAUTHORIZED, reason=message[:120])


@websocket("/api/v1/live", opt={"public": True})  # authenticates itself: token in query or first
async def live_feed(socket: WebSocket[Any, Any, Any]) -> None:
    """A JSON snapshot every second: agent presence, per-group sent/s, errors, lateness.

    Authenticate with ``?token=...`` or a first message ``{"token": "..."}`` (any
    role). ``?scope=all`` shows every org to an appliance superuser. The token is
    checked again before every snapshot: once it is revoked or its user deleted,
    the feed sends ``{"error": ...}`` and closes with 4401.
    """
    await socket.accept()
    try:
        token = await _token(socket)
    except ApplianceError as e:
        await _refuse(socket, e.message)
        return
    # One window for the whole app: a new viewer sees rates at once, not after a window.
    rates = socket.app.state.setdefault("live_rates", RateWindow())
    bus = socket.app.state.bus
    # Listening is how a close is noticed promptly (a send may not fail at once).
    closed = asyncio.create_task(_until_closed(socket))
    try:
        while not closed.done():
            try:
                caller = await call(live.recheck, token)
            except ApplianceError as e:
                await _refuse(socket, e.message)
                return
            all_orgs = caller.superuser and socket.query_params.get("scope") == "all"
            snap = await call(snapshot.take, None if all_orgs else caller.org_id)
            await socket.send_json(live.payload(snap, rates, bus_connected=bus.connected.is_set()))
            await asyncio.wait({closed}, timeout=LIVE_PERIOD_S)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away
    finally:
        closed.cancel()
        await asyncio.gather(closed, return_exceptions=True)


async def _until_closed(socket: WebSocket[Any, Any, Any]) -> None:
    """Read (and ignore) what the client sends until it closes."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await socket.receive_data(mode="text")


ROUTES = [health, ready, get_metrics, live_feed]
