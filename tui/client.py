"""The only place the TUI talks to the appliance (HTTP API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    pass


class ApplianceClient:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

    @classmethod
    def from_token_file(cls, url: str, token_file: Path) -> ApplianceClient:
        try:
            token = token_file.read_text().strip()
        except OSError as e:
            raise ApiError(f"--token-file: {token_file}: {e.strerror}") from None
        return cls(url, token)

    async def get(self, path: str) -> Any:
        try:
            r = await self._http.get(path)
        except httpx.HTTPError as e:
            raise ApiError(f"cannot reach {self.url}: {e}") from None
        if r.status_code >= 400:
            raise ApiError(f"GET {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    async def aclose(self) -> None:
        await self._http.aclose()
