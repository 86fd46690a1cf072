"""One group's traffic over the last two minutes: sent/s, errors/s and lateness p99."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from appliance.contract.live import LiveGroup
from tui import format as f
from tui.live_model import Series


class GroupSpark(Vertical):
    def __init__(self, name: str) -> None:
        super().__init__(classes="group-spark")
        self.group_name = name

    def compose(self) -> ComposeResult:
        yield Static(self.group_name, classes="spark-title")
        with Horizontal(classes="spark-row"):
            for key, label in (("sent", "sent/s"), ("errors", "err/s"), ("p99", "p99 ms")):
                with Vertical(classes="spark-cell"):
                    yield Static(label, classes="spark-label", id=f"label-{key}")
                    yield Sparkline([], id=f"spark-{key}", classes=f"spark-{key}")

    def update_from(self, group: LiveGroup, series: Series) -> None:
        last = {
            "sent": series.sent_per_s[-1] if series.sent_per_s else 0.0,
            "errors": series.errors_per_s[-1] if series.errors_per_s else 0.0,
            "p99": series.p99_ms[-1] if series.p99_ms else 0.0,
        }
        self.query_one(".spark-title", Static).update(
            f"[b]{self.group_name}[/]  {group.state}  mocks "
            f"{f.count(group.running)}/{f.count(group.count)}  sent {f.count(group.sent)}"
            f"  errors {f.count(group.errors)}"
        )
        for key, data, label in (
            ("sent", series.sent_per_s, "sent/s"),
            ("errors", series.errors_per_s, "err/s"),
            ("p99", series.p99_ms, "p99 ms"),
        ):
            self.query_one(f"#label-{key}", Static).update(f"{label} {f.rate(last[key])}")
            self.query_one(f"#spark-{key}", Sparkline).data = list(data)
