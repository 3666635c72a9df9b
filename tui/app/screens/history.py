"""History: every sweep, newest first; follow a running one, open, resume or delete one.

The table reads only the sweeps' rows and run counts (milliseconds even for thousands of
runs) and refreshes every REFRESH_S, so running sweeps move on their own; the "best"
column, which needs every run's metrics, is filled in by a worker thread afterwards.
"""

from __future__ import annotations

from pathlib import Path

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from hypertui.engine.analysis.compare import compare_sweep
from hypertui.engine.analysis.export import fmt
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.records import SweepRow
from hypertui.engine.store.store import UI_LOCK_WAIT_S, Store
from hypertui.tui.app.screens.dialogs import ConfirmScreen
from hypertui.tui.text.report import when
from hypertui.tui.text.safe import escape, plain

REFRESH_S = 2.0
# What a sweep is and how it did first: at 80 columns a long preset name (26 cells) and
# "created" before it pushed "best" past the right edge, cut to "val_mse 0.0".
COLUMNS = ("sweep", "preset", "status", "runs", "best", "created", "options")


class HistoryScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path) -> None:
        super().__init__()
        self.store_path = store_path
        self.sweeps: dict[str, SweepRow] = {}
        self.best: dict[tuple[str, int], str] = {}  # (sweep, runs done) -> best cell

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "hypertui · history"
        table = self.query_one("#history", DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.reload()
        self.set_interval(REFRESH_S, self.reload)

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        try:
            store = Store(self.store_path, create=False)
            sweeps = store.sweeps()
            store.close()
        except HypertuiError as exc:
            sweeps = []
            missing = not self.store_path.exists()
            self.query_one("#history-status", Static).update(
                f"No sweeps in {self.store_path} yet: pick a preset and run it."
                if missing
                else str(exc)
            )
            if not missing:
                return
        if [(s.id, s.status, s.n_done, s.control) for s in sweeps] == [
            (s.id, s.status, s.n_done, s.control) for s in self.sweeps.values()
        ] and all(self.cell(s) for s in sweeps):
            return  # nothing moved: keep the cursor and the screen as they are
        self.sweeps = {s.id: s for s in sweeps}
        table = self.query_one("#history", DataTable)
        cursor = table.cursor_row
        table.clear()
        for s in sweeps:
            status = s.status + (" (paused)" if s.running and s.paused else "")
            table.add_row(
                s.id,
                plain(s.title),
                status,
                f"{s.n_done}/{s.n_runs}",
                self.cell(s) or "…",
                when(s.created_at),
                plain(s.options.get("overrides", "")),
                key=s.id,
            )
        if sweeps:
            table.move_cursor(row=min(cursor, len(sweeps) - 1))
            self.show_status()
        self.fill_best([s for s in sweeps if not self.cell(s)])

    def show_status(self) -> None:
        """How many sweeps, and what the highlighted one changed from its preset: at 80
        columns the options column lies past the right edge."""
        running = sum(s.running for s in self.sweeps.values())
        text = Text(f"{len(self.sweeps)} sweeps in {self.store_path}")
        if running:
            text.append(f" · {running} running: Enter follows one live")
        sweep = self.selected()
        if sweep is not None and (sweep.tags or sweep.note):
            said = " ".join(f"#{t}" for t in sweep.tags) + (f" {sweep.note}" if sweep.note else "")
            text.append("\n")
            text.append_text(plain(f"{sweep.id}: {said.strip()}"))
        if sweep is not None and sweep.options.get("overrides"):
            text.append("\n")
            text.append_text(
                plain(f"{sweep.id} changed from the preset: {sweep.options['overrides']}")
            )
        self.query_one("#history-status", Static).update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.sweeps:
            self.show_status()

    def cell(self, sweep: SweepRow) -> str:
        return self.best.get((sweep.id, sweep.n_done), "")

    @work(thread=True, exclusive=True, group="history-best")
    def fill_best(self, sweeps: list[SweepRow]) -> None:
        """The best group's main metric of each sweep, off the UI thread."""
        if not sweeps:
            return
        store = Store(self.store_path, create=False)
        for s in sweeps:
            comp = compare_sweep(s, store.runs(s.id, analysis=False))
            best = comp.groups[0].stats.get(comp.main) if comp.groups else None
            self.best[(s.id, s.n_done)] = f"{comp.main} {fmt(best.mean)}" if best else "-"
        store.close()
        self.app.call_from_thread(self.show_best)

    def show_best(self) -> None:
        table = self.query_one("#history", DataTable)
        cells = {s.id: self.cell(s) for s in self.sweeps.values() if self.cell(s)}
        # Widen the column before the cells change: DataTable widens it only when idle and
        # keeps lines rendered in between, so at 80x24 "best" could stay cut to "val_".
        column = table.columns["best"]
        column.content_width = max(column.content_width, *map(cell_len, cells.values()), 0)
        for sweep_id, cell in cells.items():
            if sweep_id in table.rows:
                table.update_cell(sweep_id, "best", cell, update_width=True)

    def selected(self) -> SweepRow | None:
        table = self.query_one("#history", DataTable)
        if not table.row_count:
            return None
        return self.sweeps[table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value]

    def action_open(self) -> None:
        """A running sweep opens live, any other in Results."""
        sweep = self.selected()
        if sweep is None:
            return
        if sweep.running:
            self.app.open_live(sweep.id)
            return
        from hypertui.tui.app.screens.results import ResultsScreen

        self.app.push_screen(ResultsScreen(self.store_path, sweep.id))

    def action_resume(self) -> None:
        sweep = self.selected()
        if sweep is None:
            return
        if not sweep.resumable:
            why = "it is running: Enter follows it" if sweep.running else "every trial is done"
            if sweep.problem in ("script", "tensorboard"):
                why = "its runs come from your script (or TensorBoard logs): run it again"
            self.notify(f"Sweep {sweep.id} cannot be resumed: {why}.", severity="warning")
            return
        try:
            store = Store(self.store_path, lock_wait_s=UI_LOCK_WAIT_S * 4)
            store.request(sweep.id, "clear")
            store.close()
        except HypertuiError as exc:
            self.notify(f"{exc}; try again", severity="warning")
            return
        self.app.start_sweep(sweep.id)

    def action_delete(self) -> None:
        sweep = self.selected()
        if sweep is None:
            return
        if sweep.running:
            self.notify("Cancel the sweep before deleting it (Enter, then c).", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            try:
                store = Store(self.store_path, lock_wait_s=UI_LOCK_WAIT_S * 4)
                store.delete_sweep(sweep.id)
                store.close()
            except HypertuiError as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"Deleted sweep {sweep.id}.")
            self.reload()

        self.app.push_screen(
            ConfirmScreen(
                f"Delete sweep {sweep.id} ({escape(sweep.preset)}, {sweep.n_runs} runs)?\n"
                "Its runs and curves are removed for good."
            ),
            answer,
        )

    def action_back(self) -> None:
        self.app.pop_screen()
