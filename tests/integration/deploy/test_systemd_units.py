"""The systemd units in deploy/systemd/ pass `systemd-analyze verify`, sandboxed.

`systemd-analyze` comes with Debian's `systemd` package (it needs no running
systemd); the test is skipped only where the command is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.install import script

UNITS = Path(__file__).resolve().parents[3] / "deploy" / "systemd"
BIN = Path(sys.executable).parent
# Where the units expect the installed commands, and where this checkout has them.
INSTALLED = {
    "/opt/mockmock/bin/mockmock": BIN / "mockmock",
    "/opt/mockmock-agent/bin/mockmock-agent": BIN / "mockmock-agent",
}


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".path"))


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd')")
    copies = []
    for unit in unit_files():
        text = unit.read_text()
        for installed, here in INSTALLED.items():
            text = text.replace(installed, str(here))
        copy = tmp_path / unit.name
        copy.write_text(text)
        copies.append(str(copy))
    assert len(copies) == 4
    done = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=120)
    # Warnings (an unknown key, a bad value) leave the exit code 0: none may appear.
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


@pytest.mark.parametrize("name", ["mockmock.service", "mockmock-agent.service"])
def test_services_run_sandboxed_as_their_own_user(name: str) -> None:
    lines = set((UNITS / name).read_text().splitlines())
    for want in (
        "User=mockmock",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "UMask=0077",
        "StateDirectoryMode=0700",
        "RestartPreventExitStatus=2",
    ):
        assert want in lines, (name, want)
    assert any(ln.startswith("EnvironmentFile=") for ln in lines)
    assert any(ln.startswith("StateDirectory=mockmock") for ln in lines)
    assert any(ln.startswith("Restart=") for ln in lines)


def test_install_sh_installs_the_agent_unit_of_deploy() -> None:
    served = script.render("http://lab:8383")
    assert (UNITS / "mockmock-agent.service").read_text().rstrip("\n") in served
