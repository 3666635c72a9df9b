"""Our own thin chart widget over textual-plotext's PlotextPlot.

Screens set `lines` (attributes down); the chart redraws only when they change. Each
chart owns its own plotext `Plot`, never the global plotext state. If textual-plotext
lags behind Textual, only this file changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual_plotext import PlotextPlot

PALETTE = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white")


@dataclass(frozen=True)
class Line:
    label: str  # shown in the legend; "" for none
    xs: list[float]
    ys: list[float]
    color: str = "cyan"
    scatter: bool = False


class Chart(PlotextPlot):
    DEFAULT_CSS = """
    Chart { height: 1fr; min-height: 5; }
    """

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.lines: list[Line] = []
        self.xlabel = ""
        self.ylog = False
        self.ylabel = ""

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
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel(self.xlabel)
        if self.ylabel:
            plt.ylabel(self.ylabel)
        drawn = False
        for line in self.lines:
            xs, ys = line.xs, line.ys
            if self.ylog:
                pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y > 0]
                xs, ys = [p[0] for p in pairs], [math.log10(p[1]) for p in pairs]
            if not xs:
                continue
            drawn = True
            draw = plt.scatter if line.scatter or len(xs) == 1 else plt.plot
            draw(xs, ys, color=line.color, label=line.label or None, marker="braille")
        if self.ylog:
            plt.ylabel((self.ylabel + " " if self.ylabel else "") + "(log10)")
        if not drawn:
            plt.text("waiting for data", 0, 0)
            plt.xlim(-1, 1)
            plt.ylim(-1, 1)
        self.refresh()
