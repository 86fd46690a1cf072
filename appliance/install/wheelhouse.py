"""The agent wheelhouse served at ``/agent/wheels/``: everything a board installs, offline.

Boards in air-gapped labs cannot reach a package registry, so the appliance
carries the agent and its dependencies as wheels:

- the **agent wheel** (``mockmock-agent``) is built here from the ``agent``
  package the appliance itself runs, with the project's base requirements (the
  agent's: no Litestar, peewee, Textual or Stripe). It is built from the
  installed package rather than by a build backend because a production
  appliance is itself installed from a wheel and has no source tree to build
  from; the wheel format (PEP 427) is a zip with three metadata files.
- the **dependencies' wheels for the appliance's own platform** are repacked
  from the distributions installed next to the appliance (they are the same
  files the registry's wheels held; the ``WHEEL`` metadata keeps the original
  tags). Nothing here touches the network.
- wheels for other platforms (Raspberry Pi OS 64- and 32-bit) are fetched once,
  at appliance install time, by ``mockmock agent-bundle --platform ...``
  (:mod:`appliance.install.bundle`).

pip on the board picks the wheels matching its own tags from the one flat folder.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import os
import threading
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

log = logging.getLogger(__name__)

PROJECT = "mockmock"
AGENT_DIST = "mockmock-agent"
AGENT_PACKAGE = "agent"
AGENT_SCRIPT = "mockmock-agent = agent.cli:main"
MARKER_FILE = ".native.json"
# Zip entries get a fixed time so the same sources give the same wheel (and hash).
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# What an installer adds to a dist-info folder; not part of the wheel it came from.
INSTALLER_FILES = frozenset({"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"})


class WheelhouseError(Exception):
    """The wheelhouse cannot be completed from what this machine has."""


def wheel_dir(data_dir: Path) -> Path:
    return data_dir / "wheels"


def agent_version() -> str:
    from agent import __version__

    return __version__


def base_requirements() -> list[Requirement]:
    """The project's requirements without an extra: what the agent needs."""
    out = []
    for line in metadata.requires(PROJECT) or []:
        req = Requirement(line)
        if req.marker is None or "extra" not in str(req.marker):
            out.append(req)
    return out


# ---- writing wheels ------------------------------------------------------------


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


@dataclass
class _WheelWriter:
    """Collects (archive path, bytes, mode) and writes a wheel with its RECORD."""

    dist_info: str
    entries: list[tuple[str, bytes, int]] = field(default_factory=list)

    def add(self, arcname: str, data: bytes, mode: int = 0o644) -> None:
        self.entries.append((arcname, data, mode))

    def write(self, path: Path) -> Path:
        record = io.StringIO()
        for name, data, _ in self.entries:
            record.write(f"{name},{_record_hash(data)},{len(data)}\n")
        record.write(f"{self.dist_info}/RECORD,,\n")
        entries = [*self.entries, (f"{self.dist_info}/RECORD", record.getvalue().encode(), 0o644)]
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data, mode in entries:
                info = zipfile.ZipInfo(name, ZIP_TIME)
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
        os.replace(tmp, path)
        return path


def _package_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield path


def agent_digest() -> str:
    """A digest of the agent's sources: a rebuilt wheel when they change (dev installs)."""
    import agent

    root = Path(agent.__file__).parent
    h = hashlib.sha256()
    for path in _package_files(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def agent_wheel_name(version: str | None = None) -> str:
    name = canonicalize_name(AGENT_DIST).replace("-", "_")
    return f"{name}-{Version(version or agent_version())}-py3-none-any.whl"


def build_agent_wheel(out: Path) -> Path:
    """Write the ``mockmock-agent`` wheel (the ``agent`` package alone) into ``out``."""
    import agent

    version = agent_version()
    root = Path(agent.__file__).parent
    dist_info = f"{canonicalize_name(AGENT_DIST).replace('-', '_')}-{version}.dist-info"
    w = _WheelWriter(dist_info)
    for path in _package_files(root):
        arc = f"{AGENT_PACKAGE}/{path.relative_to(root).as_posix()}"
        w.add(arc, path.read_bytes())
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {AGENT_DIST}",
        f"Version: {version}",
        "Summary: mockmock agent: runs mock IoT devices for a mockmock appliance",
        "Requires-Python: >=3.11",
        *(f"Requires-Dist: {req}" for req in base_requirements()),
    ]
    w.add(f"{dist_info}/METADATA", ("\n".join(meta) + "\n").encode())
    wheel_meta = "Wheel-Version: 1.0\nGenerator: mockmock\nRoot-Is-Purelib: true\n"
    w.add(f"{dist_info}/WHEEL", (wheel_meta + "Tag: py3-none-any\n").encode())
    w.add(f"{dist_info}/entry_points.txt", f"[console_scripts]\n{AGENT_SCRIPT}\n".encode())
    out.mkdir(parents=True, exist_ok=True)
    return w.write(out / agent_wheel_name(version))


def _tags(wheel_text: str) -> str:
    """``py-abi-platform`` of a wheel file name, from the ``Tag:`` lines of its WHEEL."""
    parts: list[list[str]] = [[], [], []]
    for line in wheel_text.splitlines():
        if line.startswith("Tag:"):
            for i, piece in enumerate(line.split(":", 1)[1].strip().split("-")):
                if piece not in parts[i]:
                    parts[i].append(piece)
    if not all(parts):
        raise WheelhouseError("no Tag: line in its WHEEL file")
    return "-".join(".".join(p) for p in parts)


def _dist_info_name(dist: metadata.Distribution) -> str:
    for f in dist.files or ():
        if f.parts and f.parts[0].endswith(".dist-info"):
            return f.parts[0]
    raise WheelhouseError("no .dist-info folder in its RECORD")


def repack(dist: metadata.Distribution, out: Path) -> Path:
    """Write an installed distribution back into the wheel it was installed from."""
    name = dist.metadata["Name"]
    if not dist.files:
        raise WheelhouseError(f"{name}: installed without a RECORD (editable or by hand)")
    dist_info = _dist_info_name(dist)
    wheel_text = (dist.read_text("WHEEL") or "").strip()
    if not wheel_text:
        raise WheelhouseError(f"{name}: no WHEEL metadata (not installed from a wheel)")
    launchers = ("console_scripts", "gui_scripts")
    scripts = {ep.name for ep in dist.entry_points if ep.group in launchers}
    data_dir = f"{dist_info[: -len('.dist-info')]}.data"
    w = _WheelWriter(dist_info)
    for rel in dist.files:
        posix = PurePosixPath(rel.as_posix())
        if "__pycache__" in posix.parts or posix.suffix == ".pyc":
            continue
        if posix.parts[0] == dist_info and posix.name in INSTALLER_FILES:
            continue
        if posix.parts[0] == dist_info and posix.name.startswith("uv_"):
            continue
        src = Path(str(dist.locate_file(rel)))
        if ".." in posix.parts:
            # Installed outside site-packages: console scripts are regenerated by the
            # installer from entry_points.txt; other scripts travel in .data/scripts.
            if posix.parent.name == "bin" and posix.name not in scripts:
                w.add(f"{data_dir}/scripts/{posix.name}", src.read_bytes(), 0o755)
            continue
        w.add(posix.as_posix(), src.read_bytes(), 0o755 if os.access(src, os.X_OK) else 0o644)
    fname = f"{canonicalize_name(name).replace('-', '_')}-{dist.version}-{_tags(wheel_text)}.whl"
    out.mkdir(parents=True, exist_ok=True)
    return w.write(out / fname)


# ---- the dependency closure ----------------------------------------------------------


def _environment() -> dict[str, str]:
    return {**default_environment(), "extra": ""}


def closure(reqs: Iterable[Requirement]) -> tuple[list[metadata.Distribution], list[str]]:
    """Installed distributions satisfying ``reqs`` and what they need, and what is missing."""
    env = _environment()
    found: dict[str, metadata.Distribution] = {}
    missing: list[str] = []
    todo = list(reqs)
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        key = canonicalize_name(req.name)
        if key in found:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            missing.append(str(req))
            continue
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            log.warning("agent wheelhouse: %s wanted, %s installed here", req, dist.version)
            missing.append(str(req))
            continue
        found[key] = dist
        todo.extend(Requirement(line) for line in dist.requires or [])
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"])), missing


# ---- the native wheelhouse -------------------------------------------------------------

_lock = threading.Lock()


@dataclass(frozen=True)
class Native:
    """What the native build left in the wheelhouse."""

    files: list[str]
    missing: list[str]


def ensure_native(out: Path) -> Native:
    """Build (once, or after an upgrade) the agent wheel and this platform's dependencies.

    Cheap when nothing changed: a marker file records the agent's version and the
    digest of its sources. Thread-safe; the first request waits for the build.
    """
    with _lock:
        want = {"version": agent_version(), "agent_digest": agent_digest()}
        marker = out / MARKER_FILE
        try:
            have = json.loads(marker.read_text())
        except (OSError, ValueError):
            have = {}
        if {k: have.get(k) for k in want} == want and all(
            (out / f).is_file() for f in have.get("files", [])
        ):
            return Native(files=list(have["files"]), missing=list(have.get("missing", [])))
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob(f"{canonicalize_name(AGENT_DIST).replace('-', '_')}-*.whl"):
            old.unlink()
        files = [build_agent_wheel(out).name]
        dists, missing = closure(base_requirements())
        for dist in dists:
            try:
                files.append(repack(dist, out).name)
            except (WheelhouseError, OSError) as e:
                log.warning("agent wheelhouse: cannot repack %s: %s", dist.metadata["Name"], e)
                missing.append(f"{dist.metadata['Name']}=={dist.version}")
        for m in missing:
            log.warning(
                "agent wheelhouse: no wheel for %s on this machine; boards need it "
                "(run `mockmock agent-bundle` once with network access)",
                m,
            )
        marker.write_text(json.dumps({**want, "files": files, "missing": missing}, indent=1))
        return Native(files=files, missing=missing)


def forget_missing(out: Path) -> None:
    """Clear the list of missing wheels (after ``agent-bundle`` downloaded them)."""
    with _lock:
        marker = out / MARKER_FILE
        with contextlib.suppress(OSError, ValueError):
            marker.write_text(json.dumps({**json.loads(marker.read_text()), "missing": []}))


def listing(out: Path) -> list[str]:
    """Every wheel in the wheelhouse (native and fetched for other platforms)."""
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir() if p.suffix == ".whl" and p.is_file())
