"""Shared pieces of the HTTP edge: the caller dependency and service calls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from litestar import Request
from litestar.datastructures import State

from appliance import auth

T = TypeVar("T")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking, peewee) service function off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def caller(request: Request[Any, Any, State]) -> auth.Caller:
    return await call(auth.authenticate, request.headers.get("authorization"))
