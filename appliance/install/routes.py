"""``GET /agent/install.sh`` and the wheelhouse at ``/agent/wheels/`` (public, read-only).

Public because a board has no token yet: what it downloads is the agent's code,
no secret. The one-time enrollment token is what admits a board.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import File

from appliance.errors import NotFound
from appliance.install import script, wheelhouse

_hashes: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (path.name, st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _hashes[key] = h.hexdigest()
    return _hashes[key]


def _index(out: Path) -> str:
    wheelhouse.ensure_native(out)
    links = "\n".join(
        f'<a href="/agent/wheels/{html.escape(name)}#sha256={_sha256(out / name)}">'
        f"{html.escape(name)}</a><br>"
        for name in wheelhouse.listing(out)
    )
    return (
        "<!DOCTYPE html>\n<html><head><title>mockmock agent wheelhouse</title></head>"
        f"<body>\n<h1>mockmock agent wheelhouse</h1>\n{links}\n</body></html>\n"
    )


def _origin(request: Request[Any, Any, Any]) -> str:
    host = request.headers.get("host", "")
    return f"{request.url.scheme}://{host}"


@get(
    "/agent/install.sh",
    opt={"public": True},
    media_type="text/plain; charset=utf-8",
    include_in_schema=False,  # a shell script and wheels for boards, not the JSON API
)
async def install_sh(request: Request[Any, Any, Any]) -> Response[str]:
    """The board installer (POSIX sh); the appliance URL defaults to where it came from."""
    text = await asyncio.to_thread(script.render, _origin(request))
    return Response(text, media_type="text/plain; charset=utf-8")


@get(
    ["/agent/wheels", "/agent/wheels/"],
    opt={"public": True},
    media_type="text/html",
    include_in_schema=False,
)
async def wheels_index(state: State) -> Response[str]:
    """The wheels (a ``--find-links`` page with sha256 fragments pip checks)."""
    out = wheelhouse.wheel_dir(state.settings.data_dir)
    return Response(await asyncio.to_thread(_index, out), media_type="text/html")


@get("/agent/wheels/{name:str}", opt={"public": True}, include_in_schema=False)
async def wheel_file(name: FromPath[str], state: State) -> File:
    out = wheelhouse.wheel_dir(state.settings.data_dir)
    await asyncio.to_thread(wheelhouse.ensure_native, out)
    # Only names the folder lists: no path of the caller's choosing is ever opened.
    if name not in await asyncio.to_thread(wheelhouse.listing, out):
        raise NotFound(f"no wheel named {name!r} here")
    return File(out / name, media_type="application/octet-stream", filename=name)


ROUTES = [install_sh, wheels_index, wheel_file]
