"""The agent wheelhouse: built offline for this platform, fetched for others by pip.

Real aarch64/armv7l wheels would need the network, which tests never use; the
"other platform" here is a folder of wheels renamed to aarch64 tags (pip download
selects by file name), so what is tested is the selection and the plumbing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from appliance.install import bundle, wheelhouse
from tests.fixtures.ports import service_unavailable


def mockmock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.command", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_native_wheelhouse_is_complete_and_agent_only(tmp_path: Path) -> None:
    out = tmp_path / "wheels"
    native = wheelhouse.ensure_native(out)
    assert native.missing == []
    names = wheelhouse.listing(out)
    assert names == sorted(native.files)
    projects = {n.split("-", 1)[0] for n in names}
    assert {"mockmock_agent", "aiomqtt", "paho_mqtt", "gmqtt", "msgspec", "orjson"} <= projects
    assert not projects & {"litestar", "peewee", "textual", "stripe", "uvicorn"}
    agent = out / wheelhouse.agent_wheel_name()
    with zipfile.ZipFile(agent) as zf:
        files = zf.namelist()
        meta = zf.read(next(f for f in files if f.endswith(".dist-info/METADATA"))).decode()
        record = zf.read(next(f for f in files if f.endswith(".dist-info/RECORD"))).decode()
    assert all(f.startswith(("agent/", "mockmock_agent-")) for f in files)
    assert "agent/cli.py" in files and not any("__pycache__" in f for f in files)
    assert "Requires-Dist: aiomqtt==2.5.1" in meta and "litestar" not in meta
    assert all(line.split(",")[0] in files for line in record.splitlines())
    # Built again from the same sources: the same bytes (a stable sha256 for pip).
    first = agent.read_bytes()
    wheelhouse.build_agent_wheel(tmp_path / "again")
    assert (tmp_path / "again" / agent.name).read_bytes() == first


def test_agent_bundle_fetches_another_platform_with_only_binary(tmp_path: Path) -> None:
    try:
        bundle.pip_command()
    except bundle.BundleError as e:
        service_unavailable(str(e))
    native = tmp_path / "native"
    wheelhouse.ensure_native(native)
    # A "registry" folder holding the aarch64 flavour of every compiled dependency.
    registry = tmp_path / "registry"
    registry.mkdir()
    compiled = []
    for name in wheelhouse.listing(native):
        project, version, *_ = name.split("-")
        if name.endswith("-none-any.whl"):
            shutil.copy(native / name, registry / name)
        else:
            compiled.append(project)
            aarch64 = f"{project}-{version}-cp311-cp311-manylinux_2_17_aarch64.whl"
            shutil.copy(native / name, registry / aarch64)
    assert compiled  # msgspec, orjson, pyyaml
    data = tmp_path / "appliance"
    done = mockmock(
        "agent-bundle", "--platform", "linux_aarch64", "--data-dir", str(data),
        "--no-index", "--find-links", str(registry),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    have = wheelhouse.listing(wheelhouse.wheel_dir(data))
    for project in compiled:
        assert any(n.startswith(f"{project}-") and "aarch64" in n for n in have), project
        assert any(n.startswith(f"{project}-") and "x86_64" in n for n in have), project

    # armv7l finds no wheel in that folder: one line naming what is missing, exit 3.
    done = mockmock(
        "agent-bundle", "--platform", "linux_armv7l", "--data-dir", str(data),
        "--no-index", "--find-links", str(registry),
    )  # fmt: skip
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "linux_armv7l failed" in lines[0], done.stderr
    assert "No matching distribution" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--platform", "windows"), "--platform"),
        (("--platform", "linux_aarch64", "--python-version", "three"), "--python-version"),
    ],
)
def test_agent_bundle_bad_options_are_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = mockmock("agent-bundle", "--data-dir", str(tmp_path / "d"), *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
