"""Analysis: which swept fields matter (importance), a slice per field, a pivot of two
fields and the best config; `v` switches to two plots: the metric against each numeric swept
field (a point per run, a mark per config's mean; log x for a log-uniform field), the top
configs across every swept field (parallel coordinates, ↑↓ pick one) and the Pareto front of
the sweep's objectives (the preset's `objectives`, else its metric against training seconds:
every sweep records that trade-off; f/←→ the pair with 3 or more, ↑↓ a member). Opened with
`i` from Results. `s` cycles the scale the metric is read on (linear, log, rank;
engine/analysis/scale.py), which the subtitle and the first line name.

All numbers come from engine/analysis/importance.py, plots.py and pareto.py; this screen only
lays them out, so the same sweep shows the same screen every time.
"""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, Static

from hypertui.engine.analysis.export import cell, fmt
from hypertui.engine.analysis.importance import Analysis, Slice, analyze, pivot
from hypertui.engine.analysis.pareto import (
    corners,
    front,
    higher_is_better,
    spans_decades,
    sweep_objectives,
    value_text,
)
from hypertui.engine.analysis.plots import (
    TOP_LINES,
    left_out,
    numeric_fields,
    parallel,
    random_kinds,
    scatter,
)
from hypertui.engine.core.objective import objective
from hypertui.engine.store.store import Store
from hypertui.tui.app.widgets.chart import RICH_COLORS, Chart, Line
from hypertui.tui.app.widgets.parallel import OTHERS, SELECTED, ParallelPlot

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


def best_text(result: Analysis) -> Text:
    """The best config in one line; the top configs on every field are the parallel view."""
    best = result.top[0] if result.top else None
    if not best:
        return Text("best: no config has a finished run", style="dim")
    point = " ".join(f"{k}={cell(v)}" for k, v in best.point.items())
    return Text.assemble(
        (f"best: {point} → {fmt(best.mean)} (n={best.n})", "green"),
        (f"\nv: the top {TOP_LINES} on every swept field (parallel coordinates)", "dim"),
    )


def _trim(text: Text) -> Text:
    text.rstrip()  # in place: no blank line under a section
    return text


VIEWS = ("tables", "scatter", "parallel", "pareto")
PANES = {
    "tables": "analysis",
    "scatter": "analysis-scatter",
    "parallel": "analysis-parallel",
    "pareto": "analysis-pareto",
}
RUN_DOT, MEAN_TICK = OTHERS, SELECTED  # the scatter's colours: the parallel view's too
DOT_STYLE, TICK_STYLE = (RICH_COLORS.get(c, c) for c in (RUN_DOT, MEAN_TICK))  # Rich's names
TICK = 0.012  # half a config mean's tick, as a share of the x axis
# The Pareto front's members, its edge (drawn under them) and the member ↑↓ picked (a cross)
FRONT, EDGE, PICKED = SELECTED, "blue", "white"
FRONT_STYLE, EDGE_STYLE = (RICH_COLORS.get(c, c) for c in (FRONT, EDGE))
CROSS_X, CROSS_Y = 0.015, 0.07  # half the picked member's ╳, as a share of each axis (a
# plot has about 4 times more dots across than up)


class AnalysisScreen(Screen):
    BINDINGS = [
        Binding("v", "next_view", "View"),
        Binding("f,right", "next_field", "Field"),
        Binding("left", "prev_field", "Previous field", show=False),
        Binding("up", "move(-1)", "Config up", show=False),
        Binding("down", "move(1)", "Config down", show=False),
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
        self.view = "tables"
        self.field_index = 0  # the scatter's field, among the numeric ones
        self.selected = 0  # the parallel view's highlighted config, 0 = the best
        self.pair_index = 0  # the Pareto view's pair of objectives
        self.member = 0  # the Pareto view's highlighted member, 0 = best on the first

    def compose(self) -> ComposeResult:
        yield Header()
        with ContentSwitcher(initial="analysis"):
            with VerticalScroll(id="analysis"):
                yield Static(id="analysis-method")
                yield Static(id="analysis-importance")
                yield Static(id="analysis-slice")
                yield Static(id="analysis-pivot")
                yield Static(id="analysis-top")
            with Vertical(id="analysis-scatter"):
                yield Static(id="scatter-head")
                yield Chart(id="scatter-chart")
                yield Static(id="scatter-foot")
            with Vertical(id="analysis-parallel"):
                yield Static(id="parallel-head")
                yield ParallelPlot(id="parallel-plot")
                yield Static(id="parallel-foot")
            with Vertical(id="analysis-pareto"):
                yield Static(id="pareto-head")
                yield Chart(id="pareto-chart")
                yield Static(id="pareto-table")
                yield Static(id="pareto-foot")
        yield Footer()

    def on_mount(self) -> None:
        store = Store(self.store_path)
        self.sweep = store.sweep(self.sweep_id)
        self.runs = store.runs(self.sweep.id)
        store.close()
        self.kinds = random_kinds(self.sweep.preset_toml)  # which fields were log-uniform
        self.title = f"Analysis · {self.sweep.preset} · sweep {self.sweep.id}"
        goal = objective(self.sweep.problem, self.runs, self.sweep.options)
        names, self.named_objectives = sweep_objectives(self.sweep.preset_toml, goal.main)
        higher = [higher_is_better(n, goal.main, goal.higher) for n in names]
        self.front = front(self.runs, self.sweep.swept, names, higher)
        self.pairs = list(combinations(range(len(names)), 2))
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
        self.query_one("#analysis-top", Static).update(best_text(self.result))
        self.numeric = numeric_fields(self.result, self.runs)
        self.top_lines = parallel(self.result, self.runs, kinds=self.kinds)
        self.left_out = left_out(self.result, self.runs)
        self.show_slice()
        self.show_pivot()
        self.show_scatter()
        self.show_parallel()
        self.show_pareto()

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

    def show_scatter(self) -> None:
        """The metric against the current numeric field, or one line saying why not."""
        head = self.query_one("#scatter-head", Static)
        chart = self.query_one("#scatter-chart", Chart)
        self.query_one("#scatter-foot", Static).update(Text(self.left_out, style="dim"))
        r, fields = self.result, self.numeric
        if not fields:
            why = (
                f"no swept field is numeric ({', '.join(r.swept)}): the slices (v) show them"
                if r.swept
                else "nothing varies between the runs analysed"
            )
            head.update(Text(f"scatter: {why}", style="dim"))
            chart.display = False
            return
        field = fields[self.field_index % len(fields)]
        sc = scatter(r, self.runs, field, self.kinds)
        if sc.message:
            head.update(Text(f"scatter: {sc.message}", style="dim"))
            chart.display = False
            return
        chart.display = True
        where = f" ({self.field_index % len(fields) + 1}/{len(fields)} · f/←→ next)"
        x_note = f" · log x: {sc.x_why}" if sc.log_x else f" · {sc.x_why}" if sc.x_why else ""
        per = (
            f"a run ({sc.runs_per_config} per config, so their spread shows)"
            if sc.runs_per_config > 1
            else "a run (one per config)"
        )
        head.update(
            Text.assemble(
                (f"{r.metric} against {field}", "bold"),
                (where * (len(fields) > 1) + x_note + "\n", "dim"),
                ("⠂ ", DOT_STYLE),
                (per, ""),
                *([("  ─ ", TICK_STYLE), ("config mean", "")] if sc.mean_xs else []),
            )
        )
        lines = [Line("", sc.xs, sc.ys, RUN_DOT, scatter=True)]
        lines += [
            Line("", [*_tick(x, sc.xs, sc.log_x)], [y, y], MEAN_TICK)
            for x, y in zip(sc.mean_xs, sc.mean_ys, strict=True)
        ]
        ylabel = {"rank": f"{r.metric} rank (0 = lowest)"}.get(r.scale, r.metric)
        chart.show(lines, xlabel=field, ylog=sc.log_y, ylabel=ylabel, xlog=sc.log_x)

    def show_parallel(self) -> None:
        data = self.top_lines
        head = self.query_one("#parallel-head", Static)
        plot = self.query_one("#parallel-plot", ParallelPlot)
        foot = self.query_one("#parallel-foot", Static)
        if data.message:
            head.update(Text(f"parallel coordinates: {data.message}", style="dim"))
            plot.display = False
            foot.update(Text(self.left_out, style="dim"))
            return
        plot.display = True
        self.selected = min(self.selected, len(data.lines) - 1)
        r = self.result
        head.update(
            Text.assemble(
                (f"top {len(data.lines)} of {data.n_configs} configs by {mean_name(r)}", "bold"),
                (" · best at the top · ↑↓ pick one", "dim"),
            )
        )
        plot.show(data, self.selected)
        line = data.lines[self.selected]
        point = " ".join(f"{k}={cell(v)}" for k, v in line.point.items())
        foot.update(
            Text.assemble(
                ("▶ ", TICK_STYLE),
                (f"#{line.rank}: {point} → {fmt(line.mean)} (n={line.n})", ""),
                (f"\n{self.left_out}" if self.left_out else "", "dim"),
            )
        )

    def show_pareto(self) -> None:
        """Two objectives in braille, every config a point and the front's members drawn
        over them (a staircase when the front is of these two), then its members' table."""
        fr = self.front
        head = self.query_one("#pareto-head", Static)
        chart = self.query_one("#pareto-chart", Chart)
        table = self.query_one("#pareto-table", Static)
        self.query_one("#pareto-foot", Static).update(Text(fr.left_out(), style="dim"))
        if fr.message:
            head.update(Text(f"Pareto front: {fr.message}", style="dim"))
            chart.display = table.display = False
            return
        chart.display = table.display = True
        members = fr.members
        self.member = min(self.member, len(members) - 1)
        a, b = self.pairs[self.pair_index % len(self.pairs)]  # y: the earlier objective
        names, higher = fr.objectives, fr.higher
        arrows = " ".join(f"{n} {'↑' if h else '↓'}" for n, h in zip(names, higher, strict=True))
        runs = max(c.n for c in fr.configs)
        over = f"means of {runs} runs" if runs > 1 else "one run each"
        if len(self.pairs) > 1:
            note = (
                f"\nthe front is over all {len(names)}; drawn: {names[b]} × {names[a]} "
                f"({self.pair_index % len(self.pairs) + 1}/{len(self.pairs)} · f/←→ next pair)"
            )
        elif not self.named_objectives:
            note = f"\ndefault: {names[0]} against {names[1]}; a preset's "
            note += "objectives = [...] names others"
        else:
            note = ""
        head.update(
            Text.assemble(
                (f"Pareto front: {len(members)} of {len(fr.configs)} configs", "bold"),
                (f" ({over}) · {arrows}", ""),
                (note, "dim"),
                ("\n⠂ ", DOT_STYLE),
                ("config  ", ""),
                ("⠂ ", FRONT_STYLE),
                ("on the front", ""),
                *([(" ─ ", EDGE_STYLE), ("its edge", "")] if len(names) == 2 else []),
                ("  ╳ ", ""),
                ("picked (↑↓)", ""),
            )
        )
        xs = [c.values[b] for c in fr.configs]
        ys = [c.values[a] for c in fr.configs]
        xlog = spans_decades(xs)
        ylog = (self.result.scale == "log" if a == 0 else spans_decades(ys)) and min(ys) > 0
        rest = [c for c in fr.configs if not c.on_front]
        lines = [Line("", [c.values[b] for c in rest], [c.values[a] for c in rest], RUN_DOT, True)]
        fx, fy = [c.values[b] for c in members], [c.values[a] for c in members]
        if len(names) == 2:  # the front of exactly these two: its staircase
            lines.append(Line("", *corners(fx, fy, higher[b], higher[a]), EDGE))
        lines.append(Line("", fx, fy, FRONT, scatter=True))
        lines += _cross(fx[self.member], fy[self.member], xs, ys, xlog, ylog)
        chart.show(lines, xlabel=names[b], ylabel=names[a], xlog=xlog, ylog=ylog)
        table.update(self.members_table(members))

    def members_table(self, members) -> Group:
        """The front's members, best first on the first objective: a window of rows around
        the one ↑↓ picked, as many as the screen's height leaves the chart."""
        fr, swept = self.front, self.sweep.swept
        rows = max(3, (self.app.size.height - 16) // 2)
        start = max(0, min(self.member - rows // 2, len(members) - rows))
        table = Table("", *swept, *fr.objectives, "n", box=None, pad_edge=False)
        for i, c in enumerate(members[start : start + rows], start):
            mark = Text("▶", style=TICK_STYLE) if i == self.member else Text(str(i + 1))
            table.add_row(
                mark,
                *(
                    Text(str(cell(c.point.get(f))), overflow="ellipsis", no_wrap=True)
                    for f in swept
                ),
                *(value_text(n, v) for n, v in zip(fr.objectives, c.values, strict=True)),
                str(c.n),
            )
        more = (
            f"members {start + 1}-{min(start + rows, len(members))} of {len(members)} · ↑↓"
            if len(members) > rows
            else "↑↓ pick a member"
        )
        return Group(table, Text(more, style="dim"))

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

    def check_action(self, action: str, parameters) -> bool | None:
        """Each view's own keys, in the footer only while it is shown."""
        if action in ("pivot_rows", "pivot_cols"):
            return self.view == "tables"
        if action == "move":
            return self.view in ("parallel", "pareto")
        if action in ("next_field", "prev_field"):
            return self.view != "parallel" and (self.view != "pareto" or len(self.pairs) > 1)
        return True

    def action_next_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.query_one(ContentSwitcher).current = PANES[self.view]
        if self.view == "tables":  # its arrows scroll; the plots' arrows are the screen's
            self.query_one("#analysis", VerticalScroll).focus()
        else:
            self.set_focus(None)
        self.refresh_bindings()

    def action_pivot_rows(self) -> None:
        self._step("rows_index", "cols_index")

    def action_pivot_cols(self) -> None:
        self._step("cols_index", "rows_index")

    def action_next_scale(self) -> None:
        allowed = self.result.scales  # log only where every value is above 0
        self.show(allowed[(allowed.index(self.result.scale) + 1) % len(allowed)])

    def action_next_field(self) -> None:
        self._field(1)

    def action_prev_field(self) -> None:
        self._field(-1)

    def _field(self, step: int) -> None:
        if self.view == "scatter":
            self.field_index += step
            self.show_scatter()
        elif self.view == "pareto":
            self.pair_index += step
            self.show_pareto()
        else:
            self.slice_index += step
            self.show_slice()

    def action_move(self, step: int) -> None:
        if self.view == "pareto":
            if self.front.members:
                self.member = (self.member + step) % len(self.front.members)
                self.show_pareto()
            return
        n = len(self.top_lines.lines)
        if n:
            self.selected = (self.selected + step) % n
            self.show_parallel()

    def action_back(self) -> None:
        self.app.pop_screen()


def mean_name(result: Analysis) -> str:
    """ "mean val_mse", "val_mse geo. mean" or "val_mse mean rank"."""
    return f"mean {result.metric}" if result.scale == "linear" else result.value_name


def _tick(x: float, xs: list[float], log: bool, share: float = TICK) -> tuple[float, float]:
    """The ends of a config mean's short horizontal tick at `x`, `share` of the axis each
    side."""
    lo, hi = min(xs), max(xs)
    if log:
        f = (hi / lo) ** share
        return x / f, x * f
    d = (hi - lo) * share
    return x - d, x + d


def _cross(x: float, y: float, xs: list[float], ys: list[float], xlog: bool, ylog: bool):
    """A small ╳ at (x, y), CROSS_X and CROSS_Y of the axes either side: the member ↑↓
    picked (its diagonals never run along the front's edge, which is level or upright)."""
    (x0, x1), (y0, y1) = _tick(x, xs, xlog, CROSS_X), _tick(y, ys, ylog, CROSS_Y)
    return [Line("", [x0, x1], [y0, y1], PICKED), Line("", [x0, x1], [y1, y0], PICKED)]
