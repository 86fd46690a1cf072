"""One clock: appliance/ reads the wall clock only through appliance/schedule/clock.py.

A moved clock (``clock.travel_to`` in tests, catch-up after downtime) must move
every instant the appliance stores and bills by; a stray ``datetime.now()`` keeps
the real time and splits the appliance in two. Monotonic timers measure
durations and are fine anywhere.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

from appliance import models
from appliance.schedule import clock

APPLIANCE = Path(__file__).parents[3] / "appliance"
WALL_CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}


def wall_clock_reads(source: str) -> list[tuple[int, str]]:
    """``datetime.now(``, ``dt.datetime.utcnow(``, ``time.time(``, ``date.today(`` and a
    bare ``time()`` imported from time, by line."""
    found = []
    tree = ast.parse(source)
    bare: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            bare |= {a.asname or a.name for a in node.names if a.name in ("time", "time_ns")}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if (name, func.attr) in WALL_CLOCK_CALLS:
                found.append((node.lineno, f"{name}.{func.attr}()"))
        elif isinstance(func, ast.Name) and func.id in bare:
            found.append((node.lineno, f"{func.id}()"))
    return found


def test_appliance_reads_the_wall_clock_only_in_clock_py() -> None:
    offenders = []
    for path in sorted(APPLIANCE.rglob("*.py")):
        if path == APPLIANCE / "schedule" / "clock.py":
            continue
        for line, call in wall_clock_reads(path.read_text()):
            offenders.append(f"{path.relative_to(APPLIANCE.parent)}:{line}: {call}")
    assert offenders == [], (
        "use appliance.schedule.clock (now/utcnow, or system* for agents' clocks)"
    )


def test_the_scan_catches_each_spelling_and_spares_monotonic_timers() -> None:
    source = "\n".join(
        [
            "import datetime as dt, time",
            "from datetime import datetime, date",
            "from time import time as wall, monotonic",
            "a = dt.datetime.now(dt.UTC)",
            "b = datetime.utcnow()",
            "c = time.time()",
            "d = date.today()",
            "e = wall()",
            "f = time.monotonic() + monotonic() + time.perf_counter()",
        ]
    )
    assert [call for _, call in wall_clock_reads(source)] == [
        "datetime.now()",
        "datetime.utcnow()",
        "time.time()",
        "date.today()",
        "wall()",
    ]


def test_the_tables_default_timestamps_follow_the_moved_clock() -> None:
    at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    clock.freeze(at)
    try:
        assert models.utcnow() == at.replace(tzinfo=None)
    finally:
        clock.reset()
    assert abs(models.utcnow() - clock.system().replace(tzinfo=None)) < dt.timedelta(minutes=1)
