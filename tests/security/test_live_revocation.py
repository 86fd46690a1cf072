"""Live feed after revocation: an open feed closes (4401) once its token or user is gone.

The feed pushes a snapshot each second; after the revocation it may send what was
already on its way, then must close within a few snapshots (bounded here by count).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.exceptions import WebSocketDisconnect

from tests.integration.control.conftest import Api, running_api

pytestmark = pytest.mark.timeout(60)
MOST_SNAPSHOTS_AFTER = 4
"""The feed re-checks before every snapshot (1 s); 4 allows for one in flight and slack."""


@pytest.fixture
def api(appliance_db: str, mosquitto, tmp_path: Path) -> Iterator[Api]:
    with running_api(appliance_db, mosquitto.url, tmp_path / "data") as running:
        yield running


def closes_unauthorized(ws) -> dict:
    """Read until the feed closes; its last message is the error it closed with."""
    last: dict = {}
    for _ in range(MOST_SNAPSHOTS_AFTER + 1):
        try:
            last = ws.receive_json(timeout=5)
        except WebSocketDisconnect as e:
            assert e.code == 4401
            return last
    raise AssertionError(f"still streaming {MOST_SNAPSHOTS_AFTER} snapshots later: {last}")


@pytest.mark.parametrize("how", ["token revoked", "user deleted"])
def test_an_open_feed_closes_when_its_token_dies(api: Api, how: str) -> None:
    watcher = api.call("POST", "/api/v1/users", json={"name": "watcher", "role": "viewer"}).json()
    token_id = next(
        t["id"] for t in api.call("GET", "/api/v1/tokens").json() if t["user_id"] == watcher["id"]
    )
    with api.client.websocket_connect(f"/api/v1/live?token={watcher['token']}") as ws:
        assert "totals" in ws.receive_json(timeout=5)
        if how == "token revoked":
            assert api.call("DELETE", f"/api/v1/tokens/{token_id}").status_code == 200
        else:
            assert api.call("DELETE", f"/api/v1/users/{watcher['id']}").status_code == 200
        last = closes_unauthorized(ws)
    assert "error" in last and ("revoked" in last["error"] or "deleted" in last["error"])
