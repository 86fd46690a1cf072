"""``mockmock agent-bundle``: wheels for boards of another platform, fetched once.

Run at appliance install time, where the network is reachable once (the registry,
a mirror, or a folder of wheels): ``pip download --only-binary=:all:`` for the
board's platform and Python. Afterwards the appliance serves them with no network.

Raspberry Pi OS (bookworm) has glibc 2.36 and Python 3.11; its 64-bit boards take
manylinux aarch64 wheels, its 32-bit boards armv7l wheels (which the registry
offers for few packages: point ``--extra-index-url`` at an index that builds them,
such as the one Raspberry Pi OS's own pip is configured with).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.install import wheelhouse

GLIBC_MINORS = range(17, 37)
"""manylinux_2_17 (manylinux2014) up to the glibc of Debian/Raspberry Pi OS bookworm."""


def platform_tags(platform: str) -> list[str]:
    """The wheel platform tags a board of ``platform`` (linux_<machine>) accepts."""
    machine = platform.removeprefix("linux_")
    tags = [f"manylinux_2_{m}_{machine}" for m in reversed(GLIBC_MINORS)]
    tags += [f"manylinux2014_{machine}", platform]
    return tags


PLATFORMS = ("native", "linux_aarch64", "linux_armv7l", "linux_x86_64")


class BundleError(Exception):
    """One line for the operator (exit non-zero)."""


@dataclass(frozen=True)
class Source:
    """Where pip may look (passed through): an index, extra indexes, folders of wheels."""

    index_url: str | None = None
    extra_index_urls: Sequence[str] = ()
    find_links: Sequence[str] = ()
    no_index: bool = False

    def args(self) -> list[str]:
        out: list[str] = []
        if self.index_url:
            out += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            out += ["--extra-index-url", url]
        for link in self.find_links:
            out += ["--find-links", link]
        if self.no_index:
            out.append("--no-index")
        return out


def pip_command() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise BundleError(
        "pip is needed once to fetch wheels (e.g. apt install python3-pip), or copy the "
        "wheels into the wheelhouse folder by hand"
    )


def download(
    requirements: Sequence[str],
    dest: Path,
    *,
    platform: str | None,
    python_version: str,
    source: Source,
    timeout: float = 900,
) -> None:
    cmd = [*pip_command(), "download", "--disable-pip-version-check", "--dest", str(dest)]
    cmd += ["--only-binary=:all:", *source.args()]
    if platform is not None:
        digits = python_version.replace(".", "")
        for tag in platform_tags(platform):
            cmd += ["--platform", tag]
        cmd += ["--python-version", python_version, "--implementation", "cp"]
        cmd += ["--abi", f"cp{digits}", "--abi", "abi3", "--abi", "none"]
    cmd += list(requirements)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BundleError(f"pip download did not finish in {timeout:.0f}s") from None
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if "ERROR" in ln), lines[-1] if lines else "")
        raise BundleError(f"pip download for {platform or 'this platform'} failed: {why.strip()}")


def bundle(
    data_dir: Path, platform: str, *, python_version: str, source: Source
) -> tuple[list[str], list[str]]:
    """Fill the wheelhouse for ``platform``; (wheels now there, notes for the operator)."""
    if platform not in PLATFORMS:
        raise BundleError(f"--platform: {platform!r} is not one of {', '.join(PLATFORMS)}")
    out = wheelhouse.wheel_dir(data_dir)
    before = set(wheelhouse.listing(out))
    native = wheelhouse.ensure_native(out)
    notes: list[str] = []
    if platform == "native":
        if native.missing:
            download(native.missing, out, platform=None, python_version="", source=source)
            wheelhouse.forget_missing(out)
        else:
            notes.append("every wheel came from this machine's own environment (no download)")
    else:
        reqs = [str(r) for r in wheelhouse.base_requirements()]
        download(reqs, out, platform=platform, python_version=python_version, source=source)
    added = sorted(set(wheelhouse.listing(out)) - before)
    return added, notes
