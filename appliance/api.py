"""Shared pieces of the HTTP edge: the caller dependency and service calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter

from agent.limits import NAME_PATTERN
from appliance import auth
from appliance.audit.http import CALLER_KEY

T = TypeVar("T")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking, peewee) service function off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def caller(request: Request[Any, Any, State]) -> auth.Caller:
    found = request.scope.get(CALLER_KEY)  # type: ignore[misc]
    if isinstance(found, auth.Caller):
        return found
    return await call(auth.authenticate, request.headers.get("authorization"))


MAX_ID = 2**31 - 1
Id = Annotated[int, Parameter(ge=1, le=MAX_ID)]
"""A row id in a path or query: out-of-range numbers are a 400, never a database error."""
OptionalId = Annotated[int | None, Parameter(ge=1, le=MAX_ID)]
"""An optional row id (``FromQuery[Id | None]`` would document the bounds but not check them)."""
BodyId = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
"""A row id inside a request body (msgspec Struct field)."""
MAX_AMOUNT = 10**12
Amount = Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
"""Money in a body, in minor units: within a trillion either way, so no sum of a few
overflows a column; whether it may be negative is the service's rule."""
Name = Annotated[str, Parameter(pattern=NAME_PATTERN, min_length=1, max_length=63)]
"""A template or group name in a path: letters, digits, ``_ . -``, at most 63."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/agents/enroll"})
"""Answer without a token; every other route needs one (``opt={"public": True}`` adds more)."""

AGENT_AUTH = "AgentBasic"
"""``opt={"public": True, "auth": AGENT_AUTH}``: no token, the handler checks the agent's
bus account (HTTP Basic) itself; the OpenAPI document names that scheme."""


def is_public(path: str, handler: BaseRouteHandler) -> bool:
    return bool(handler.opt.get("public")) or path in PUBLIC_PATHS or path.startswith("/schema")


def required_role(method: str, handler: BaseRouteHandler) -> str:
    """``opt={"role": ...}`` on the handler, else viewer to read and operator to change."""
    role = handler.opt.get("role")
    if role:
        return str(role)
    return "viewer" if method in SAFE_METHODS else "operator"


async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The app-wide guard: authenticate, then check the role, before the body is even read."""
    path = connection.scope["path"]
    method = connection.scope.get("method", "GET")
    if method == "OPTIONS" or is_public(path, handler):  # OPTIONS: CORS preflights carry no token
        return
    who = await call(auth.authenticate, connection.headers.get("authorization"))
    who.require(required_role(method, handler))
    if handler.opt.get("superuser"):
        who.require_superuser()
    connection.scope[CALLER_KEY] = who  # type: ignore[literal-required]
