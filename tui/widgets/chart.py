"""Our own thin chart widget over textual-plotext's PlotextPlot.

Screens call `show(lines, ...)` (attributes down); the chart builds its figure with a
fresh plotext `Plot` (never the global plotext state) when it next renders, and only when
the figure changed. plotext is pure Python: a busy chart costs 10-25 ms to build. Building
in a worker thread was measured and was slower (p50 key latency 95 ms against 65 ms: the
threads compete with the UI for the GIL), so builds stay on the UI thread, kept rare by
the screens' 2 Hz redraw and by thinning lines to the chart's width. If textual-plotext
lags behind Textual, only this file changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

PALETTE = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white")


@dataclass(frozen=True)
class Line:
    label: str  # shown in the legend; "" for none
    xs: list[float]
    ys: list[float]
    color: str = "cyan"
    scatter: bool = False


@dataclass(frozen=True)
class Figure:
    """Everything one build needs, captured on the UI thread."""

    lines: tuple[Line, ...]
    title: str
    xlabel: str
    ylabel: str
    ylog: bool
    width: int
    height: int
    theme: str


class Chart(PlotextPlot):
    DEFAULT_CSS = """
    Chart { height: 1fr; min-height: 5; }
    """

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.lines: list[Line] = []
        self.xlabel = ""
        self.ylabel = ""
        self.ylog = False
        self._cache: tuple[Figure, Text] | None = None

    def show(
        self,
        lines: list[Line],
        xlabel: str = "",
        ylog: bool = False,
        title: str | None = None,
        ylabel: str = "",
    ) -> None:
        self.lines, self.xlabel, self.ylog, self.ylabel = lines, xlabel, ylog, ylabel
        if title is not None:
            self.title = title
        self.refresh()

    def render(self) -> Text:
        # Build only when the figure changed (data, size or theme), not on every repaint.
        figure = Figure(
            tuple(self.lines),
            self.title,
            self.xlabel,
            self.ylabel,
            self.ylog,
            self.size.width,
            self.size.height,
            self._get_plotext_theme_name(self.app.theme),
        )
        if self._cache is None or self._cache[0] != figure:
            self._cache = (figure, Text.from_ansi(build(figure)))
        return self._cache[1]


def build(figure: Figure) -> str:
    """The plot as ANSI text."""
    plt = Plot()
    plt.title(figure.title)
    plt.xlabel(figure.xlabel)
    ylabel = figure.ylabel
    drawn = False
    for line in figure.lines:
        # plotext cannot place NaN, inf or a missing value (a diverged run has them)
        pairs = [
            (x, y)
            for x, y in zip(line.xs, line.ys, strict=True)
            if y is not None and math.isfinite(y) and (y > 0 or not figure.ylog)
        ]
        xs = thin([p[0] for p in pairs], figure.width)
        ys = thin([p[1] for p in pairs], figure.width)
        if figure.ylog:
            ys = [math.log10(y) for y in ys]
        if not xs:
            continue
        drawn = True
        draw = plt.scatter if line.scatter or len(xs) == 1 else plt.plot
        draw(xs, ys, color=line.color, label=line.label or None, marker="braille")
    if figure.ylog:
        ylabel = (ylabel + " " if ylabel else "") + "(log10)"
    if ylabel:
        plt.ylabel(ylabel)
    if not drawn:
        plt.text("waiting for data", 0, 0)
        plt.xlim(-1, 1)
        plt.ylim(-1, 1)
    plt.plotsize(figure.width, figure.height)
    plt._set_size(figure.width, figure.height)
    plt.theme(figure.theme)
    return plt.build()


def thin(values: list[float], limit: int) -> list[float]:
    """At most about `limit` evenly spaced values, the last always kept: a terminal column
    shows one point per line anyway, and plotext's cost grows with the points."""
    if len(values) <= limit:
        return values
    step = len(values) / limit
    return [values[int(i * step)] for i in range(limit - 1)] + [values[-1]]
