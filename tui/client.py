"""The only place the TUI talks to the appliance: its HTTP API and the live WebSocket feed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from appliance.contract.errors import ErrorBody
from appliance.contract.fleet import AGENTS_PATH, Agent
from appliance.contract.groups import GROUPS_PATH, Group
from appliance.contract.live import LiveAgent, LiveError, LiveGroup, LiveSnapshot

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_PERIOD_S = 1.5
"""How often the feed polls the REST API when the WebSocket feed is not there."""


class ApiError(Exception):
    """A call failed: ``status`` is the HTTP status (0 when the appliance was unreachable)."""

    def __init__(self, message: str, status: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message

    @property
    def forbidden(self) -> bool:
        return self.status in (401, 403)


class ApplianceClient:
    def __init__(self, url: str, token: str, *, timeout: float = 10) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    @classmethod
    def from_token_file(cls, url: str, token_file: Path) -> ApplianceClient:
        try:
            token = token_file.read_text().strip()
        except OSError as e:
            raise ApiError(f"--token-file: {token_file}: {e.strerror}") from None
        return cls(url, token)

    async def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        try:
            r = await self._http.request(method, path, json=body, params=query or None)
        except httpx.HTTPError as e:
            raise ApiError(f"cannot reach {self.url}: {e or type(e).__name__}") from None
        if r.status_code >= 400:
            detail = _detail(r)
            raise ApiError(f"{method} {path}: {r.status_code} {detail}", r.status_code, detail)
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            return r.text

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, **params)

    async def get_as(self, kind: type[T], path: str, **params: Any) -> T:
        """GET decoded into one of the shared response types (``appliance.contract``)."""
        return decode_as(kind, await self.get(path, **params), path)

    async def post_as(self, kind: type[T], path: str, body: Any = None) -> T:
        return decode_as(kind, await self.post(path, body), path)

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.request("POST", path, body, **params)

    async def put(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, body)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    async def live(self) -> AsyncIterator[LiveSnapshot | LiveError]:
        """Snapshots from /api/v1/live; polls the REST API instead when the feed is absent.

        A ``LiveError`` reports a failed read (the figures on screen then age) and is retried.
        """
        while True:
            try:
                async for snap in self._websocket():
                    yield snap
            except _NoFeed as e:
                log.info("live feed unavailable (%s); polling every %ss", e, POLL_PERIOD_S)
                async for snap in self._poll():
                    yield snap
            await asyncio.sleep(POLL_PERIOD_S)  # the feed closed: reconnect

    async def _websocket(self) -> AsyncIterator[LiveSnapshot | LiveError]:
        try:
            from websockets.asyncio.client import connect
            from websockets.exceptions import InvalidStatus, WebSocketException
        except ImportError:
            raise _NoFeed("the websockets package is not installed") from None
        ws_url = "ws" + self.url.removeprefix("http") + "/api/v1/live"
        try:
            ws = await connect(ws_url, open_timeout=5)
        except InvalidStatus as e:
            raise _NoFeed(f"{e.response.status_code}") from None
        except (OSError, WebSocketException, TimeoutError) as e:
            yield LiveError(error=f"cannot reach {ws_url}: {e}")
            return
        async with ws:
            await ws.send(json.dumps({"token": self.token}))
            with contextlib.suppress(WebSocketException):
                async for message in ws:
                    snap = decode_live(message)
                    if isinstance(snap, LiveError):
                        raise ApiError(f"live feed: {snap.error}", 401, snap.error)
                    yield snap

    async def _poll(self) -> AsyncIterator[LiveSnapshot | LiveError]:
        # An appliance without the feed: rates from successive readings here, which are
        # coarser than the feed's (they follow the agents' reports only roughly).
        meter = RateMeter()
        loop = asyncio.get_running_loop()
        while True:
            try:
                agents = await self.get_as(list[Agent], AGENTS_PATH)
                groups = await self.get_as(list[Group], GROUPS_PATH)
            except ApiError as e:
                yield LiveError(error=str(e))
            else:
                rates = meter.rates({g.name: g.sent for g in groups}, loop.time())
                yield LiveSnapshot(
                    agents=[live_agent(a) for a in agents],
                    groups=[live_group(g, rates.get(g.name, 0.0)) for g in groups],
                )
            await asyncio.sleep(POLL_PERIOD_S)

    async def aclose(self) -> None:
        await self._http.aclose()


class _NoFeed(Exception):
    """The appliance has no live feed (an older version): poll instead."""


class RateMeter:
    """Per-second rates from successive counter readings (for the polling fallback)."""

    def __init__(self) -> None:
        self._last: tuple[float, dict[str, int]] | None = None

    def rates(self, totals: dict[str, int], now: float) -> dict[str, float]:
        last, self._last = self._last, (now, dict(totals))
        if last is None or now <= last[0]:
            return {k: 0.0 for k in totals}
        span = now - last[0]
        return {k: round(max(0, v - last[1].get(k, v)) / span, 1) for k, v in totals.items()}


def live_agent(a: Agent) -> LiveAgent:
    """An agent's REST document as the feed would have shown it (the polling fallback)."""
    return msgspec.convert(a, LiveAgent, from_attributes=True)


def live_group(g: Group, sent_per_s: float) -> LiveGroup:
    live = msgspec.convert(g, LiveGroup, from_attributes=True)
    live.sent_per_s = sent_per_s
    return live


def decode_live(message: str | bytes) -> LiveSnapshot | LiveError:
    raw = msgspec.json.decode(message)
    if isinstance(raw, dict) and "error" in raw:
        return LiveError(error=str(raw["error"]))
    return msgspec.convert(raw, LiveSnapshot)


def decode_as(kind: type[T], raw: Any, what: str) -> T:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as e:
        raise ApiError(f"{what}: unexpected answer from the appliance ({e})") from None


def _detail(r: httpx.Response) -> str:
    try:
        return msgspec.json.decode(r.content, type=ErrorBody).detail
    except msgspec.DecodeError:  # not the appliance's error body (a proxy's page, say)
        return r.text[:200]
