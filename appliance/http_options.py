"""``OPTIONS`` answers with every method of the path in ``Allow``.

Litestar 2.x builds a path's automatic OPTIONS handler when the first of its
handlers registers and never updates it, so ``Allow`` lists only that first
method (litestar-org/litestar#4169, fixed in v3). Until then this middleware
writes ``Allow`` from the app's route map. Remove it with Litestar 3.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send


def allow_every_method(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        methods: set[str] = set()
        for path in getattr(handler, "paths", ()):
            methods |= set(scope["app"].route_handler_method_map.get(path, {}))

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and methods:
                headers = MutableScopeHeaders.from_message(message)
                headers["Allow"] = ", ".join(sorted(methods | {"OPTIONS"}))
            await send(message)

        await app(scope, receive, send_allow)

    return middleware
