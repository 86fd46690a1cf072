"""MQTT over WebSocket (``ws://``, ``wss://``) for the gmqtt data plane.

gmqtt speaks MQTT over a TCP transport only. Here an asyncio transport carries
its bytes in WebSocket binary frames instead: the framing, the opening
handshake (subprotocol ``mqtt``), pings and the closing handshake are the
``websockets`` library's sans-I/O protocol; we only move bytes between it, the
TCP connection and gmqtt's MQTT protocol. Every ``write`` is one frame, so the
sender's one-write-per-pass batching of QoS 0 messages carries over.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

HANDSHAKE_TIMEOUT_S = 10.0
MAX_FRAME = 16 * 2**20  # what the broker may send in one frame


class WsTransport(asyncio.Transport):
    """What gmqtt and the sender see: write bytes, close, abort, buffer size."""

    def __init__(self, tcp: asyncio.Transport, ws: ClientProtocol) -> None:
        super().__init__()
        self._tcp = tcp
        self._ws = ws

    def _flush(self) -> None:
        for chunk in self._ws.data_to_send():
            if chunk:
                self._tcp.write(chunk)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._tcp.is_closing():
            return
        self._ws.send_binary(bytes(data))
        self._flush()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return self._tcp.is_closing()

    def close(self) -> None:
        if not self._tcp.is_closing():
            self._ws.send_close()
            self._flush()
            self._tcp.close()

    def abort(self) -> None:
        self._tcp.abort()

    def get_write_buffer_size(self) -> int:
        return self._tcp.get_write_buffer_size()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._tcp.get_extra_info(name, default)

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self._tcp.pause_reading()

    def resume_reading(self) -> None:
        self._tcp.resume_reading()

    def is_reading(self) -> bool:
        return self._tcp.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._tcp.set_write_buffer_limits(high, low)


class _TcpSide(asyncio.Protocol):
    """The TCP connection's protocol: handshake first, then frames to MQTT bytes."""

    def __init__(self, ws: ClientProtocol, inner: asyncio.Protocol) -> None:
        self.ws = ws
        self.inner = inner
        self.tcp: asyncio.Transport | None = None
        self.outer: WsTransport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.tcp = transport
        self.ws.send_request(self.ws.connect())
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)

    def data_received(self, data: bytes) -> None:
        ws, tcp = self.ws, self.tcp
        assert tcp is not None
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                if ws.handshake_exc is not None:
                    self._fail(ws.handshake_exc)
                    return
                self.outer = WsTransport(tcp, ws)
                if not self.opened.done():
                    self.opened.set_result(None)
                self.inner.connection_made(self.outer)
            elif isinstance(event, Frame) and event.opcode in (Opcode.BINARY, Opcode.CONT):
                self.inner.data_received(bytes(event.data))
        for chunk in ws.data_to_send():  # pongs, the answer to a close
            if chunk:
                tcp.write(chunk)
            elif not tcp.is_closing():
                tcp.close()  # an empty chunk: the closing handshake is done

    def _fail(self, exc: BaseException) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"websocket handshake: {exc}"))
        if self.tcp is not None:
            self.tcp.abort()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(
                ConnectionError(f"websocket closed during the handshake: {exc}")
            )
        elif self.outer is not None:
            self.inner.connection_lost(exc)


async def open_connection(
    protocol_factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    *,
    path: str,
    ssl: ssl_module.SSLContext | bool | None,
) -> tuple[WsTransport, asyncio.Protocol]:
    """Connect, upgrade to a WebSocket with subprotocol ``mqtt``, and hand gmqtt's
    protocol a transport whose writes are frames."""
    loop = asyncio.get_running_loop()
    scheme = "wss" if ssl else "ws"
    ws = ClientProtocol(
        parse_uri(f"{scheme}://{host}:{port}{path}"),
        subprotocols=[Subprotocol("mqtt")],
        max_size=MAX_FRAME,
    )
    inner = protocol_factory()
    side = _TcpSide(ws, inner)
    tcp, _ = await loop.create_connection(
        lambda: side, host, port, ssl=ssl or None, server_hostname=host if ssl else None
    )
    try:
        await asyncio.wait_for(asyncio.shield(side.opened), HANDSHAKE_TIMEOUT_S)
    except BaseException:
        tcp.abort()
        raise
    assert side.outer is not None
    return side.outer, inner
