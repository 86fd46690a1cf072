"""The arrows point one way: tui → the HTTP API (and the shared contract types), never the
agent's code; the agent → nothing of appliance, billing or tui (it runs alone on a board).

Checked twice: by importing every module in a fresh interpreter and looking at what got
loaded, and by reading every module's imports (including those inside functions, which
only run later).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def loaded_after_importing(package: str) -> list[str]:
    code = f"""
import importlib, json, pkgutil, sys
import {package}
for m in pkgutil.walk_packages({package}.__path__, "{package}."):
    importlib.import_module(m.name)
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def of(modules: list[str], *packages: str) -> list[str]:
    return [m for m in modules if m.split(".")[0] in packages]


def imported_names(package: str) -> dict[str, set[str]]:
    """Every module of ``package`` → the top-level packages it imports, anywhere in it."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


def test_importing_every_tui_module_loads_no_agent_module() -> None:
    modules = loaded_after_importing("tui")
    assert "tui.app" in modules and "tui.screens.template_editor" in modules
    assert of(modules, "agent") == []


def test_no_tui_module_imports_the_agent_even_later() -> None:
    offenders = {m: n & {"agent"} for m, n in imported_names("tui").items() if "agent" in n}
    assert offenders == {}


def test_the_tui_takes_from_the_appliance_only_its_contract_types() -> None:
    modules = loaded_after_importing("tui")
    assert set(of(modules, "appliance")) <= {"appliance"} | {
        m for m in modules if m.startswith("appliance.contract")
    }


@pytest.mark.parametrize("other", ["appliance", "billing", "tui"])
def test_the_agent_imports_nothing_of(other: str) -> None:
    modules = loaded_after_importing("agent")
    assert "agent.runtime" in modules and "agent.tail" in modules
    assert of(modules, other) == []
    offenders = [m for m, names in imported_names("agent").items() if other in names]
    assert offenders == []
