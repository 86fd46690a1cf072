"""k9s-style drill-down on a real run: Groups → a group's devices → its message tail, and
stop from the detail. `mockmock up`'s agent sends to Mosquitto; an independent subscriber
checks that what the TUI shows is what the target received."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.e2e.test_walking_skeleton import Subscriber
from tests.tui.conftest import api_async, screen_text, tui_for, until
from tui.screens.agent_detail import AgentDetail
from tui.screens.group_detail import GroupDetail
from tui.screens.group_tail import TailScreen
from tui.widgets.confirm import ConfirmModal

pytestmark = [pytest.mark.mqtt, pytest.mark.slow, pytest.mark.timeout(150)]


def template(url: str) -> dict[str, object]:
    return {
        "transport": {"mqtt": {"url": url, "topic": "tuidd/{device_id}/t", "qos": 1}},
        "interval": "300ms",
        "payload": {"device": {"device_id": {}}, "seq": {"counter": {}}, "fw": "7.7.7"},
    }


def received(sub: Subscriber) -> set[tuple[str, str, int]]:
    out = set()
    for topic, raw in list(sub.messages):
        body = json.loads(raw)
        out.add((topic, body["device"], body["seq"]))
    return out


async def test_group_devices_and_tail_show_the_real_messages(appliance_up, mosquitto) -> None:
    await asyncio.to_thread(
        appliance_up.wait_for,
        lambda: any(a["online"] for a in appliance_up.api("GET", "/api/v1/agents")),
        what="the local agent online",
    )
    with Subscriber("127.0.0.1", mosquitto.port, "tuidd/#") as sub:
        await api_async(appliance_up, "PUT", "/api/v1/templates/dd", template(mosquitto.url))
        await api_async(appliance_up, "PUT", "/api/v1/groups/lab", {"template": "dd", "count": 3})
        await api_async(appliance_up, "POST", "/api/v1/groups/lab/start")
        async with tui_for(appliance_up) as (app, pilot):
            await pilot.press("2")
            table = app.screen.query_one("#groups")
            await until(pilot, lambda: "lab" in table.shown_keys, what="the group listed")
            table.focus()
            table.move_cursor(row=table.get_row_index("lab"))
            await pilot.press("enter")
            detail = await until(pilot, lambda: isinstance(app.screen, GroupDetail) and app.screen)
            page = await until(
                pilot,
                lambda: (
                    detail.devices
                    and len(detail.devices.devices) == 3
                    and all(d.last_payload for d in detail.devices.devices)
                    and detail.devices
                ),
                what="three devices with a payload",
            )
            await asyncio.sleep(1.0)  # the subscriber catches up
            seen = received(sub)
            for d in page.devices:
                body = json.loads(d.last_payload or "")
                assert d.connected and d.status == "normal" and body["fw"] == "7.7.7"
                assert (f"tuidd/{d.device_id}/t", d.device_id, body["seq"]) in seen
            assert any("lab-00002" in line for line in screen_text(app))

            await pilot.press("l")
            tail = await until(pilot, lambda: isinstance(app.screen, TailScreen) and app.screen)
            await until(pilot, lambda: len(tail.lines) >= 8, what="eight messages in the tail")
            await asyncio.sleep(1.0)
            seen = received(sub)
            for m in tail.lines:
                body = json.loads(m.payload)
                assert (m.topic, m.device_id, body["seq"]) in seen
            last = tail.lines[-1]
            text = "\n".join(screen_text(app))
            assert last.device_id in text and f'"seq":{json.loads(last.payload)["seq"]}' in text

            await pilot.press("escape")
            assert app.screen is detail
            await pilot.press("x")  # stop asks first
            modal = await until(pilot, lambda: isinstance(app.screen, ConfirmModal) and app.screen)
            assert "3 mocks will stop" in " ".join(modal._lines)
            await pilot.press("y")
            await until(
                pilot,
                lambda: detail.doc is not None and detail.doc.state == "stopped",
                what="stopped",
            )
            group = await api_async(appliance_up, "GET", "/api/v1/groups/lab")
            assert group["state"] == "stopped"


async def test_agent_detail_lists_its_ranges(appliance_up, mosquitto) -> None:
    await asyncio.to_thread(
        appliance_up.wait_for,
        lambda: any(a["online"] for a in appliance_up.api("GET", "/api/v1/agents")),
        what="the local agent online",
    )
    await api_async(appliance_up, "PUT", "/api/v1/templates/dd", template(mosquitto.url))
    await api_async(appliance_up, "PUT", "/api/v1/groups/lab", {"template": "dd", "count": 4})
    await api_async(appliance_up, "POST", "/api/v1/groups/lab/start")
    async with tui_for(appliance_up) as (app, pilot):
        table = app.screen.query_one("#agents")
        await until(pilot, lambda: table.shown_keys, what="the local agent")
        table.focus()
        await pilot.press("enter")
        detail = await until(pilot, lambda: isinstance(app.screen, AgentDetail) and app.screen)
        await until(
            pilot,
            lambda: detail.ranges is not None and detail.ranges.ranges,
            what="the agent's ranges",
        )
        assert detail.ranges is not None
        assert [(r.group, r.index_start, r.index_end) for r in detail.ranges.ranges] == [
            ("lab", 0, 4)
        ]
        await pilot.press("enter")  # the range's group
        assert isinstance(app.screen, GroupDetail) and app.screen.name_ == "lab"
