"""Line and scatter charts drawn in braille, for the Live, Results, detail and Analysis screens.

Screens call `show(lines, ...)` (attributes down); the chart builds its figure when it
next renders, and only when the figure changed. The drawing is our own: each terminal
cell holds a 2x4 braille dot matrix, lines are rasterised on that dot grid, and a cell
takes the colour of the last line through it. plotext, used before, cost 7 ms for a
two-line chart and 28 ms for eight lines at 118 columns, on the UI thread, which made
key presses wait; this costs a fraction of a millisecond per line. Lines are thinned to
the chart's width first: a column shows one point per line anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

PALETTE = ("cyan", "orange", "green", "magenta", "red", "blue", "yellow", "white")
RICH_COLORS = {"orange": "dark_orange"}  # our names that Rich spells differently
BRAILLE_BASE = 0x2800
DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][column]
AXIS = Style(dim=True)
X_TICKS, Y_TICKS = 5, 5


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
    theme: tuple[tuple[str, str], ...] = ()  # our colour name -> the theme's colour
    xlog: bool = False  # x on log10, ticks labelled with the values (a log-uniform lr)


def theme_colors(variables: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Fixed names that vanish on some backgrounds, taken from the Textual theme instead:
    white (lines, the y = x line) is the theme's text colour, so it shows on a light theme."""
    pairs = {"white": "foreground", "yellow": "warning", "red": "error"}
    return tuple((k, variables[v]) for k, v in pairs.items() if variables.get(v))


class Chart(Widget):
    DEFAULT_CSS = """
    Chart { width: 1fr; height: 1fr; min-height: 5; }
    """

    def __init__(self, title: str = "", *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.lines: list[Line] = []
        self.xlabel = ""
        self.ylabel = ""
        self.ylog = False
        self.xlog = False
        self._cache: tuple[Figure, Text] | None = None

    def show(
        self,
        lines: list[Line],
        xlabel: str = "",
        ylog: bool = False,
        title: str | None = None,
        ylabel: str = "",
        xlog: bool = False,
    ) -> None:
        self.lines, self.xlabel, self.ylog, self.ylabel = lines, xlabel, ylog, ylabel
        self.xlog = xlog
        if title is not None:
            self.title = title
        self.refresh()

    def render(self) -> Text:
        # Build only when the figure changed (data or size), not on every repaint.
        figure = Figure(
            tuple(self.lines),
            self.title,
            self.xlabel,
            self.ylabel,
            self.ylog,
            self.size.width,
            self.size.height,
            theme_colors(self.app.theme_variables),
            self.xlog,
        )
        if self._cache is None or self._cache[0] != figure:
            self._cache = (figure, build(figure))
        return self._cache[1]


def build(figure: Figure) -> Text:
    """The chart as styled text, `figure.width` x `figure.height` cells at most."""
    themed = dict(figure.theme)
    figure = Figure(
        tuple(
            Line(ln.label, ln.xs, ln.ys, themed.get(ln.color, ln.color), ln.scatter)
            for ln in figure.lines
        ),
        figure.title,
        figure.xlabel,
        figure.ylabel,
        figure.ylog,
        figure.width,
        figure.height,
        xlog=figure.xlog,
    )
    series = [(line, *_points(line, figure)) for line in figure.lines]
    series = [(line, xs, ys) for line, xs, ys in series if xs]
    ylabel = figure.ylabel
    if figure.ylog:
        ylabel = (ylabel + " " if ylabel else "") + "(log scale)"

    head = [_centred(figure.title, figure.width, Style(bold=True))] if figure.title else []
    if ylabel:
        head.append(Text(ylabel[: figure.width], style=AXIS))
    # In a short chart the plot keeps at least two rows: the y label, the x label and the
    # x tick labels give way, in that order.
    xlabel = figure.xlabel + " (log scale)" * (figure.xlog and bool(figure.xlabel))
    show_xlabel, show_ticks = bool(xlabel), True
    plot_h = figure.height - len(head) - 3 - show_xlabel  # borders and tick labels
    if plot_h < 2 and ylabel:
        head, plot_h = head[:-1], plot_h + 1
    if plot_h < 2 and show_xlabel:
        show_xlabel, plot_h = False, plot_h + 1
    if plot_h < 2:
        show_ticks, plot_h = False, plot_h + 1
    if not series or plot_h < 1 or figure.width < 12:
        message = "waiting for data" if plot_h >= 1 else ""
        rows = [*head, _centred(message, figure.width, AXIS)]
        return Text("\n").join(rows)

    x_lo, x_hi = _span(x for _, xs, _ in series for x in xs)
    y_lo, y_hi = _span(y for _, _, ys in series for y in ys)
    y_labels: dict[int, str] = {}
    ticks = log_ticks if figure.ylog else nice_ticks
    for value, label in ticks(y_lo, y_hi, min(Y_TICKS, plot_h) - 1):
        y_labels.setdefault(round((y_hi - value) / (y_hi - y_lo) * (plot_h - 1)), label)
    margin = max((len(t) for t in y_labels.values()), default=1)
    plot_w = figure.width - margin - 2  # the two vertical borders
    if plot_w < 4:
        return Text("\n").join([*head, _centred("too narrow", figure.width, AXIS)])

    cells = raster(series, plot_w, plot_h, (x_lo, x_hi), (y_lo, y_hi))
    # the legend sits in the plot's top-left corner, over half its rows at most
    legend = [(line.label, line.color) for line, _, _ in series if line.label][: plot_h // 2]

    rows = list(head)
    rows.append(Text(" " * margin + "┌" + "─" * plot_w + "┐", style=AXIS))
    for r in range(plot_h):
        row = Text()
        if r in y_labels:
            row.append(y_labels[r].rjust(margin) + "┤", style=AXIS)
        else:
            row.append(" " * margin + "│", style=AXIS)
        if r < len(legend):
            label, color = legend[r]
            key = Text("⣀⣀ ", style=_color(color)) + Text(label[: plot_w - 5] + " ")
            row.append_text(key)
            start = len(key)
        else:
            start = 0
        for c in range(start, plot_w):
            mask, color = cells[r][c]
            if mask:
                row.append(chr(BRAILLE_BASE + mask), style=_color(color))
            else:
                row.append(" ")
        row.append("│", style=AXIS)
        rows.append(row)
    x_ticks = {
        round((value - x_lo) / (x_hi - x_lo) * (plot_w - 1)): label
        for value, label in (log_ticks if figure.xlog else nice_ticks)(x_lo, x_hi, X_TICKS - 1)
    }
    border = ["─"] * plot_w
    for c in x_ticks:
        border[c] = "┬"
    rows.append(Text(" " * margin + "└" + "".join(border) + "┘", style=AXIS))
    if show_ticks:
        rows.append(_x_labels(x_ticks, margin + 1, figure.width))
    if show_xlabel:
        rows.append(_centred(xlabel, figure.width, AXIS))
    return Text("\n").join(rows[: figure.height])


def _points(line: Line, figure: Figure) -> tuple[list[float], list[float]]:
    # a diverged run has NaN, inf or missing values: they cannot be placed
    pairs = [
        (x, y)
        for x, y in zip(line.xs, line.ys, strict=True)
        if x is not None
        and y is not None
        and math.isfinite(x)
        and math.isfinite(y)
        and (y > 0 or not figure.ylog)
        and (x > 0 or not figure.xlog)
    ]
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    if not line.scatter:  # a scatter keeps every point: each one is data, not a trend
        xs, ys = thin(xs, figure.width), thin(ys, figure.width)
    if figure.ylog:
        ys = [math.log10(y) for y in ys]
    if figure.xlog:
        xs = [math.log10(x) for x in xs]
    return xs, ys


def _span(values) -> tuple[float, float]:
    values = list(values)
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    return lo, hi


def raster(series, width, height, xr, yr) -> list[list[list]]:
    """[row][column] -> [braille mask, colour] for a plot area of width x height cells."""
    cells = [[[0, ""] for _ in range(width)] for _ in range(height)]
    dots_w, dots_h = width * 2, height * 4
    (x_lo, x_hi), (y_lo, y_hi) = xr, yr
    sx = (dots_w - 1) / (x_hi - x_lo)
    sy = (dots_h - 1) / (y_hi - y_lo)

    def plot(px: int, py: int, color: str) -> None:
        cell = cells[py >> 2][px >> 1]
        cell[0] |= DOT_BITS[py & 3][px & 1]
        cell[1] = color

    for line, xs, ys in series:
        dots = [
            (round((x - x_lo) * sx), round((y_hi - y) * sy)) for x, y in zip(xs, ys, strict=True)
        ]
        if line.scatter or len(dots) == 1:
            for px, py in dots:
                plot(px, py, line.color)
            continue
        for (x0, y0), (x1, y1) in zip(dots, dots[1:], strict=False):
            steps = max(abs(x1 - x0), abs(y1 - y0), 1)
            for s in range(steps + 1):
                plot(x0 + (x1 - x0) * s // steps, y0 + (y1 - y0) * s // steps, line.color)
    return cells


def _x_labels(ticks: dict[int, str], offset: int, width: int) -> Text:
    """Each label centred under its column, dropped where it would touch another."""
    row = [" "] * width
    for c, label in ticks.items():
        start = min(max(offset + c - len(label) // 2, 0), width - len(label))
        if all(ch == " " for ch in row[max(start - 1, 0) : start + len(label) + 1]):
            row[start : start + len(label)] = label
    return Text("".join(row).rstrip(), style=AXIS)


def nice_ticks(lo: float, hi: float, intervals: int) -> list[tuple[float, str]]:
    """Round values in [lo, hi], 1, 2, 2.5 or 5 times a power of ten apart, with their
    labels: up to about `intervals` + 1 of them; the two ends when no round value fits."""
    raw = (hi - lo) / (max(intervals, 1) + 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    ks = range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1)
    values = [k * step for k in ks]
    if not values:
        return [(lo, f"{lo:.3g}"), (hi, f"{hi:.3g}")]
    if step < 1e-3 or max(abs(lo), abs(hi)) >= 1e6:
        return [(v, f"{v:.3g}") for v in values]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (step / magnitude == 2.5)
    return [(v, f"{v:.{decimals}f}".lstrip("-") if v == 0 else f"{v:.{decimals}f}") for v in values]


def log_ticks(lo: float, hi: float, intervals: int) -> list[tuple[float, str]]:
    """Ticks for a log10 axis, labelled with the real values (0.01, 0.1, 1), never their
    logarithms: a label of -1 made an MSE look negative. Whole decades when two or more fit."""
    decades = list(range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1))
    if len(decades) >= 2:
        step = max(1, math.ceil((len(decades) - 1) / max(intervals, 1)))
        return [(float(k), f"{10.0**k:g}") for k in decades[::step]]
    return [(v, f"{10**v:.2g}") for v, _ in nice_ticks(lo, hi, intervals)]


def _centred(text: str, width: int, style: Style) -> Text:
    return Text(text[:width].center(width).rstrip(), style=style)


def _color(name: str) -> Style:
    return Style(color=RICH_COLORS.get(name, name))


def thin(values: list[float], limit: int) -> list[float]:
    """At most about `limit` evenly spaced values, the last always kept: a terminal column
    shows one point per line anyway, and drawing costs grow with the points."""
    if len(values) <= limit:
        return values
    step = len(values) / limit
    return [values[int(i * step)] for i in range(limit - 1)] + [values[-1]]
