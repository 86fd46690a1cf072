"""What every screen shares: the nav bar, `/` filter, status line, keys, role checks, API calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from tui.client import ApiError
from tui.live_model import LiveModel
from tui.roles import may
from tui.widgets.nav import NavBar
from tui.widgets.table import ResourceTable

if TYPE_CHECKING:
    from tui.app import MockmockApp


class Failed:
    """What ``call`` returns when the API said no; the reason is already on the status line."""

    def __init__(self, error: ApiError) -> None:
        self.error = error


class AppScreen(Screen[None]):
    MODE: ClassVar[str] = ""
    NEEDS: ClassVar[dict[str, str]] = {}
    """Action name → the least role that may run it; others hide the key."""
    POLL_S: ClassVar[float | None] = None
    """Reload from the REST API this often while the screen is showing."""

    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("escape", "back", "Back", show=False),
        Binding("q", "app.quit", "Quit"),
        Binding("r", "reload", "Refresh", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._poll: Timer | None = None

    @property
    def mm(self) -> MockmockApp:
        return self.app  # type: ignore[return-value]

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield Input(placeholder="filter: words to match, esc clears", id="filter")
        yield Static("", id="status")
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> ResourceTable | None:
        found = self.query(ResourceTable)
        return found.first() if found else None

    # --- data ---------------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.reload()
        if self.POLL_S and self._poll is None and self.mm.client is not None:
            self._poll = self.set_interval(self.POLL_S, self.reload)
        self.on_live(self.mm.model)

    def on_screen_suspend(self) -> None:
        if self._poll is not None:
            self._poll.stop()
            self._poll = None

    def reload(self) -> None:
        if self.mm.client is not None:
            self.spawn(self.load, group="load", exclusive=True)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any, **worker: Any) -> None:
        """Run ``fn(*args)`` in a worker, so the screen keeps taking keys while it waits."""
        self.run_worker(partial(fn, *args), **worker)

    async def load(self) -> None:
        """Read what the screen shows from the API (runs in a worker)."""

    def on_live(self, model: LiveModel) -> None:
        """A new live snapshot arrived (or the screen came back into view)."""

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """One API call; an error goes to the status line and comes back as ``Failed``."""
        client = self.mm.client
        if client is None:
            return Failed(ApiError("offline: no appliance"))
        try:
            return await client.request(method, path, body, **params)
        except ApiError as e:
            if e.status == 403:
                self.status(f"refused for role {self.mm.role or '?'}: {e.detail}", error=True)
            else:
                self.status(str(e), error=True)
            return Failed(e)

    def status(self, message: str, *, error: bool = False) -> None:
        widget = self.query_one("#status", Static)
        widget.set_class(error, "error")
        widget.update(message)

    # --- roles --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        needed = self.NEEDS.get(action)
        if needed is None:
            return True
        return may(self.mm.role, needed)

    # --- keys ---------------------------------------------------------------------------

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and self.table is not None:
            self.table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter" and self.table is not None:
            self.table.focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("shown"):
            box.value = ""
            box.remove_class("shown")
            if self.table is not None:
                self.table.set_filter("")
                self.table.focus()
        elif len(self.app.screen_stack) > 1 and self.MODE == "":
            self.dismiss()

    def action_reload(self) -> None:
        self.reload()


class DetailScreen(AppScreen):
    """A screen pushed over a list (``enter``); ``esc`` goes back to it."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._mode = mode

    def compose(self) -> ComposeResult:
        yield NavBar(self._mode)
        yield from self.compose_body()
        yield Input(placeholder="filter: words to match, esc clears", id="filter")
        yield Static("", id="status")
        yield Footer(compact=True)

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("shown"):
            super().action_back()
        else:
            self.dismiss()
