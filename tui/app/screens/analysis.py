"""Analysis: which swept fields matter (importance), a slice per field, a pivot of two
fields, and where the top configs sit on every field. Opened with `i` from Results. `s`
cycles the scale the metric is read on (linear, log, rank; engine/analysis/scale.py), which
the subtitle and the first line name.

All numbers come from engine/analysis/importance.py; this screen only lays them out as text, so the
same sweep shows the same screen every time.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from hypertui.engine.analysis.export import cell, fmt
from hypertui.engine.analysis.importance import Analysis, Slice, analyze, pivot
from hypertui.engine.core.objective import objective
from hypertui.engine.store.store import Store

BLOCKS = " ▏▎▍▌▋▊▉█"
HEAT = ["#1a9850", "#66bd63", "#a6d96a", "#fee08b", "#fdae61", "#f46d43", "#d73027"]


def hbar(fraction: float, width: int) -> str:
    """A horizontal bar of `fraction` (0..1) of `width` cells, in eighths."""
    if math.isnan(fraction):
        return ""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    return "█" * (eighths // 8) + (BLOCKS[eighths % 8] if eighths % 8 else "")


def importance_text(result: Analysis, width: int = 20) -> Text:
    text = Text()
    name_w = max((len(s.name) for s in result.importance), default=0)
    for s in result.importance:
        share = "  -" if math.isnan(s.share) else f"{s.share:4.0%}"
        style = "bold" if s.kind == "main" else "dim" if s.kind in ("seeds", "other") else ""
        text.append(f"{s.name:<{name_w}} {share} ", style=style)
        text.append(hbar(s.share, width) + "\n", style="dim" if s.kind == "seeds" else "green")
    if not result.importance:
        text.append("nothing to rank: " + result.method_text + "\n", style="dim")
    return text


def slice_text(sl: Slice, result: Analysis, width: int = 20) -> Text:
    """One row per value: a bar scaled from the best to the worst mean, the mean and CI."""
    means = [p.mean for p in sl.points]
    lo, hi = (min(means), max(means)) if means else (0.0, 1.0)
    span = (hi - lo) or 1.0
    label_w = max((len(p.label) for p in sl.points), default=0)
    text = Text()
    for p in sl.points:
        goodness = (p.mean - lo) / span if result.higher_is_better else (hi - p.mean) / span
        ci = "" if math.isnan(p.low) else f" [{fmt(p.low, 3)}, {fmt(p.high, 3)}]"
        text.append(f"{p.label:>{label_w}} ")
        text.append(f"{hbar(0.05 + 0.95 * goodness, width):<{width}}", style="cyan")
        text.append(f" {fmt(p.mean)}{ci} n={p.n}\n")
    return text


def pivot_table(result: Analysis, rows_field: str, cols_field: str) -> Table:
    """Cell means, coloured from the best (green) to the worst (red)."""
    pv = pivot(result, rows_field, cols_field)
    values = [v for row in pv.values for v in row if not math.isnan(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = (hi - lo) or 1.0
    table = Table(f"{rows_field} \\ {cols_field}", *pv.cols, box=None, pad_edge=False)
    for label, row in zip(pv.rows, pv.values, strict=True):
        cells = []
        for v in row:
            if math.isnan(v):
                cells.append(Text("-", style="dim"))
                continue
            badness = (hi - v) / span if result.higher_is_better else (v - lo) / span
            colour = HEAT[min(len(HEAT) - 1, int(badness * len(HEAT)))]
            cells.append(Text(fmt(v), style=f"black on {colour}"))
        table.add_row(label, *cells)
    return table


def top_text(result: Analysis) -> Text:
    """Each field's values in order, the ones the top configs use highlighted with a count:
    a terminal form of parallel coordinates."""
    text = Text()
    name_w = max((len(f) for f in result.swept), default=0)
    for f in result.swept:
        used: dict[str, int] = {}
        for config in result.top:
            label = _label(result, f, config.point.get(f))
            used[label] = used.get(label, 0) + 1
        text.append(f"{f:<{name_w}} ", style="bold")
        for level in result.slices[f].points:
            n = used.get(level.label, 0)
            text.append(f" {level.label}" + (f"×{n}" if n else ""), style="reverse" if n else "dim")
            text.append(" ")
        text.append("\n")
    best = result.top[0] if result.top else None
    if best:
        point = " ".join(f"{k}={cell(v)}" for k, v in best.point.items())
        text.append(f"best: {point} → {fmt(best.mean)} (n={best.n})\n", style="green")
    return text


def _trim(text: Text) -> Text:
    text.rstrip()  # in place: no blank line under a section
    return text


def _label(result: Analysis, field: str, value) -> str:
    """The slice label a raw value falls in (binned fields: the bin containing it)."""
    labels = [p.label for p in result.slices[field].points]
    text = str(cell(value))
    if text in labels:
        return text
    for label in labels:
        lo, _, hi = label.partition("–")
        try:
            if float(lo) <= float(value) <= float(hi):
                return label
        except (TypeError, ValueError):
            continue
    return text


class AnalysisScreen(Screen):
    BINDINGS = [
        Binding("f", "next_slice", "Slice field"),
        Binding("r", "pivot_rows", "Pivot rows"),
        Binding("c", "pivot_cols", "Pivot cols"),
        Binding("s", "next_scale", "Scale"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path, sweep_id: str, top_k: int = 5) -> None:
        super().__init__()
        self.store_path, self.sweep_id, self.top_k = store_path, sweep_id, top_k
        self.slice_index = 0
        self.rows_index, self.cols_index = 0, 1

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="analysis"):
            yield Static(id="analysis-method")
            yield Static(id="analysis-importance")
            yield Static(id="analysis-slice")
            yield Static(id="analysis-pivot")
            yield Static(id="analysis-top")
        yield Footer()

    def on_mount(self) -> None:
        store = Store(self.store_path)
        self.sweep = store.sweep(self.sweep_id)
        self.runs = store.runs(self.sweep.id)
        store.close()
        self.title = f"Analysis · {self.sweep.preset} · sweep {self.sweep.id}"
        self.show(None)

    def show(self, scale: str | None) -> None:
        """Everything, on `scale` (None: the default for the values, scale.choose)."""
        sweep = self.sweep
        goal = objective(sweep.problem, self.runs, sweep.options)
        self.result = analyze(self.runs, sweep.swept, goal, top_k=self.top_k, scale=scale)
        self.sub_title = f"{self.result.scale} scale"
        arrow = "higher" if self.result.higher_is_better else "lower"
        self.query_one("#analysis-method", Static).update(
            Text.assemble(
                ("importance of each field for ", ""),
                (self.result.metric, "bold"),
                (f" ({arrow} is better): {self.result.method_text}\n", ""),
                (self.result.scale_text, "bold"),
                (" · s: next scale", "dim"),
            )
        )
        self.query_one("#analysis-importance", Static).update(_trim(importance_text(self.result)))
        top = Text(f"top {len(self.result.top)} configs on every field\n", style="bold")
        self.query_one("#analysis-top", Static).update(_trim(top + top_text(self.result)))
        self.show_slice()
        self.show_pivot()

    def show_slice(self) -> None:
        widget = self.query_one("#analysis-slice", Static)
        fields = self.result.swept
        if not fields:
            widget.update("")
            return
        sl = self.result.slices[fields[self.slice_index % len(fields)]]
        head = Text.assemble(
            (f"slice: {self.result.value_name} by {sl.field}", "bold"),
            (" (log x)" if sl.log_x else "", ""),
            (f" · others averaged · 95% CI over {sl.ci_over} · longer bar is better\n", "dim"),
        )
        widget.update(_trim(head + slice_text(sl, self.result)))

    def show_pivot(self) -> None:
        widget = self.query_one("#analysis-pivot", Static)
        fields = self.result.swept
        if len(fields) < 2:
            widget.update(Text("pivot: needs two swept fields", style="dim"))
            return
        rows, cols = self.pivot_fields()
        r = self.result
        head = Text.assemble(
            (f"pivot: {'mean ' * (r.scale == 'linear')}{r.value_name}, {rows} × {cols}", "bold"),
            (" · r/c: other fields", "dim"),
        )
        table = pivot_table(self.result, rows, cols)
        widget.update(Group(head, table))

    def pivot_fields(self) -> tuple[str, str]:
        fields = self.result.swept
        rows = fields[self.rows_index % len(fields)]
        cols = fields[self.cols_index % len(fields)]
        return rows, cols

    def _step(self, attr: str, other: str) -> None:
        """Move one pivot axis to the next field; onto the other axis's field, they swap."""
        fields = self.result.swept
        if len(fields) < 2:
            return
        old = getattr(self, attr) % len(fields)
        new = (old + 1) % len(fields)
        if new == getattr(self, other) % len(fields):
            setattr(self, other, old)
        setattr(self, attr, new)
        self.show_pivot()

    def action_pivot_rows(self) -> None:
        self._step("rows_index", "cols_index")

    def action_pivot_cols(self) -> None:
        self._step("cols_index", "rows_index")

    def action_next_scale(self) -> None:
        allowed = self.result.scales  # log only where every value is above 0
        self.show(allowed[(allowed.index(self.result.scale) + 1) % len(allowed)])

    def action_next_slice(self) -> None:
        self.slice_index += 1
        self.show_slice()

    def action_back(self) -> None:
        self.app.pop_screen()
