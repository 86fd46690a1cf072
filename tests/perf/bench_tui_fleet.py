"""Fleet screen under 1,000 agents, each updated once a second: update cost and input latency.

Drives the widget directly (no appliance): every second all 1,000 agents change
(CPU, RSS, assigned, sent/s; a few flip online/offline), as the live feed would
deliver them. Meanwhile a key is sent every 50 ms (cursor down/up, as a terminal would send it) and
two times are recorded: until the table's cursor has moved (input handled) and until
the app is idle again with the frame painted (Pilot.press). Prints one JSON object.

    uv run python tests/perf/bench_tui_fleet.py [--agents 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

from tui.app import MockmockApp
from tui.screens.fleet import FleetScreen


def fleet(n: int, tick: int, rng: random.Random) -> tuple[list[dict[str, Any]], dict[str, float]]:
    agents = [
        {
            "agent_id": f"agent-{i:05d}",
            "hostname": f"pi-{i:05d}",
            "arch": "aarch64",
            "version": "0.1.0",
            "online": rng.random() > 0.02,
            "capacity": 1000,
            "assigned": rng.randrange(0, 1000),
            "cpu_percent": round(rng.uniform(0, 100), 1),
            "rss_mb": round(rng.uniform(30, 90), 1),
        }
        for i in range(n)
    ]
    rates = {a["agent_id"]: round(rng.uniform(0, 1000), 1) for a in agents}
    return agents, rates


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def bench(n: int, seconds: float, size: tuple[int, int]) -> dict[str, Any]:
    app = MockmockApp(None, role="admin", start="fleet")
    rng = random.Random(7)
    update_ms: list[float] = []
    frame_ms: list[float] = []
    key_ms: list[float] = []
    press_ms: list[float] = []
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        first = time.perf_counter()
        screen.show_agents(*fleet(n, 0, rng))
        await pilot.pause()
        first_ms = (time.perf_counter() - first) * 1000
        table = screen.query_one("#agents")
        table.focus()
        moved = asyncio.Event()
        watch = table.watch_cursor_coordinate

        def watched(old: Any, new: Any) -> None:
            watch(old, new)
            moved.set()

        table.watch_cursor_coordinate = watched  # type: ignore[method-assign]
        stop = time.monotonic() + seconds

        async def updates() -> None:
            tick = 1
            while time.monotonic() < stop:
                data = fleet(n, tick, rng)  # built outside the timing: the feed's JSON decode
                t0 = time.perf_counter()
                screen.show_agents(*data)
                t1 = time.perf_counter()
                await pilot.pause()  # until the frame with the changes is composed
                t2 = time.perf_counter()
                update_ms.append((t1 - t0) * 1000)
                frame_ms.append((t2 - t0) * 1000)
                tick += 1
                await asyncio.sleep(max(0.0, 1.0 - (t2 - t0)))

        async def keys() -> None:
            down, sent = True, 0
            while time.monotonic() < stop:
                key = "down" if down else "up"
                moved.clear()
                t0 = time.perf_counter()
                if sent % 4 == 3:  # now and then through Pilot: handled and painted
                    await pilot.press(key)
                    press_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    app.simulate_key(key)
                    await moved.wait()
                    key_ms.append((time.perf_counter() - t0) * 1000)
                down, sent = not down, sent + 1
                await asyncio.sleep(0.05)

        await asyncio.gather(updates(), keys())
        rows = screen.query_one("#agents").row_count
    return {
        "agents": n,
        "rows": rows,
        "terminal": f"{size[0]}x{size[1]}",
        "seconds": seconds,
        "first_fill_ms": round(first_ms, 1),
        "updates": len(update_ms),
        "update_ms": {"p50": round(pct(update_ms, 50), 1), "max": round(max(update_ms), 1)},
        "update_plus_frame_ms": {
            "p50": round(pct(frame_ms, 50), 1),
            "max": round(max(frame_ms), 1),
        },
        "agent_updates_per_s": round(n * len(update_ms) / seconds),
        "keys": len(key_ms),
        "input_latency_ms": {
            "p50": round(pct(key_ms, 50), 1),
            "p99": round(pct(key_ms, 99), 1),
            "max": round(max(key_ms), 1),
        },
        "press_and_idle_ms": {
            "p50": round(pct(press_ms, 50), 1),
            "max": round(max(press_ms), 1),
        },
        "target_ms": 100,
        "ok": pct(key_ms, 99) <= 100,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--size", default="160x48", help="terminal WxH")
    a = p.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    print(json.dumps(asyncio.run(bench(a.agents, a.seconds, (w, h))), indent=2))


if __name__ == "__main__":
    main()
