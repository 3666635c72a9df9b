"""Parallel coordinates in braille: one vertical axis per swept field and the metric, one
line per config across them, the selected one drawn last in its own colour.

The numbers (each line's height on each axis, the axes' labels) come from
engine/analysis/plots.py; this only draws them, on the chart's dot grid (chart.raster), so
it costs what a chart of a few lines costs. Axis names sit above the plot, a numeric axis's
top and bottom values above and below it, a category's levels beside it at their heights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from hypertui.tui.app.widgets.chart import AXIS, BRAILLE_BASE, RICH_COLORS, Line, raster

if TYPE_CHECKING:  # the screen hands the numbers down; the widget never calls the engine
    from hypertui.engine.analysis.plots import Parallel

OTHERS, SELECTED = "cyan", "orange"


@dataclass(frozen=True)
class Frame:
    data: Parallel | None
    selected: int  # index into data.lines
    width: int
    height: int


class ParallelPlot(Widget):
    DEFAULT_CSS = """
    ParallelPlot { width: 1fr; height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: Parallel | None = None
        self.selected = 0
        self._cache: tuple[Frame, Text] | None = None

    def show(self, data: Parallel, selected: int) -> None:
        self.data, self.selected = data, selected
        self.refresh()

    def render(self) -> Text:
        frame = Frame(self.data, self.selected, self.size.width, self.size.height)
        if self._cache is None or self._cache[0] != frame:
            self._cache = (frame, build(frame))
        return self._cache[1]


def build(frame: Frame) -> Text:
    """The plot as styled text, `frame.width` x `frame.height` cells at most."""
    data, width, height = frame.data, frame.width, frame.height
    plot_h = height - 3  # axis names and top values above, bottom values below
    if data is None or not data.lines or not data.axes:
        return Text(data.message if data else "", style=AXIS)
    k = len(data.axes)
    if plot_h < 2 or width < 8 * k:
        return Text(f"too small for {k} axes: a wider terminal", style=AXIS)
    margin = min(6, width // (2 * k))  # room for the first and last axis's labels
    columns = [margin + round(i * (width - 1 - 2 * margin) / (k - 1)) for i in range(k)]
    room = (width - 2 * margin) // (k - 1) - 1  # a label's width between two axes
    dots_h = plot_h * 4
    series = []
    order = [i for i in range(len(data.lines)) if i != frame.selected] + [frame.selected]
    for i in order:
        line = data.lines[i]
        color = SELECTED if i == frame.selected else OTHERS
        xs = [2.0 * c for c in columns]
        ys = [y * (dots_h - 1) for y in line.ys]
        series.append((Line("", xs, ys, color), xs, ys))
    cells = raster(series, width, plot_h, (0.0, 2.0 * width - 1), (0.0, dots_h - 1.0))

    rows: list[Text] = [
        _labels([(c, a.name) for c, a in zip(columns, data.axes, strict=True)], width, room,
                Style(bold=True)),
        _labels([(c, a.top) for c, a in zip(columns, data.axes, strict=True)], width, room, AXIS),
    ]  # fmt: skip
    beside: dict[tuple[int, int], str] = {}  # (row, column) -> a category level's label
    for c, axis in zip(columns, data.axes, strict=True):
        n = len(axis.levels)
        for j, level in enumerate(axis.levels):
            y = 0.5 if n == 1 else j / (n - 1)
            beside[(round((1 - y) * (dots_h - 1)) >> 2, c + 1)] = level[: max(room - 1, 1)]
    axis_columns = set(columns)
    for r in range(plot_h):
        row = Text()
        c = 0
        while c < width:
            label = beside.get((r, c))
            if label:
                row.append(label, style=AXIS)
                c += len(label)
                continue
            mask, color = cells[r][c]
            if mask:
                style = Style(color=RICH_COLORS.get(color, color), dim=color == OTHERS)
                row.append(chr(BRAILLE_BASE + mask), style=style)
            else:
                row.append("│" if c in axis_columns else " ", style=AXIS)
            c += 1
        rows.append(row)
    rows.append(
        _labels([(c, a.bottom) for c, a in zip(columns, data.axes, strict=True)], width, room, AXIS)
    )
    return Text("\n").join(rows[:height])


def _labels(items: list[tuple[int, str]], width: int, room: int, style: Style) -> Text:
    """Each label centred on its axis's column, cut to `room` and kept inside the width."""
    row = [" "] * width
    for c, label in items:
        label = label[:room]
        start = min(max(c - len(label) // 2, 0), width - len(label))
        row[start : start + len(label)] = label
    return Text("".join(row).rstrip(), style=style)
