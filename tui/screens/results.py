"""Results: a sweep's grouped comparison, sortable, exportable; a group opens its runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from engine.compare import Comparison, compare, run_metrics
from engine.errors import HypertuiError
from engine.export import cell, fmt, grouped_csv, grouped_markdown, mean_std, runs_csv, write_atomic
from engine.paths import exports_dir
from engine.store import Store


def table_rows(comp: Comparison) -> tuple[list[str], list[dict[str, Any]], list[dict[str, str]]]:
    """Column keys, raw values per row (for sorting) and display text per row."""
    pruned = ["pruned"] if any(g.n_pruned for g in comp.groups) else []  # halving sweeps
    columns = [*comp.swept, "n", "diverged", *pruned, "failed", *comp.metrics, "min", "max"]
    raw, text = [], []
    for g in comp.groups:
        main = g.stats.get(comp.main)
        r: dict[str, Any] = {f: cell(g.point[f]) for f in comp.swept}
        r |= {"n": g.n_finished, "diverged": g.n_diverged, "pruned": g.n_pruned}
        r |= {"failed": g.n_failed}
        r |= {m: (g.stats[m].mean if m in g.stats else None) for m in comp.metrics}
        r |= {"min": main.min if main else None, "max": main.max if main else None}
        counts = ("n", "diverged", "pruned", "failed")
        t = {k: str(v) for k, v in r.items() if k in comp.swept or k in counts}
        t |= {m: mean_std(g.stats.get(m)) for m in comp.metrics}
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
        Binding("x", "export_runs", "Export runs CSV"),
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

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="results-title")
        yield DataTable(id="results", cursor_type="cell", zebra_stripes=True)
        yield Static("", id="results-status")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.set_interval(REFRESH_S, self.refresh_if_moved)

    def refresh_if_moved(self) -> None:
        """A running sweep's results move on: reload when a trial ended (cursor kept)."""
        if not self.sweep.running:
            return
        store = Store(self.store_path, create=False)
        now = store.sweep(self.sweep_id)
        store.close()
        if (now.status, now.counts) != (self.sweep.status, self.sweep.counts):
            table = self.query_one("#results", DataTable)
            cursor = table.cursor_coordinate
            self.load()
            table.cursor_coordinate = cursor

    def load(self) -> None:
        store = Store(self.store_path, create=False)
        self.sweep = store.sweep(self.sweep_id)
        self.runs = store.runs(self.sweep_id)
        store.close()
        self.comp = compare(self.runs, self.sweep.swept, self.sweep.problem)
        self.columns, self.raw, self.text = table_rows(self.comp)
        self.title = f"Results · {self.sweep.preset} · sweep {self.sweep.id}"
        arrow = "higher" if self.comp.higher_is_better else "lower"
        self.query_one("#results-title", Static).update(
            f"[b]{self.sweep.preset}[/b] ({self.sweep.status}, {self.sweep.n_done}/"
            f"{self.sweep.n_runs} runs) — ranked by {self.comp.main} ({arrow} is better); "
            "mean ± std over finished runs, diverged/failed counted apart"
        )
        self.fill()

    def visible_columns(self) -> list[str]:
        if self.show_all:
            return self.columns
        return [
            c
            for c in self.columns
            if c in (self.comp.main, "n") or len({t[c] for t in self.text}) > 1
        ]

    def fill(self) -> None:
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        columns = self.visible_columns()
        for c in columns:
            label = c + (
                " ▼" if c == self.sort_key and self.reverse else " ▲" if c == self.sort_key else ""
            )
            table.add_column(label, key=c)
        order = list(range(len(self.raw)))
        if self.sort_key:

            def key(i: int):
                v = self.raw[i][self.sort_key]
                return (v is None, v if not isinstance(v, str) else str(v))

            order.sort(key=key, reverse=self.reverse)
            if self.reverse:  # keep empty cells last either way
                order.sort(key=lambda i: self.raw[i][self.sort_key] is None)
        for i in order:
            table.add_row(*(self.text[i][c] for c in columns), key=str(i))
        hidden = len(self.columns) - len(columns)
        self.query_one("#results-status", Static).update(
            f"{hidden} columns that do not vary are hidden (a shows all)" if hidden else ""
        )

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
        path = exports_dir() / f"{self.sweep.preset}-{self.sweep.id}-{kind}.{suffix}"
        try:
            write_atomic(path, text)
        except HypertuiError as exc:
            self.notify(str(exc), severity="error")
            return None
        return path

    def action_export_table(self) -> None:
        csv_path = self._write("grouped", grouped_csv(self.comp), "csv")
        md_path = self._write("grouped", grouped_markdown(self.comp), "md")
        if csv_path and md_path:
            self.show_written(f"wrote {csv_path} and {md_path.name}")

    def action_export_runs(self) -> None:
        path = self._write("runs", runs_csv(self.runs), "csv")
        if path:
            self.show_written(f"wrote {path}")

    def show_written(self, message: str) -> None:
        self.query_one("#results-status", Static).update(message)
        self.notify(message, title="Exported", timeout=8)

    def action_open(self) -> None:
        table = self.query_one("#results", DataTable)
        if not table.row_count:
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        group = self.raw[int(row_key.value)]["_group"]
        runs = [r for r in self.runs if r.id in group.run_ids]
        self.app.push_screen(RunsScreen(self.store_path, runs, self.comp.main))

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
        from tui.report import describe_point

        self.title = f"Runs · {describe_point(self.runs[0].point)}" if self.runs else "Runs"
        table = self.query_one("#runs", DataTable)
        score = self.metric.removeprefix("val_")
        table.add_columns(
            "run",
            "seed",
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
                r.status,
                fmt(m.get(self.metric)),
                fmt(m.get(f"best_{self.metric}")),
                fmt(m.get(f"test_{score}")),
                fmt(r.epochs_done),
                fmt(r.wall_s, 3),
                r.reason,
                key=r.id,
            )

    def action_open(self) -> None:
        table = self.query_one("#runs", DataTable)
        if table.row_count:
            from tui.screens.detail import RunDetailScreen

            run_id = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.push_screen(RunDetailScreen(self.store_path, run_id))

    def action_back(self) -> None:
        self.app.pop_screen()
