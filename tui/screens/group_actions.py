"""Start, stop, scale and tail a group: the same keys on the list and on its detail screen."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from textual.binding import Binding

from appliance.contract.groups import GROUPS_PATH, Group, ScaleRequest
from tui import format as f
from tui.screens.base import AppScreen, Failed
from tui.widgets.confirm import ConfirmModal
from tui.widgets.form import Field, FormModal


class GroupActions:
    """Mixed into a screen with ``selected_group()``, ``group_doc()`` and ``group_changed()``."""

    ACTION_ROLES: ClassVar[dict[str, str]] = {
        "start": "operator",
        "stop": "operator",
        "scale": "operator",
    }
    ACTION_BINDINGS: ClassVar[list[Binding]] = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("c", "scale", "Scale"),
    ]

    def selected_group(self) -> str | None:
        raise NotImplementedError

    def group_doc(self, name: str) -> Group | None:
        raise NotImplementedError

    def group_changed(self, doc: Group) -> None:
        raise NotImplementedError

    @property
    def _screen(self) -> AppScreen:
        assert isinstance(self, AppScreen)
        return self

    def action_start(self) -> None:
        if (name := self.selected_group()) is not None:
            self._screen.spawn(self._post, name, "start", group="action")

    def action_stop(self) -> None:
        if (name := self.selected_group()) is not None:
            self._screen.spawn(self._stop, name, group="action")

    async def _stop(self, name: str) -> None:
        doc = self.group_doc(name)
        count = doc.running if doc is not None else 0
        ok = await self._screen.app.push_screen_wait(
            ConfirmModal(
                f"Stop group {name}?",
                [f"{f.count(count)} mocks will stop sending."],
                confirm_label="Stop",
            )
        )
        if ok:
            await self._post(name, "stop")

    def action_scale(self) -> None:
        if (name := self.selected_group()) is not None:
            self._screen.spawn(self._scale, name, group="action")

    async def _scale(self, name: str) -> None:
        doc = self.group_doc(name)
        current = str(doc.count) if doc is not None else ""
        values = await self._screen.app.push_screen_wait(
            FormModal(f"Scale {name}", [Field("count", "Devices", current, kind="integer")])
        )
        if values and values["count"]:
            body = msgspec.to_builtins(ScaleRequest(count=int(values["count"])))
            await self._post(name, "scale", body)

    async def _post(self, name: str, verb: str, body: Any = None) -> None:
        answer = await self._screen.call_as(Group, "POST", f"{GROUPS_PATH}/{name}/{verb}", body)
        if not isinstance(answer, Failed):
            self.group_changed(answer)
            self._screen.status(f"{name}: {answer.state} ({verb})")

    def action_tail(self) -> None:
        if (name := self.selected_group()) is not None:
            from tui.screens.group_tail import TailScreen

            self._screen.app.push_screen(TailScreen(name))
