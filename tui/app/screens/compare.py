"""Compare: several sweeps in one Results table and one overlay of their curves.

The table is Results' (screens/results.py) over `compare_sweeps`: one comparison whose
first swept column, `sweep`, names the sweep a group comes from, ranked and tested against
the best as a single sweep's groups are. Under it, the validation curves of each sweep's
best group (every seed), one colour per sweep; `g` draws every run instead, `m` the next
metric the runs reported. History reads and compares the sweeps before this screen opens,
so sweeps that cannot be compared (different metrics) open nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from hypertui.engine.analysis.compare import Comparison, Group, compare_sweeps
from hypertui.engine.analysis.export import write_atomic
from hypertui.engine.analysis.significance import versus_best
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.paths import export_path
from hypertui.engine.core.records import OWN_LOOP_PROBLEMS, RunRow, SweepRow
from hypertui.engine.store.store import Store
from hypertui.tui.app.screens.detail import POINT_FIELDS, point_x
from hypertui.tui.app.screens.results import REFRESH_S, ResultsScreen, table_rows
from hypertui.tui.app.widgets.chart import PALETTE, RICH_COLORS, Chart, Line, theme_colors
from hypertui.tui.text.safe import clean, escape

VIEWS = ("table and curves", "curves", "table")  # what `v` cycles through


@dataclass(frozen=True)
class Compared:
    """Sweeps read and compared: what the screen shows, made off the UI thread."""

    sweeps: list[SweepRow]  # in the order they were asked for
    runs: list[RunRow]  # every sweep's runs; their points carry `sweep`
    comp: Comparison
    rows: tuple  # table_rows(comp, versus_best(...)): columns, raw values, text


def read_compared(store_path: Path, sweep_ids: list[str]) -> Compared:
    """The sweeps' rows compared as one; HypertuiError when a sweep is missing or they
    rank by different metrics (one line)."""
    store = Store(store_path, create=False)
    try:
        sweeps = [store.sweep(i) for i in sweep_ids]
        pairs = [(s, store.runs(s.id, analysis=False)) for s in sweeps]
    finally:
        store.close()
    comp, runs = compare_sweeps(pairs)
    return Compared(sweeps, runs, comp, table_rows(comp, versus_best(comp, runs)))


def best_groups(comp: Comparison) -> dict[str, Group]:
    """Each sweep's best group with a finished run, by its `sweep` label (the ranking's)."""
    best: dict[str, Group] = {}
    for g in comp.groups:
        if comp.main in g.stats:
            best.setdefault(g.point["sweep"], g)
    return best


class CompareScreen(ResultsScreen, inherit_bindings=False):
    BINDINGS = [
        Binding("s", "sort", "Sort by column"),
        Binding("m", "next_metric", "Metric"),
        Binding("g", "every_run", "All runs"),  # again: each sweep's best group
        Binding("v", "view", "View"),  # table and curves, curves, table
        Binding("l", "log_y", "Log y"),
        Binding("a", "all_columns", "All columns"),
        Binding("e", "export_table", "Export table"),
        Binding("enter", "open", "Open runs", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path, compared: Compared) -> None:
        super().__init__(store_path, compared.sweeps[0].id)
        self.compared = compared
        self.sweep_ids = [s.id for s in compared.sweeps]
        self.metric = compared.comp.main
        self.every = False  # every run of each sweep, not only its best group
        self.ylog = False
        self.view = 0  # index in VIEWS
        self.curves: dict[str, list[dict]] = {}  # run id -> its points, read once

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="results-title")
        yield DataTable(id="results", cursor_type="cell", zebra_stripes=True)
        yield Chart(id="compare-chart")
        yield Static(id="compare-legend")
        yield Static("", id="results-status")
        yield Footer()

    def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # Results' own mount reads one sweep: here it is read
        self.show_compared(self.compared)
        self.set_interval(REFRESH_S, self.refresh_if_moved)

    def show_compared(self, compared: Compared) -> None:
        table = self.query_one("#results", DataTable)
        cursor = table.cursor_coordinate
        self.compared = compared
        self.sweeps, self.runs, self.comp = compared.sweeps, compared.runs, compared.comp
        self.sweep = self.sweeps[0]  # Results' own keys read its status
        self.columns, self.raw, self.text = compared.rows
        self.title = f"Compare · {len(self.sweeps)} sweeps"
        self.fill()
        if self.loaded:
            table.cursor_coordinate = cursor
        else:
            self.loaded = True
            self.refresh_bindings()
        self.load_curves()

    def caption(self) -> str:
        if self.sort_key:
            order = "descending" if self.reverse else "ascending"
            ranked = f"sorted by {self.sort_key} ({order})"
        else:
            arrow = "higher" if self.comp.higher_is_better else "lower"
            ranked = f"ranked by {self.comp.main} ({arrow} is better)"
        said = ", ".join(
            f"[b]{escape(s.title)}[/b] ({s.id}"
            + ("" if s.status == "done" else f", {s.status} {s.n_done}/{s.n_planned}")
            + ")"
            for s in self.sweeps
        )
        return f"{said} — {ranked}; {self.seeds_note}; vs best: Tukey's test over all groups"

    def refresh_if_moved(self) -> None:
        if self.loaded and any(s.running for s in self.sweeps):
            self.run_worker(self.load, thread=True, exclusive=True, group="results")

    def load(self) -> None:
        """In a worker: read the sweeps again once a trial of a running one ended."""
        try:
            store = Store(self.store_path, create=False)
            try:
                now = [store.sweep(i) for i in self.sweep_ids]
            finally:
                store.close()
            if [(s.status, s.counts) for s in now] == [(s.status, s.counts) for s in self.sweeps]:
                return
            compared = read_compared(self.store_path, self.sweep_ids)
        except HypertuiError as exc:
            self.app.call_from_thread(self.unread, str(exc))
            return
        self.app.call_from_thread(self.show_compared, compared)

    # -- the overlay ---------------------------------------------------------------------

    def drawn(self) -> dict[str, list[RunRow]]:
        """The runs charted, by sweep id: its best group's, or every run."""
        by_id = {r.id: r for r in self.runs}
        if self.every:
            return {s.id: [r for r in self.runs if r.sweep_id == s.id] for s in self.sweeps}
        best = best_groups(self.comp)
        drawn: dict[str, list[RunRow]] = {s.id: [] for s in self.sweeps}
        for group in best.values():
            for run_id in group.run_ids:
                drawn[by_id[run_id].sweep_id].append(by_id[run_id])
        return drawn

    @work(thread=True, exclusive=True, group="compare-curves")
    def load_curves(self) -> None:
        """Read the curves not read yet (a big sweep's every run: many rows), then draw."""
        wanted = [r.id for runs in self.drawn().values() for r in runs if r.id not in self.curves]
        if wanted:
            try:
                store = Store(self.store_path, create=False)
                try:
                    read = {i: store.points(i) for i in wanted}
                finally:
                    store.close()
            except HypertuiError as exc:
                self.app.call_from_thread(self.unread, str(exc))
                return
            self.app.call_from_thread(self.draw, read)
        else:
            self.app.call_from_thread(self.draw)

    def metrics(self) -> list[str]:
        """What the curves reported: the main metric first."""
        seen = dict.fromkeys(
            k for points in self.curves.values() for p in points for k in p if k not in POINT_FIELDS
        )
        return [self.comp.main, *(k for k in seen if k != self.comp.main)]

    def draw(self, read: dict[str, list[dict]] | None = None) -> None:
        """Chart the runs `drawn` (with the curves just `read`), one colour per sweep."""
        self.curves |= read or {}
        own = {s.id: s.problem in OWN_LOOP_PROBLEMS for s in self.sweeps}
        lines, steps = [], False
        legend = Text()
        themed = dict(theme_colors(self.app.theme_variables))
        for i, (sweep_id, runs) in enumerate(self.drawn().items()):
            color = PALETTE[i % len(PALETTE)]
            sweep = next(s for s in self.sweeps if s.id == sweep_id)
            for run in runs:
                points = self.curves.get(run.id, [])
                n_train = (run.env.get("sizes") or {}).get("train") or (
                    None if own[sweep_id] else 1
                )
                steps |= not n_train and not all(p["end_of_epoch"] for p in points)
                xs = [point_x(p, n_train) for p in points]
                lines.append(Line("", xs, [p.get(self.metric) for p in points], color))
            shown = themed.get(color, RICH_COLORS.get(color, color))
            legend.append("  " if legend else "")
            legend.append("⣀⣀ ", style=shown)
            legend.append(clean(f"{sweep.title} ({sweep.id})"))
            legend.append(f" {len(runs)} run{'s' * (len(runs) != 1)}", style="dim")
        what = "every run" if self.every else "each sweep's best group"
        self.query_one("#compare-chart", Chart).show(
            lines, "step" if steps else "epoch", self.ylog, title=f"{self.metric}: {what}"
        )
        self.query_one("#compare-legend", Static).update(legend)

    def action_next_metric(self) -> None:
        metrics = self.metrics()
        if len(metrics) < 2:
            self.notify(f"the curves report no other metric than {self.metric}", timeout=2)
            return
        self.metric = metrics[(metrics.index(self.metric) + 1) % len(metrics)]
        self.notify(f"metric: {self.metric}", timeout=1.5)
        self.draw()

    def action_every_run(self) -> None:
        self.every = not self.every
        self.load_curves()

    def action_log_y(self) -> None:
        self.ylog = not self.ylog
        self.draw()

    def action_view(self) -> None:
        """Both, the curves alone, the table alone: at 80x24 each has little room."""
        self.view = (self.view + 1) % len(VIEWS)
        curves, table = VIEWS[self.view] != "table", VIEWS[self.view] != "curves"
        self.query_one("#results", DataTable).display = table
        self.query_one("#compare-chart", Chart).display = curves
        self.query_one("#compare-legend", Static).display = curves
        self.notify(f"view: {VIEWS[self.view]}", timeout=1.5)

    def _write(self, kind: str, text: str, suffix: str) -> Path | None:
        path = export_path("compare", "+".join(self.sweep_ids), kind, suffix)
        try:
            write_atomic(path, text)
        except HypertuiError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return None
        return path
