"""TUI tests: the app against a real appliance (fixtures in tests/fixtures/), or fed fixed data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from textual.pilot import Pilot

from tests.fixtures.processes import Appliance
from tui.app import MockmockApp
from tui.client import ApplianceClient


@asynccontextmanager
async def tui_for(
    app: Appliance, token: str | None = None, *, size: tuple[int, int] = (120, 36)
) -> AsyncIterator[tuple[MockmockApp, Pilot[None]]]:
    """The TUI on ``app`` as the holder of ``token`` (default: the admin's)."""
    client = ApplianceClient(app.url, token or app.token)
    tui = MockmockApp(client)
    try:
        async with tui.run_test(size=size) as pilot:
            await until(pilot, lambda: tui.role is not None, what="GET /api/v1/me")
            yield tui, pilot
    finally:
        await client.aclose()


async def until(
    pilot: Pilot[None], predicate: Callable[[], object], timeout: float = 20, what: str = ""
) -> object:
    """Let the app run until ``predicate()`` is truthy (the app's own clock, no sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def api(app: Appliance, method: str, path: str, body: object = None, token: str | None = None):
    """A blocking call for setting the stage (run it off the loop the TUI uses)."""
    if token is None:
        return app.api(method, path, body)
    import json
    import urllib.request

    req = urllib.request.Request(
        app.url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method=method,
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


async def api_async(app: Appliance, *args, **kwargs):
    return await asyncio.to_thread(api, app, *args, **kwargs)


def screen_text(app: MockmockApp) -> list[str]:
    """The terminal's lines as the user sees them now (the screen and what is under it)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text().splitlines()
