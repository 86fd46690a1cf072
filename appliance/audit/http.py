"""Every successful API mutation goes to the audit log, whoever wrote the handler.

Handlers whose service records its own richer entry (with before/after)
say so with ``opt={"audited": True}``; for the rest this hook records the
handler, the path and the response body (secrets redacted) once the
response status is known and before the body reaches the client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from appliance.audit import service

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CALLER_KEY = "mm_caller"
_STATUS_KEY = "mm_audit_status"
_BODY_KEY = "mm_audit_body"
_MAX_BODY = 64 * 1024


def actor_of(caller: Any) -> str:
    """How the log names whoever made a call (an ``auth.Caller`` or nothing)."""
    if caller is None:
        return "public"
    if getattr(caller, "user_name", None):
        return f"user:{caller.user_name}"
    return f"token:{caller.token_id}"


async def before_send(message: Any, scope: Any) -> None:
    if scope.get("type") != "http" or scope.get("method", "GET") in SAFE_METHODS:
        return
    handler = scope.get("route_handler")
    if handler is None or handler.opt.get("audited"):
        return
    if message["type"] == "http.response.start":
        scope[_STATUS_KEY] = int(message["status"])
        return
    if message["type"] != "http.response.body":
        return
    status = scope.get(_STATUS_KEY, 500)
    if status >= 400:
        return
    scope[_BODY_KEY] = scope.get(_BODY_KEY, b"") + bytes(message.get("body", b""))[:_MAX_BODY]
    if message.get("more_body"):
        return
    try:
        after: Any = json.loads(scope[_BODY_KEY]) if scope[_BODY_KEY] else None
    except ValueError:
        after = None
    caller = scope.get(CALLER_KEY)
    await asyncio.to_thread(
        service.record,
        f"api.{handler.handler_name}",
        actor=actor_of(caller),
        target=f"{scope['method']} {scope['path']}",
        org_id=getattr(caller, "org_id", None),
        after={"status": status, "response": after},
    )
