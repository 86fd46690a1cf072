"""HTTP(S) data plane: each message is one request, body = payload.

Plain asyncio streams, no HTTP library: the agent must stay light on a board,
and a mock only needs HTTP/1.1 requests with ``Content-Length`` over a small
pool of keep-alive connections. ``spec.connections`` workers each own one
connection and one request in flight, so that number bounds both the sockets
and the concurrency the target sees.

``send`` only queues (the engine's loop must never wait on the network). A
request that fails later — a status >= 400, a refused connection, a timeout —
cannot make ``send`` return False after the fact; it is counted in
:attr:`HttpSender.errors` (with :attr:`HttpSender.last_error` and a count per
status in :attr:`HttpSender.statuses`) and the engine adds that count to its
own errors. ``send`` returns False only when the device is dropped or the
queue is full (the target is slower than the devices).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections import deque
from typing import Any

from agent import __version__
from agent.tls import client_context
from agent.transports.base import SenderOptions
from agent.wire import Histogram

log = logging.getLogger(__name__)

QUEUE_PER_CONNECTION = 256  # queued requests per pooled connection before send() refuses
MAX_HEAD = 64 * 1024  # response status line + headers
MAX_BODY = 16 * 1024 * 1024
BACKOFF_MAX_S = 2.0


class _HttpError(Exception):
    """The response could not be read as HTTP/1.x."""


class _Conn:
    __slots__ = ("reader", "uses", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.uses = 0


class HttpSender:
    """Requests for a list of devices through one keep-alive pool."""

    def __init__(
        self, spec: Any, device_ids: list[str], options: SenderOptions | None = None
    ) -> None:
        self.spec = spec
        self.options = options or SenderOptions()
        self.device_ids = device_ids
        self.last_error = ""
        self.errors = 0  # failed requests: status >= 400, connection errors, timeouts
        self.ok = 0  # answered with a status < 400
        self.statuses: dict[int, int] = {}
        self.latency = Histogram()  # request round trip, microseconds
        self.connections_opened = 0
        self._down: set[int] = set()
        self._queue: deque[tuple[int, str, bytes]] = deque()
        self._limit = QUEUE_PER_CONNECTION * spec.connections
        self._wakeup: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._closing = False
        self._timeout = spec.timeout_ms / 1000
        self._ssl: ssl.SSLContext | None = _ssl_context(spec) if spec.tls else None
        self._body = spec.method != "GET"
        default_port = 443 if spec.tls else 80
        host = spec.host if ":" not in spec.host else f"[{spec.host}]"
        host_header = host if spec.port == default_port else f"{host}:{spec.port}"
        names = {k.lower() for k in spec.headers}
        fixed = []
        if "host" not in names:
            fixed.append(f"Host: {host_header}")
        if "user-agent" not in names:
            fixed.append(f"User-Agent: mockmock-agent/{__version__}")
        if "content-type" not in names and self._body:
            fixed.append("Content-Type: application/json")
        static = [f"{k}: {v}" for k, v in spec.headers.items() if "{" not in v]
        per_device = [(k, v) for k, v in spec.headers.items() if "{" in v]
        base = "".join(f"{h}\r\n" for h in fixed + static).encode()
        # Headers that hold {device_id} are expanded once per device, not per request.
        if per_device:
            self._headers: list[bytes] | None = [
                base + "".join(f"{k}: {v.format(device_id=d)}\r\n" for k, v in per_device).encode()
                for d in device_ids
            ]
            self._base = b""
        else:
            self._headers = None
            self._base = base
        self._method = spec.method.encode()

    # -- the Sender interface ------------------------------------------------

    async def open(self) -> None:
        self._wakeup = asyncio.Event()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"http-{i}")
            for i in range(self.spec.connections)
        ]

    def send(self, slot: int, topic: str, payload: bytes, *, qos: int | None = None) -> bool:
        if slot in self._down:
            self.last_error = "not connected"
            return False
        if len(self._queue) >= self._limit:
            self.last_error = f"{len(self._queue)} requests queued: the target is too slow"
            return False
        self._queue.append((slot, topic or self.spec.path, payload))
        if self._wakeup is not None:
            self._wakeup.set()
        return True

    def is_connected(self, slot: int) -> bool:
        return slot not in self._down

    def drop(self, slot: int) -> None:
        # HTTP has no session and no will: a dropped device just goes quiet.
        self._down.add(slot)

    async def reconnect(self, slot: int) -> bool:
        self._down.discard(slot)
        return True

    async def close(self) -> None:
        """Finish what is queued (bounded by the timeout), then close the pool."""
        deadline = time.monotonic() + self._timeout
        while (
            self._queue and time.monotonic() < deadline and any(not w.done() for w in self._workers)
        ):
            await asyncio.sleep(0.01)
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._queue.clear()

    # -- the pool --------------------------------------------------------------

    async def _worker(self) -> None:
        conn: _Conn | None = None
        failures = 0
        wakeup = self._wakeup
        assert wakeup is not None
        try:
            while not self._closing:
                if not self._queue:
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                slot, path, payload = self._queue.popleft()
                conn, ok = await self._request(conn, slot, path, payload)
                if ok:
                    failures = 0
                    continue
                failures += 1
                if conn is None:  # the target is unreachable: don't spin
                    await asyncio.sleep(
                        min(BACKOFF_MAX_S, 0.05 * 2**failures) * random.uniform(0.5, 1.5)
                    )
        finally:
            if conn is not None:
                _close(conn)

    async def _request(
        self, conn: _Conn | None, slot: int, path: str, payload: bytes
    ) -> tuple[_Conn | None, bool]:
        """One request, retried once on a fresh connection when a reused one was
        closed by the server before answering. Returns (connection to keep, ok)."""
        headers = self._base if self._headers is None else self._headers[slot]
        body = payload if self._body else b""
        head = b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n" % (
            self._method,
            path.encode(),
            headers,
            len(body),
        )
        request = head + body
        for attempt in (0, 1):
            reused = conn is not None
            start = time.perf_counter()
            try:
                async with asyncio.timeout(self._timeout):
                    if conn is None:
                        conn = await self._open_connection()
                    conn.writer.write(request)
                    await conn.writer.drain()
                    status, keep = await _read_response(conn.reader)
            except TimeoutError:  # before OSError, of which it is a subclass
                if conn is not None:
                    _close(conn)
                return None, self._failed(f"no answer within {self._timeout:g}s")
            except (OSError, EOFError, _HttpError) as e:
                if conn is not None:
                    _close(conn)
                    conn = None
                if reused and attempt == 0 and not isinstance(e, _HttpError):
                    continue  # a stale keep-alive connection: once more on a new one
                return None, self._failed(f"{type(e).__name__}: {e}" if str(e) else repr(e))
            self.latency.add(int((time.perf_counter() - start) * 1_000_000))
            conn.uses += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if not keep:
                _close(conn)
                conn = None
            if status >= 400:
                return conn, self._failed(f"HTTP {status} from {self.spec.method} {path}")
            self.ok += 1
            return conn, True
        return None, False  # unreachable: the loop always returns

    def _failed(self, message: str) -> bool:
        self.errors += 1
        self.last_error = message
        return False

    async def _open_connection(self) -> _Conn:
        reader, writer = await asyncio.open_connection(
            self.spec.host,
            self.spec.port,
            ssl=self._ssl,
            server_hostname=self.spec.host if self._ssl else None,
            limit=MAX_HEAD,
        )
        self.connections_opened += 1
        return _Conn(reader, writer)


def _ssl_context(spec: Any) -> ssl.SSLContext:
    """Verification on by default; ``ca`` (PEM) for a private CA, ``insecure`` to skip it."""
    return client_context(spec)


def _close(conn: _Conn) -> None:
    with contextlib.suppress(OSError, RuntimeError):
        conn.writer.transport.abort()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response, discarding its body; (status, keep the connection)."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise _HttpError("response headers too large") from None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise _HttpError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        try:
            status = int(parts[1])
        except ValueError:
            raise _HttpError(f"bad status line: {lines[0][:80]!r}") from None
        if 100 <= status < 200:  # interim (100 Continue): the real answer follows
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip().lower()
        break
    keep = parts[0] == "HTTP/1.1"
    connection = headers.get("connection", "")
    if "close" in connection:
        keep = False
    elif "keep-alive" in connection:
        keep = True
    if status in (204, 304):
        return status, keep
    if "chunked" in headers.get("transfer-encoding", ""):
        await _skip_chunked(reader)
        return status, keep
    length = headers.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise _HttpError(f"bad Content-Length {length!r}") from None
        if not 0 <= n <= MAX_BODY:
            raise _HttpError(f"Content-Length {n} out of range")
        await reader.readexactly(n)
        return status, keep
    # No length: the body ends when the server closes the connection.
    while await reader.read(65536):
        pass
    return status, False


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _HttpError(f"bad chunk size {line[:20]!r}") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return
        total += size
        if total > MAX_BODY:
            raise _HttpError("response body too large")
        await reader.readexactly(size + 2)
