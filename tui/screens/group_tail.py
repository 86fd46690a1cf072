"""A group's message tail (k9s `l` logs): the last messages its mocks sent, as they go."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import RichLog, Static

from appliance.contract.inspect import GroupTail, TailLine
from tui.screens.base import DetailScreen, Failed

LIMIT = 100
"""Messages asked for on each poll (the agents keep 200 per range)."""
KEEP = 2000
"""Lines kept on screen."""

STATUS_STYLE = {"normal": "green", "ok": "green"}


def tail_line(m: TailLine, clock: str) -> Text:
    line = Text()
    line.append(clock, style="dim")
    line.append(" ")
    line.append(m.device_id, style="bold cyan")
    line.append(" ")
    line.append(m.status, style=STATUS_STYLE.get(m.status, "yellow"))
    line.append(" ")
    line.append(m.payload)
    if m.truncated:
        line.append(" …(cut)", style="dim")
    line.append(f"  {m.topic}", style="dim")
    return line


class TailScreen(DetailScreen):
    POLL_S = 1.0
    BINDINGS = [
        Binding("f", "follow", "Follow on/off"),
        Binding("w", "wrap", "Wrap on/off"),
        Binding("ctrl+l", "clear", "Clear", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__("groups")
        self.group = name
        self.following = True
        self.lines: deque[TailLine] = deque(maxlen=KEEP)
        """What is on screen, oldest first (tests read it)."""
        self._seen: deque[tuple[str, int]] = deque(maxlen=KEEP)
        self._seen_set: set[tuple[str, int]] = set()
        self.state = ""

    def compose_body(self) -> ComposeResult:
        yield Static(f"[b]Messages of {self.group}[/]", id="tail-head", classes="summary")
        yield RichLog(id="tail", max_lines=KEEP, wrap=False, markup=False, highlight=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#tail", RichLog).focus()

    async def load(self) -> None:
        if not self.following:
            return
        tail = await self.call_as(
            GroupTail, "GET", f"/api/v1/groups/{self.group}/tail", limit=LIMIT
        )
        if not isinstance(tail, Failed):
            self.show_tail(tail)
            self.fresh()

    def show_tail(self, tail: GroupTail) -> None:
        """Append the messages not shown yet (an agent's ``n`` tells repeats apart)."""
        log = self.query_one("#tail", RichLog)
        clock = self.mm.time.clock
        for m in tail.messages:
            key = (m.agent_id, m.n)
            if key in self._seen_set:
                continue
            if len(self._seen) == self._seen.maxlen:
                self._seen_set.discard(self._seen[0])
            self._seen.append(key)
            self._seen_set.add(key)
            self.lines.append(m)
            log.write(tail_line(m, clock(m.at)))
        self.state = tail.state
        head = f"[b]{self.group}[/] messages · {tail.state}"
        if tail.state != "running":
            head += " · [yellow]not running: nothing is being sent[/]"
        elif tail.watching_since:
            head += f" · kept since {self.mm.time.at(tail.watching_since, seconds=True)}"
        if tail.unanswered:
            head += f" · [yellow]no answer from {', '.join(tail.unanswered)}[/]"
        head += f" · {len(self.lines)} shown" + ("" if self.following else " · [b]paused[/] (f)")
        self.query_one("#tail-head", Static).update(head)

    def action_follow(self) -> None:
        self.following = not self.following
        self.status("following the tail" if self.following else "paused: f follows again")
        if self.following:
            self.reload()

    def action_wrap(self) -> None:
        log = self.query_one("#tail", RichLog)
        log.wrap = not log.wrap
        log.clear()
        clock = self.mm.time.clock
        for m in self.lines:
            log.write(tail_line(m, clock(m.at)))

    def action_clear(self) -> None:
        self.query_one("#tail", RichLog).clear()
        self.lines.clear()
