"""What every screen shares: the nav bar, `/` filter, sort, status and info line, keys, role
checks, API calls, and how old the figures on screen are."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from tui.client import ApiError, decode_as
from tui.live_model import LiveModel
from tui.roles import may
from tui.timefmt import age
from tui.widgets.keybar import KeyBar
from tui.widgets.nav import NavBar
from tui.widgets.table import ResourceTable

if TYPE_CHECKING:
    from tui.app import MockmockApp

T = TypeVar("T")

COMMON_BINDINGS = [
    Binding("question_mark", "help", "Help", key_display="?"),
    Binding("slash", "filter", "Filter", key_display="/"),
    Binding("greater_than_sign", "sort(1)", "Sort by next column", key_display=">", show=False),
    Binding("less_than_sign", "sort(-1)", "Sort by previous column", key_display="<", show=False),
    Binding("exclamation_mark", "reverse", "Reverse the order", key_display="!", show=False),
    Binding("escape", "back", "Back", show=False),
    Binding("q", "quit", "Quit"),
    Binding("r", "reload", "Refresh", show=False),
]


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

    BINDINGS = COMMON_BINDINGS

    def __init__(self) -> None:
        super().__init__()
        self._poll: Timer | None = None
        self.data_at: float | None = None
        """When the figures on screen were read (the app's clock); None: not yet."""

    @property
    def mm(self) -> MockmockApp:
        return self.app  # type: ignore[return-value]

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NavBar(self.nav_mode)
        yield from self.compose_body()
        yield Input(placeholder="filter: words to match, esc clears", id="filter")
        with Horizontal(id="statusbar"):
            yield Static("", id="status")
            yield Static("", id="info")
        yield KeyBar(id="keys")

    @property
    def nav_mode(self) -> str:
        return self.MODE

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> ResourceTable | None:
        """The table that ``/``, sorting and the row count act on (the focused one first)."""
        focused = self.focused
        if isinstance(focused, ResourceTable):
            return focused
        found = self.query(ResourceTable)
        return found.first() if found else None

    # --- data ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_interval(1.0, self.show_info)

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

    def fresh(self, at: float | None = None) -> None:
        """The figures on screen were just read (or were read at ``at``, the app's clock)."""
        self.data_at = self.mm.clock() if at is None else at
        self.show_info()

    async def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """One API call; an error goes to the status line and comes back as ``Failed``."""
        client = self.mm.client
        if client is None:
            return Failed(ApiError("offline: no appliance"))
        try:
            answer = await client.request(method, path, body, **params)
        except ApiError as e:
            if not self.is_attached:
                return Failed(e)
            if e.status == 403:
                self.status(f"refused for role {self.mm.role or '?'}: {e.detail}", error=True)
            else:
                self.status(str(e), error=True)
            return Failed(e)
        if not self.is_attached:  # closed while waiting: nothing left to show it on
            return Failed(ApiError(f"{method} {path}: the screen was closed"))
        return answer

    async def call_as(
        self, kind: type[T], method: str, path: str, body: Any = None, **params: Any
    ) -> T | Failed:
        """``call``, decoded into one of the shared response types."""
        answer = await self.call(method, path, body, **params)
        if isinstance(answer, Failed):
            return answer
        try:
            return decode_as(kind, answer, path)
        except ApiError as e:
            self.status(str(e), error=True)
            return Failed(e)

    def status(self, message: str, *, error: bool = False) -> None:
        if not self.is_attached:
            return
        widget = self.query_one("#status", Static)
        widget.set_class(error, "error")
        widget.update(message)

    def show_info(self) -> None:
        """The right of the status line: rows shown of all, the sort, the data's age."""
        if not self.is_mounted:
            return
        parts = []
        table = self.table
        if table is not None and table.is_mounted:
            parts.append(table.counts())
            if table.sort_label():
                parts.append(table.sort_label())
        if self.data_at is not None or self.mm.client is not None:
            when = None if self.data_at is None else self.mm.clock() - self.data_at
            parts.append(f"updated {age(when)}")
        self.query_one("#info", Static).update(" · ".join(parts))

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

    def action_quit(self) -> None:
        self.mm.action_quit_checked()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_sort(self, step: int) -> None:
        if (table := self.table) is not None:
            table.sort_step(step)
            self.show_info()

    def action_reverse(self) -> None:
        if (table := self.table) is not None:
            table.sort_by(table.sort_column, not table.sort_reverse)
            self.show_info()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and self.table is not None:
            self.table.set_filter(event.value)
            self.show_info()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter" and self.table is not None:
            self.table.focus()

    def on_data_table_header_selected(self) -> None:
        self.call_after_refresh(self.show_info)

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

    @property
    def nav_mode(self) -> str:
        return self._mode

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("shown"):
            super().action_back()
        else:
            self.dismiss()
