"""The mockmock TUI: a pure client of the appliance API (k9s to the appliance)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from appliance.contract.accounts import Me
from appliance.contract.entitlements import Entitlements
from tui.client import ApiError, ApplianceClient
from tui.commands import commands_for
from tui.live_model import LiveModel
from tui.screens.audit import AuditScreen
from tui.screens.base import AppScreen
from tui.screens.billing import BillingScreen
from tui.screens.fleet import FleetScreen
from tui.screens.groups import GroupsScreen
from tui.screens.live import LiveScreen
from tui.screens.templates import TemplatesScreen
from tui.screens.usage import UsageScreen
from tui.timefmt import OrgTime
from tui.widgets.confirm import ConfirmModal
from tui.widgets.nav import SCREENS


class MockmockApp(App[None]):
    TITLE = "mockmock"
    CSS_PATH = "styles.tcss"
    MODES = {
        "fleet": FleetScreen,
        "groups": GroupsScreen,
        "templates": TemplatesScreen,
        "live": LiveScreen,
        "usage": UsageScreen,
        "billing": BillingScreen,
        "audit": AuditScreen,
    }
    BINDINGS = [
        # Not a priority binding: a focused input or editor (YAML!) keeps its colons.
        Binding("colon", "command_palette", "Palette", show=False, key_display=":"),
        # Textual's own palette key, everywhere (the template editor previews with ctrl+r).
        Binding("ctrl+p", "command_palette", "Palette", show=False, priority=True),
        Binding("ctrl+q", "quit_checked", "Quit", show=False, priority=True),
        *(
            Binding(str(i), f"switch_mode('{mode}')", title, show=False)
            for i, (mode, title) in enumerate(SCREENS, start=1)
        ),
    ]

    def __init__(
        self,
        client: ApplianceClient | None,
        *,
        live: bool = True,
        role: str | None = None,
        start: str = "fleet",
        stops_appliance: bool = False,
        timezone: str = "UTC",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``client`` None: no appliance (snapshots and benchmarks feed the screens).

        ``stops_appliance``: this TUI runs inside ``mockmock up``, so quitting stops the
        appliance too (and asks first). ``clock`` dates the figures on screen.
        """
        super().__init__()
        self.client = client
        self.model = LiveModel()
        self.role = role
        self.me: Me | None = None
        """The caller (``/api/v1/me``); None until the appliance answered."""
        self.time = OrgTime(timezone)
        self.clock = clock
        self.stops_appliance = stops_appliance
        self._live = live and client is not None
        self._start = start
        self._asking_to_quit = False

    def on_mount(self) -> None:
        self.switch_mode(self._start)
        if self.client is not None:
            self.run_worker(self._whoami(), group="whoami")
            if self._live:
                self.run_worker(self._feed(), group="feed")

    async def _whoami(self) -> None:
        assert self.client is not None
        try:
            me = await self.client.get_as(Me, "/api/v1/me")
        except ApiError as e:
            if e.status == 404:  # an appliance without /me: assume, and learn from 403s
                self.set_role("operator")
                return
            self.notify(f"who am I: {e}", severity="error", timeout=8)
            return
        self.me = me
        self.set_role(me.role)
        # The org's billing time zone (not part of /me): every time on screen is shown in it.
        try:
            zone = (await self.client.get_as(Entitlements, "/api/v1/entitlements")).timezone
        except ApiError:
            zone = None
        if zone:
            self.time = OrgTime(str(zone))
        self.sub_title = (
            f"{me.user or 'token'}@{me.org} ({self.role})  times in "
            f"{self.time.name} ({self.time.abbreviation()})"
        )

    @property
    def superuser(self) -> bool:
        """Whether the caller is an appliance superuser (sees every org)."""
        return self.me is not None and self.me.superuser

    def set_role(self, role: str) -> None:
        self.role = role
        for screen in self.screen_stack:
            screen.refresh_bindings()

    async def _feed(self) -> None:
        assert self.client is not None
        try:
            async for snap in self.client.live():
                self.model.apply(snap, self.clock())
                self.live_updated()
        except ApiError as e:
            self.notify(str(e), severity="error", timeout=10)

    def live_updated(self) -> None:
        screen = self.screen
        if isinstance(screen, AppScreen):
            screen.on_live(self.model)

    async def action_quit(self) -> None:
        self.action_quit_checked()  # the palette's "Quit" too

    def action_quit_checked(self) -> None:
        """Quit; inside ``mockmock up`` that stops the appliance, so ask first (twice: go)."""
        if not self.stops_appliance or self._asking_to_quit:
            self.exit()
            return
        self._asking_to_quit = True

        def answered(yes: bool | None) -> None:
            self._asking_to_quit = False
            if yes:
                self.exit()

        self.push_screen(
            ConfirmModal(
                "Quit and stop the appliance?",
                [
                    "This TUI runs inside `mockmock up`: quitting stops the API, the broker,",
                    "the scheduler and the local agent, and every mock on it stops sending.",
                    "To leave it running, start it with --headless and use `mockmock tui`.",
                ],
                confirm_label="Stop and quit",
            ),
            answered,
        )

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from commands_for(self, screen)
        yield from super().get_system_commands(screen)


async def run_tui_async(url: str, token_file: Path, *, stops_appliance: bool = False) -> None:
    client = ApplianceClient.from_token_file(url, token_file)
    try:
        await MockmockApp(client, stops_appliance=stops_appliance).run_async()
    finally:
        await client.aclose()


def run_tui(url: str, token_file: Path) -> None:
    try:
        asyncio.run(run_tui_async(url, token_file))
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
