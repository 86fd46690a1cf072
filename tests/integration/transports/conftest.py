"""Fixtures of the transport tests: a test CA, a recording HTTP(S) server, helpers."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.template import parse_template
from tests.fixtures.ports import HOST, service_unavailable


def transport_of(kind: str, doc: dict[str, Any]) -> Any:
    """The parsed transport spec of a one-field template, as the engine gets it."""
    template = parse_template("t", {"transport": {kind: doc}, "payload": {"a": 1}})
    return getattr(template.transport, kind)


async def eventually(
    check: Callable[[], bool], timeout: float = 5.0, what: str | Callable[[], str] = ""
) -> None:
    """Poll ``check`` until true; fail with ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"not within {timeout}s: {said or check}")
        await asyncio.sleep(0.02)


# -- a test CA -------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA made for this session, a server cert for 127.0.0.1 and a client cert."""
    if shutil.which("openssl") is None:
        service_unavailable("openssl not found (Debian package 'openssl')")
    d = tmp_path_factory.mktemp("ca")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=mockmock test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d,
        )  # fmt: skip
    return Certs(
        d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key"
    )


# -- a recording HTTP server -------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class HttpTarget:
    """What arrived, in order. Paths starting /fail answer 500, /chunked a chunked
    body, /close close the connection after answering; anything else 200."""

    port: int
    tls: bool
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

    def received(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls
    target: HttpTarget

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.target.lock:
            self.target.requests.append(
                Request(self.command, self.path, dict(self.headers), body, self.client_address[1])
            )
        if self.path.startswith("/fail"):
            self._answer(500, b'{"error": "boom"}')
        elif self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n")
        elif self.path.startswith("/close"):
            self._answer(200, b"bye", close=True)
        else:
            self._answer(200, b'{"ok": true}')

    def _answer(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_PATCH = do_GET = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_target(certs: Certs) -> Iterator[Callable[..., HttpTarget]]:
    """A factory of HTTP(S) servers on 127.0.0.1 (threads), stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def factory(*, tls: bool = False) -> HttpTarget:
        target = HttpTarget(port=0, tls=tls)
        handler = type("Handler", (_Handler,), {"target": target})
        server = ThreadingHTTPServer((HOST, 0), handler)
        server.daemon_threads = True
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(certs.server_cert, certs.server_key)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        target.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return target

    yield factory
    for server in servers:
        server.shutdown()
        server.server_close()
