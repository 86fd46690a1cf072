"""A DataTable that takes whole snapshots of rows, sizes columns to them, sorts and filters.

Columns are sized to their content on every update, never to the first rows seen:
numbers are never cut (they keep their full width, right-aligned); when the
screen is too narrow, text columns are shortened with a visible ``…`` and the
least important columns are left out (``Col.drop``), before anything scrolls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

Cell = str | Text
Row = Sequence[Cell]

PADDING = 1
"""DataTable's cell padding, each side."""
ARROWS = {False: " ▲", True: " ▼"}
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class Col:
    label: str
    num: bool = False
    """A number: right-aligned, never shortened, sorted by value."""
    min: int = 6
    """A text column is shortened (with …) down to this many cells, no further."""
    drop: int = 0
    """0: always shown. Otherwise left out when the screen is too narrow, higher first."""


def as_col(c: str | Col) -> Col:
    return c if isinstance(c, Col) else Col(c)


def plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def width_of(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def sort_key(cell: Cell, num: bool) -> tuple[int, Any]:
    text = plain(cell)
    if num:
        m = _NUMBER.search(text)
        return (0, float(m.group().replace(",", ""))) if m else (-1, 0.0)
    return (0, text.casefold())


def ellipsize(cell: Cell, width: int) -> Cell:
    if width_of(cell) <= width:
        return cell
    text = cell.copy() if isinstance(cell, Text) else Text(cell)
    text.truncate(max(width, 1), overflow="ellipsis")
    return text


def _give(widths: dict[int, int], floors: dict[int, int], excess: int) -> int:
    """Take up to ``excess`` cells from the columns in ``floors``, the widest first."""
    while excess > 0 and floors:
        widest = max(floors, key=lambda i: (widths[i] - floors[i], widths[i], i))
        if widths[widest] <= floors[widest]:
            break
        widths[widest] -= 1
        excess -= 1
    return excess


def layout(cols: Sequence[Col], natural: Sequence[int], avail: int) -> tuple[list[int], list[int]]:
    """Which columns to show and how wide (content cells), to fit ``avail`` cells if it can.

    The droppable text columns give up width first (down to ``Col.min``); if that is
    not enough, a droppable column goes (highest ``drop`` first) and the rest start
    over; with none left to drop, the other text columns give up width. Numbers keep
    their full width: past that, the table scrolls sideways.
    """
    visible = list(range(len(cols)))
    while True:
        widths = {i: natural[i] for i in visible}
        excess = sum(widths[i] + 2 * PADDING for i in visible) - avail
        if avail <= 0 or excess <= 0:
            return visible, [widths[i] for i in visible]
        text = {i: min(natural[i], cols[i].min) for i in visible if not cols[i].num}
        optional = {i: f for i, f in text.items() if cols[i].drop > 0}
        if sum(widths[i] - f for i, f in optional.items()) >= excess:
            _give(widths, optional, excess)
            return visible, [widths[i] for i in visible]
        droppable = [i for i in visible if cols[i].drop > 0]
        if droppable:
            visible.remove(max(droppable, key=lambda i: (cols[i].drop, i)))
            continue
        _give(widths, text, excess)
        return visible, [widths[i] for i in visible]


class ResourceTable(DataTable[Cell]):
    """Rows keyed by id; ``show`` replaces the whole set, touching only cells that changed.

    Updating in place (rather than ``clear`` + ``add_rows``) keeps the cursor on
    its row and costs in proportion to what changed, which is what lets the
    fleet table take 1,000 agents a second.
    """

    def __init__(self, *columns: str | Col, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.cols = [as_col(c) for c in columns]
        self._names = [c.label for c in self.cols]
        self._all: dict[str, tuple[Cell, ...]] = {}
        self._shown: dict[str, tuple[Cell, ...]] = {}
        self._visible: list[int] | None = None
        self._widths: list[int] = []
        self.filter_text = ""
        self.sort_column: int | None = None
        self.sort_reverse = False

    def on_mount(self) -> None:
        self._render_rows()

    def on_resize(self, event: events.Resize) -> None:
        self._render_rows()

    # --- what screens and tests read ------------------------------------------------------

    @property
    def selected_key(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    @property
    def shown_keys(self) -> list[str]:
        return list(self._shown)

    @property
    def total(self) -> int:
        return len(self._all)

    @property
    def visible_columns(self) -> list[str]:
        return [self._names[i] for i in self._visible or []]

    def value(self, key: str, column: str) -> Cell:
        """A row's cell as the screen gave it (whole, even if shown shortened or left out)."""
        return self._all[key][self._names.index(column)]

    def counts(self) -> str:
        """``12 rows``, or ``3 of 12`` while a filter hides some."""
        shown, total = len(self._shown), len(self._all)
        if shown != total:
            return f"{shown} of {total}"
        return f"{total} row" if total == 1 else f"{total} rows"

    def sort_label(self) -> str:
        if self.sort_column is None:
            return ""
        return f"by {self._names[self.sort_column]}{ARROWS[self.sort_reverse]}"

    # --- what screens do -----------------------------------------------------------------

    def show(self, rows: Mapping[str, Row]) -> None:
        self._all = {k: tuple(v) for k, v in rows.items()}
        self._render_rows()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._render_rows()

    def sort_by(self, column: int | None, reverse: bool = False) -> None:
        """Sort by the column at ``column`` (None: as the screen listed them)."""
        self.sort_column, self.sort_reverse = column, reverse
        self._visible = None  # the header changes: rebuild
        self._render_rows()

    def sort_step(self, step: int) -> None:
        """Sort by the next (``+1``) or previous (``-1``) column, through "unsorted"."""
        positions: list[int | None] = [None, *range(len(self.cols))]
        now = positions.index(self.sort_column)
        self.sort_by(positions[(now + step) % len(positions)], self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        index = self._names.index(str(event.column_key.value))
        reverse = not self.sort_reverse if index == self.sort_column else False
        self.sort_by(index, reverse)

    # --- rendering -----------------------------------------------------------------------

    def _matches(self, key: str, cells: tuple[Cell, ...]) -> bool:
        if not self.filter_text:
            return True
        haystack = " ".join([key, *(plain(c) for c in cells)]).lower()
        return all(word in haystack for word in self.filter_text.split())

    def _label(self, i: int) -> str:
        return self._names[i] + (ARROWS[self.sort_reverse] if i == self.sort_column else "")

    def _available(self) -> int:
        width = self.size.width
        # Keep room for the vertical scrollbar whether or not it shows now.
        return width - self.styles.scrollbar_size_vertical if width else 0

    def _render_rows(self) -> None:
        if not self.is_mounted:
            return
        want = {k: v for k, v in self._all.items() if self._matches(k, v)}
        if self.sort_column is not None:
            col = self.sort_column
            num = self.cols[col].num
            order = sorted(
                want, key=lambda k: sort_key(want[k][col], num), reverse=self.sort_reverse
            )
            want = {k: want[k] for k in order}
        natural = [cell_len(self._label(i)) for i in range(len(self.cols))]
        for cells in want.values():
            for i, c in enumerate(cells):
                w = width_of(c)
                if w > natural[i]:
                    natural[i] = w
        visible, widths = layout(self.cols, natural, self._available())
        selected = self.selected_key
        rebuilt = dirty = False
        if visible != self._visible:
            self.clear(columns=True)
            for i, w in zip(visible, widths, strict=True):
                self.add_column(self._header(i, w), width=w, key=self._names[i])
            self._visible, self._widths, self._shown = visible, widths, {}
            rebuilt = True
        elif widths != self._widths:
            for i, w in zip(visible, widths, strict=True):
                column = self.columns[ColumnKey(self._names[i])]
                column.width, column.label = w, self._header(i, w)
            self._widths = widths
            self._require_update_dimensions = dirty = True
        shown = {
            k: tuple(self._fit(cells[i], i, w) for i, w in zip(visible, widths, strict=True))
            for k, cells in want.items()
        }
        for key in [k for k in self._shown if k not in shown]:
            self.remove_row(key)
            del self._shown[key]
        if list(shown)[: len(self._shown)] != list(self._shown):
            # The order changed (not just new rows at the end): rebuild once.
            self.clear()
            self._shown = {}
            rebuilt = True
        for key, cells in shown.items():
            old = self._shown.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                self._write_cells(key, old, cells)
                dirty = True
            self._shown[key] = cells
        if dirty:
            self._update_count += 1  # invalidates the line caches, as update_cell does
            self.refresh()
        if rebuilt and selected in self._shown:
            self.move_cursor(row=list(self._shown).index(selected), animate=False)

    def _header(self, i: int, width: int) -> Text:
        label = ellipsize(self._label(i), width)
        return Text(plain(label), justify="right" if self.cols[i].num else "left")

    def _fit(self, cell: Cell, i: int, width: int) -> Cell:
        if self.cols[i].num:
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.justify = "right"
            return text
        return ellipsize(cell, width)

    def _write_cells(self, key: str, old: tuple[Cell, ...], cells: tuple[Cell, ...]) -> None:
        """Store a row's changed cells; one ``refresh`` follows for the whole batch.

        ``update_cell`` refreshes the widget on every call, which for 1,000 agents x 5
        changing cells costs ~100 ms a second; writing the same store it writes
        (``_data``, Textual 8.2) and refreshing once costs ~5 ms.
        """
        row = self._data[RowKey(key)]
        assert self._visible is not None
        for i, was, now in zip(self._visible, old, cells, strict=True):
            if was != now:
                row[ColumnKey(self._names[i])] = now
