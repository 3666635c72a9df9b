"""Results: a sweep's grouped comparison, sortable, exportable; a group opens its runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from hypertui.engine.analysis import pbt
from hypertui.engine.analysis.claims import claim_of_toml, judge_sweep
from hypertui.engine.analysis.compare import Comparison, compare_sweep, run_metrics, spread_note
from hypertui.engine.analysis.export import (
    cell,
    curves_csv,
    fmt,
    grouped_csv,
    grouped_markdown,
    mean_std,
    runs_csv,
    write_atomic,
)
from hypertui.engine.analysis.significance import versus_best
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.paths import export_path
from hypertui.engine.core.records import OWN_LOOP_PROBLEMS
from hypertui.engine.store.store import Store
from hypertui.tui.text.safe import clean, escape, plain

TEST_NOTE = "test_* with the best epoch's weights (last_test_*: the last epoch's); "


def with_n(stat, n_group: int) -> str:
    """mean ± std, with the metric's own n when non-finite values left it short of the group's."""
    text = mean_std(stat)
    return f"{text} (n={stat.n})" if stat is not None and stat.n < n_group else text


VERDICT_STYLE = {"holds": "green", "does not hold": "red", "inconclusive": "yellow"}


def claim_text(sweep, runs: list) -> str:
    """The preset's claim, then each checkable form of it with its verdict."""
    lines = [f"claim: {escape(claim)}"] if (claim := claim_of_toml(sweep.preset_toml)) else []
    for v in judge_sweep(sweep.preset_toml, sweep.problem, runs, sweep.swept):
        style = VERDICT_STYLE[v.verdict]
        lines.append(f"[{style}]{v.verdict}[/{style}]: {escape(v.check)} — {escape(v.detail)}")
    return "\n".join(lines)


def table_rows(
    comp: Comparison, versus: list | None = None
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, str]]]:
    """Column keys, raw values per row (for sorting) and display text per row.

    `versus` (engine/analysis/significance.py, one per group) adds "vs best": "=" marks a row tied
    with the best, else its Tukey-adjusted p; "too few seeds" where the seeds cannot decide.
    """
    pruned = ["pruned"] if any(g.n_pruned for g in comp.groups) else []  # halving sweeps
    columns = [*comp.swept, "n", "vs best", "diverged", *pruned, "failed", *comp.metrics]
    columns += ["min", "max"]
    columns.append("Δ vs best")  # the row minus the best, 95% interval: last, it is wide
    versus = versus or [None] * len(comp.groups)
    raw, text = [], []
    for g, v in zip(comp.groups, versus, strict=True):
        main = g.stats.get(comp.main)
        r: dict[str, Any] = {f: cell(g.point[f]) for f in comp.swept}
        r |= {"n": g.n_finished, "diverged": g.n_diverged, "pruned": g.n_pruned}
        r |= {"failed": g.n_failed}
        r |= {m: (g.stats[m].mean if m in g.stats else None) for m in comp.metrics}
        r |= {"min": main.min if main else None, "max": main.max if main else None}
        # sort order: the best, then by p, then n/a, then rows with nothing finished
        r["vs best"] = (
            3.0 if v is None else -1.0 if v.test == "best" else 2.0 if v.tied is None else v.p
        )
        counts = ("n", "diverged", "pruned", "failed")
        t = {k: str(x) for k, x in r.items() if k in comp.swept or k in counts}
        t["vs best"] = v.marker if v else "-"
        r["Δ vs best"] = v.diff if v else None
        t["Δ vs best"] = (
            "" if v is None or v.test == "best"
            else f"{v.diff:+.3g}" + ("" if v.tied is None else f" [{v.low:+.3g}, {v.high:+.3g}]")
        )  # fmt: skip
        t |= {m: with_n(g.stats.get(m), g.n_finished) for m in comp.metrics}
        t |= {"min": fmt(r["min"]), "max": fmt(r["max"])}
        raw.append(r | {"_group": g})
        text.append(t)
    return columns, raw, text


REFRESH_S = 2.0  # how often Results looks for trials a running sweep ended


class ResultsScreen(Screen):
    BINDINGS = [
        Binding("s", "sort", "Sort by column"),
        Binding("a", "all_columns", "All columns"),
        Binding("e", "export_table", "Export table"),
        Binding("x", "export_runs", "Export runs + curves CSV"),
        Binding("i", "analysis", "Analysis"),
        Binding("enter", "open", "Open runs", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path, sweep_id: str) -> None:
        super().__init__()
        self.store_path = store_path
        self.sweep_id = sweep_id
        self.sort_key: str | None = None
        self.reverse = False
        self.show_all = False
        self.loaded = False  # the first read is done and shown

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="results-title")
        yield Static(id="results-claim")
        yield DataTable(id="results", cursor_type="cell", zebra_stripes=True)
        yield Static("", id="results-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#results-status", Static).update("reading the sweep…")
        # The store is read and the comparison made in a thread: a 648-trial grid's takes
        # a while on a busy machine, and the UI thread must keep taking keys meanwhile.
        self.run_worker(self.load, thread=True, exclusive=True, group="results")
        self.set_interval(REFRESH_S, self.refresh_if_moved)

    def refresh_if_moved(self) -> None:
        """A running sweep's results move on: reload when a trial ended (cursor kept)."""
        if self.loaded and self.sweep.running:
            self.run_worker(self.load, thread=True, exclusive=True, group="results")

    def load(self) -> None:
        """In a worker thread: read the sweep, compare, and hand the rows to the screen
        (only when something changed since the last read)."""
        try:
            store = Store(self.store_path, create=False)
            try:
                sweep = store.sweep(self.sweep_id)
                if self.loaded and (sweep.status, sweep.counts) == (
                    self.sweep.status,
                    self.sweep.counts,
                ):
                    return
                runs = store.runs(self.sweep_id)
            finally:
                store.close()
        except HypertuiError as exc:  # a busy or damaged store: say so, keep what is shown
            self.app.call_from_thread(self.unread, str(exc))
            return
        comp = compare_sweep(sweep, runs)
        rows = table_rows(comp, versus_best(comp, runs))
        claim = claim_text(sweep, runs)
        if line := pbt.winner_line(runs, comp.main, comp.higher_is_better):
            claim = f"{claim}\n{escape(line)}" if claim else escape(line)
        self.app.call_from_thread(self.show, sweep, runs, comp, rows, claim)

    def show(self, sweep, runs: list, comp: Comparison, rows, claim: str) -> None:
        table = self.query_one("#results", DataTable)
        cursor = table.cursor_coordinate
        self.sweep, self.runs, self.comp = sweep, runs, comp
        self.columns, self.raw, self.text = rows
        self.query_one("#results-claim", Static).update(claim)
        self.title = f"Results · {clean(sweep.preset)} · sweep {sweep.id}"
        self.fill()
        if self.loaded:
            table.cursor_coordinate = cursor
        else:
            self.loaded = True
            self.refresh_bindings()

    def unread(self, why: str) -> None:
        self.query_one("#results-status", Static).update(plain(why, "red"))
        if not self.loaded:
            self.notify(why, severity="error", timeout=8, markup=False)

    def check_action(self, action: str, parameters) -> bool | None:
        """Keys on the sweep's rows wait for them (back and analysis do not)."""
        if action in ("back", "analysis"):
            return True
        return self.loaded

    @property
    def seeds_note(self) -> str:
        """What varies between a group's runs: a script's runs say only their seed."""
        return spread_note(self.comp)

    def caption(self) -> str:
        if self.sort_key:
            order = "descending" if self.reverse else "ascending"
            ranked = f"sorted by {self.sort_key} ({order})"
        else:
            arrow = "higher" if self.comp.higher_is_better else "lower"
            ranked = f"ranked by {self.comp.main} ({arrow} is better)"
        test = "" if self.comp.own_loop else TEST_NOTE
        return (
            f"[b]{escape(self.sweep.preset)}[/b] ({self.sweep.status}, {self.sweep.n_done}/"
            f"{self.sweep.n_runs} runs) — {ranked}; {self.seeds_note}; {test}"
            "diverged/failed counted apart; vs best: Tukey's test against the best, one "
            "error term pooled over all groups (seeds as blocks when all ran the same)"
        )

    def visible_columns(self) -> list[str]:
        if self.show_all:
            return self.columns
        # Constant config and count columns hide; metrics never do (a seeds-only sweep has
        # one group, and its metrics are the point of it).
        always = {*self.comp.metrics, "n", "min", "max", "vs best"}
        return [c for c in self.columns if c in always or len({t[c] for t in self.text}) > 1]

    def fill(self) -> None:
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        columns = self.visible_columns()
        for c in columns:
            label = c + (
                " ▼" if c == self.sort_key and self.reverse else " ▲" if c == self.sort_key else ""
            )
            table.add_column(label, key=c)
        self.query_one("#results-title", Static).update(self.caption())
        order = self.order()
        for i in order:
            table.add_row(*(plain(self.text[i][c]) for c in columns), key=str(i))
        hidden = len(self.columns) - len(columns)
        self.query_one("#results-status", Static).update(
            f"{hidden} columns that do not vary are hidden (a shows all)" if hidden else ""
        )

    def order(self) -> list[int]:
        """Row indices as shown: the ranking, or the chosen column's order."""
        order = list(range(len(self.raw)))
        if self.sort_key:

            def key(i: int):
                v = self.raw[i][self.sort_key]
                return (v is None, v if not isinstance(v, str) else str(v))

            order.sort(key=key, reverse=self.reverse)
            if self.reverse:  # keep empty cells last either way
                order.sort(key=lambda i: self.raw[i][self.sort_key] is None)
        return order

    def action_sort(self) -> None:
        table = self.query_one("#results", DataTable)
        if not table.columns:
            return
        column = self.visible_columns()[table.cursor_column]
        self.reverse = not self.reverse if self.sort_key == column else False
        self.sort_key = column
        self.fill()
        table.move_cursor(column=self.visible_columns().index(column))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.query_one("#results", DataTable).move_cursor(column=event.column_index)
        self.action_sort()

    def action_all_columns(self) -> None:
        self.show_all = not self.show_all
        self.fill()

    def _write(self, kind: str, text: str, suffix: str) -> Path | None:
        path = export_path(self.sweep.preset, self.sweep.id, kind, suffix)
        try:
            write_atomic(path, text)
        except HypertuiError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return None
        return path

    def action_export_table(self) -> None:
        shown = replace(self.comp, groups=[self.raw[i]["_group"] for i in self.order()])
        csv_path = self._write("grouped", grouped_csv(shown), "csv")
        md_path = self._write("grouped", grouped_markdown(shown), "md")
        if csv_path and md_path:
            self.show_written(f"wrote {csv_path} and {md_path.name}")

    def action_export_runs(self) -> None:
        path = self._write(
            "runs", runs_csv(self.runs, self.sweep.problem in OWN_LOOP_PROBLEMS), "csv"
        )
        if path:
            self.export_curves(path)

    @work(thread=True, exclusive=True, group="curves")
    def export_curves(self, runs_path: Path) -> None:
        """Every report of every run beside the runs CSV (read in a worker: a big sweep's
        curves are many rows)."""
        store = Store(self.store_path)
        try:
            points = {r.id: store.points(r.id) for r in self.runs}
        finally:
            store.close()
        text = curves_csv(self.runs, points)
        path = export_path(self.sweep.preset, self.sweep.id, "curves", "csv")
        try:
            write_atomic(path, text)
        except HypertuiError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        self.app.call_from_thread(self.show_written, f"wrote {runs_path} and {path.name}")

    def show_written(self, message: str) -> None:
        self.query_one("#results-status", Static).update(plain(message))
        self.notify(message, title="Exported", timeout=8, markup=False)

    def action_open(self) -> None:
        table = self.query_one("#results", DataTable)
        if not table.row_count:
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        group = self.raw[int(row_key.value)]["_group"]
        runs = [r for r in self.runs if r.id in group.run_ids]
        self.app.push_screen(RunsScreen(self.store_path, runs, self.comp.main))

    def action_analysis(self) -> None:
        from hypertui.tui.app.screens.analysis import AnalysisScreen

        self.app.push_screen(AnalysisScreen(self.store_path, self.sweep_id))

    def action_back(self) -> None:
        self.app.pop_screen()


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Run detail", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path, runs: list, metric: str) -> None:
        super().__init__()
        self.store_path, self.runs, self.metric = store_path, runs, metric

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        from hypertui.tui.text.report import describe_point

        self.title = f"Runs · {describe_point(self.runs[0].point)}" if self.runs else "Runs"
        table = self.query_one("#runs", DataTable)
        score = self.metric.removeprefix("val_")
        folds = any(r.fold for r in self.runs)  # cross-validation: the fold tells runs apart
        table.add_columns(
            "run",
            "seed",
            *(["fold"] if folds else []),
            "status",
            self.metric,
            f"best {score}",
            f"test {score}",
            "epochs",
            "time s",
            "reason",
        )
        for r in self.runs:
            m = run_metrics(r)
            table.add_row(
                r.id,
                str(r.seed),
                *([str(r.fold)] if folds else []),
                r.status,
                fmt(m.get(self.metric)),
                fmt(m.get(f"best_{self.metric}")),
                fmt(m.get(f"test_{score}")),
                fmt(r.epochs_done),
                fmt(r.wall_s, 3),
                plain(r.reason),
                key=r.id,
            )

    def action_open(self) -> None:
        table = self.query_one("#runs", DataTable)
        if table.row_count:
            from hypertui.tui.app.screens.detail import RunDetailScreen

            run_id = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.push_screen(RunDetailScreen(self.store_path, run_id))

    def action_back(self) -> None:
        self.app.pop_screen()
