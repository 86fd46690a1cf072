"""The HTTP(S) data plane against a real local HTTP server (http.server in a thread)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from agent.transports import open_sender
from agent.transports.http import HttpSender
from tests.fixtures.ports import HOST, free_port
from tests.integration.transports.conftest import Certs, HttpTarget, eventually, transport_of

pytestmark = pytest.mark.timeout(30)

Target = Callable[..., HttpTarget]


def http_spec(url: str, **extra: Any) -> Any:
    return transport_of("http", {"url": url, **extra})


async def test_method_headers_path_and_body_arrive(http_target: Target) -> None:
    target = http_target()
    spec = http_spec(
        target.url + "/devices/{device_id}/telemetry?src=mock",
        method="PUT",
        headers={"Authorization": "Bearer t0ken", "X-Device": "{device_id}"},
    )
    sender = HttpSender(spec, ["dev-a", "dev-b"])
    await sender.open()
    try:
        assert sender.send(0, "/devices/dev-a/telemetry?src=mock", b'{"t": 21.5}')
        assert sender.send(1, "/devices/dev-b/telemetry?src=mock", b'{"t": 22.0}')
        await eventually(lambda: sender.ok == 2, what=lambda: sender.last_error)
    finally:
        await sender.close()
    got = sorted(target.received(), key=lambda r: r.path)
    assert [(r.method, r.path, r.body) for r in got] == [
        ("PUT", "/devices/dev-a/telemetry?src=mock", b'{"t": 21.5}'),
        ("PUT", "/devices/dev-b/telemetry?src=mock", b'{"t": 22.0}'),
    ]
    assert [r.headers["X-Device"] for r in got] == ["dev-a", "dev-b"]
    assert {r.headers["Authorization"] for r in got} == {"Bearer t0ken"}
    assert got[0].headers["Content-Type"] == "application/json"
    assert got[0].headers["Host"] == f"{HOST}:{target.port}"
    assert sender.errors == 0 and sender.statuses == {200: 2}


async def test_keep_alive_reuses_one_connection(http_target: Target) -> None:
    target = http_target()
    sender = HttpSender(http_spec(target.url + "/ingest", connections=1), ["d"])
    await sender.open()
    try:
        for i in range(50):
            assert sender.send(0, "/ingest", json.dumps({"i": i}).encode())
        await eventually(lambda: sender.ok == 50, what=lambda: f"{sender.ok} ok")
    finally:
        await sender.close()
    got = target.received()
    assert [json.loads(r.body)["i"] for r in got] == list(range(50)), "one connection, in order"
    assert len({r.client_port for r in got}) == 1
    assert sender.connections_opened == 1


async def test_pool_size_bounds_the_connections(http_target: Target) -> None:
    target = http_target()
    sender = HttpSender(http_spec(target.url + "/ingest", connections=4), ["d"] * 8)
    await sender.open()
    try:
        for i in range(200):
            assert sender.send(i % 8, "/ingest", b"{}")
        await eventually(lambda: sender.ok == 200, what=lambda: f"{sender.ok} ok")
    finally:
        await sender.close()
    assert 1 <= len({r.client_port for r in target.received()}) <= 4
    assert sender.connections_opened <= 4


async def test_a_500_is_counted_as_an_error(http_target: Target) -> None:
    target = http_target()
    sender = HttpSender(http_spec(target.url + "/fail", connections=1), ["d"])
    await sender.open()
    try:
        for _ in range(3):
            assert sender.send(0, "/fail", b"{}"), "accepted: the answer comes later"
        assert sender.send(0, "/ok", b"{}")
        await eventually(lambda: sender.errors + sender.ok == 4)
    finally:
        await sender.close()
    assert (sender.errors, sender.ok) == (3, 1)
    assert sender.statuses == {500: 3, 200: 1}
    assert "HTTP 500" in sender.last_error
    assert len({r.client_port for r in target.received()}) == 1, "a 500 keeps the connection"


async def test_chunked_answers_and_connection_close_are_read_correctly(
    http_target: Target,
) -> None:
    target = http_target()
    sender = HttpSender(http_spec(target.url + "/", connections=1), ["d"])
    await sender.open()
    try:
        for path in ("/chunked", "/close", "/chunked", "/x"):
            assert sender.send(0, path, b"{}")
        await eventually(lambda: sender.ok == 4, what=lambda: sender.last_error)
    finally:
        await sender.close()
    assert sender.errors == 0
    assert sender.connections_opened == 2, "a new connection only after Connection: close"


async def test_unreachable_target_is_counted_not_raised() -> None:
    port = free_port()
    sender = HttpSender(http_spec(f"http://{HOST}:{port}/x"), ["d"])
    await sender.open()
    try:
        assert sender.send(0, "/x", b"{}")
        await eventually(lambda: sender.errors == 1)
        assert "Connect" in sender.last_error or "refused" in sender.last_error
    finally:
        await sender.close()


async def test_a_slow_target_times_out(http_target: Target) -> None:
    # A listener that accepts and never answers.
    server = await asyncio.start_server(lambda r, w: None, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    sender = HttpSender(http_spec(f"http://{HOST}:{port}/x", timeout="300ms"), ["d"])
    await sender.open()
    try:
        assert sender.send(0, "/x", b"{}")
        await eventually(lambda: sender.errors == 1)
        assert "no answer within 0.3s" in sender.last_error
    finally:
        await sender.close()
        server.close()


async def test_dropped_device_is_quiet_until_reconnect(http_target: Target) -> None:
    target = http_target()
    sender = HttpSender(http_spec(target.url + "/x"), ["a", "b"])
    await sender.open()
    try:
        sender.drop(0)
        assert not sender.is_connected(0) and sender.is_connected(1)
        assert not sender.send(0, "/x", b"{}")
        assert await sender.reconnect(0)
        assert sender.send(0, "/x", b"{}")
        await eventually(lambda: sender.ok == 1)
    finally:
        await sender.close()


async def test_https_verifies_the_server(http_target: Target, certs: Certs) -> None:
    target = http_target(tls=True)
    trusted = HttpSender(http_spec(target.url + "/x", ca=certs.ca.read_text()), ["d"])
    untrusted = HttpSender(http_spec(target.url + "/x"), ["d"])  # system CAs only
    await trusted.open()
    await untrusted.open()
    try:
        assert trusted.send(0, "/x", b'{"over": "tls"}')
        assert untrusted.send(0, "/x", b'{"over": "tls"}')
        await eventually(lambda: trusted.ok == 1 and untrusted.errors == 1)
    finally:
        await trusted.close()
        await untrusted.close()
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error
    assert [r.body for r in target.received()] == [b'{"over": "tls"}']


async def test_open_sender_builds_the_http_transport(http_target: Target) -> None:
    target = http_target()
    template_transport = type("T", (), {"mqtt": None, "http": http_spec(target.url + "/x")})
    sender = open_sender(template_transport, ["d"])
    assert isinstance(sender, HttpSender)
