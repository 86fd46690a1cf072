"""What every request must satisfy before a route reads it, checked in one place.

- The path holds no control characters and no segment longer than 255 characters.
- A body is at most ``MAX_BODY`` bytes, valid UTF-8, nested at most ``MAX_DEPTH``
  levels (deeper documents exhaust recursion in decoders and in the audit log's
  redaction), and every integer in it fits int64 (the database's widest column).

Each violation is one 4xx naming the field (``seed: integer out of range ...``).
The body is checked when the handler first reads it, i.e. after the app-wide
guard authenticated the caller, so a stranger's body is never even buffered.
Per-field domains (counts, seeds, ids) are the routes' msgspec/Parameter bounds;
this is the floor under all of them. Validation errors of those bounds are
reworded into the same one line by :func:`validation_error`.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import ValidationException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from agent.errors import ScenarioError
from agent.limits import MAX_DEPTH, check_document, control_character
from agent.spec import split_message
from appliance.contract.errors import ErrorBody
from appliance.errors import ApplianceError, TooLarge

MAX_BODY = 10 * 1024 * 1024
"""Bytes of a request body (Litestar's own default limit, enforced before buffering)."""
MAX_SEGMENT = 255
_OFF_LOOP = 256 * 1024

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')  # possessive: linear even when unterminated
_LONG_NUMBER = re.compile(rb"\d{19,}")  # int64 has 19 digits; anything longer is checked
_BRACKETS = b"[{]}"
_STEPS = bytes.maketrans(_BRACKETS, b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(_BRACKETS)))


def check_path(path: str) -> None:
    bad = control_character(path)
    if bad is not None:
        raise ApplianceError(f"path: must not contain control characters (found {bad})")
    if any(len(segment) > MAX_SEGMENT for segment in path.split("/")):
        raise ApplianceError(f"path: a segment is longer than {MAX_SEGMENT} characters")


def check_body(body: bytes) -> None:
    """UTF-8, depth and int64 bounds of a (JSON) body; malformed JSON is left to the decoder."""
    if not body:
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApplianceError(f"body: not valid UTF-8 (byte {e.start})") from None
    outside_strings = _STRING.sub(b'""', body)
    steps = memoryview(outside_strings.translate(_STEPS, _NOT_BRACKETS)).cast("b")
    if max(itertools.accumulate(steps), default=0) > MAX_DEPTH:
        raise ApplianceError(f"body: nested deeper than {MAX_DEPTH} levels")
    if _LONG_NUMBER.search(outside_strings) is None:
        return
    # Rare: decode once more only to name the field that holds the big number.
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return
    try:
        check_document(value, "")
    except ScenarioError as e:
        raise ApplianceError(f"{e.path or 'body'}: {e.message}") from None


def request_limits(app: ASGIApp) -> ASGIApp:
    """ASGI middleware applying :func:`check_path` and :func:`check_body`."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        check_path(scope["path"])
        await app(scope, _checked(scope, receive), send)

    return middleware


def _checked(scope: Scope, receive: Receive) -> Receive:
    read = False

    async def receive_checked() -> Message:
        nonlocal read
        if read:
            return await receive()
        declared = _content_length(scope)
        if declared is not None and declared > MAX_BODY:
            raise TooLarge(f"body: larger than {MAX_BODY} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                raise TooLarge(f"body: larger than {MAX_BODY} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        read = True
        if len(body) > _OFF_LOOP:
            await asyncio.to_thread(check_body, body)  # ~30 ms per MB: not on the event loop
        else:
            check_body(body)
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_checked


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Litestar's "Validation failed for PUT /x" becomes one line naming the field."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    detail = exc.detail
    if extra and isinstance(extra[0], dict) and "message" in extra[0]:
        first = extra[0]
        sub, message = split_message(str(first["message"]))
        key = str(first.get("key") or "")
        # Body errors name the field in the message ("- at `$.count`") or in key;
        # key "data" is the whole body.
        where = sub or ("" if key == "data" else key) or "body"
        detail = f"{where}: {message}"
    body = ErrorBody(status_code=400, detail=str(detail), extra=extra or msgspec.UNSET)
    return Response(body, status_code=400)
