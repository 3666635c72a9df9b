"""History: past sweeps, newest first; open one in Results, resume an interrupted one."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from engine.compare import compare
from engine.export import fmt
from engine.store import Store
from tui.report import when


class HistoryScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Results", priority=True),
        Binding("r", "resume", "Resume"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path) -> None:
        super().__init__()
        self.store_path = store_path

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "hypertui · history"
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def reload(self) -> None:
        store = Store(self.store_path)
        self.sweeps = {s.id: s for s in store.sweeps()}
        table = self.query_one("#history", DataTable)
        table.clear(columns=True)
        table.add_columns("sweep", "preset", "created", "status", "runs", "best")
        for s in self.sweeps.values():
            comp = compare(store.runs(s.id), s.swept, s.problem)
            best = comp.groups[0].stats.get(comp.main) if comp.groups else None
            table.add_row(
                s.id,
                s.preset,
                when(s.created_at),
                s.status,
                f"{s.n_done}/{s.n_runs}",
                f"{comp.main} {fmt(best.mean)}" if best else "-",
                key=s.id,
            )
        store.close()
        self.query_one("#history-status", Static).update(
            f"{len(self.sweeps)} sweeps in {self.store_path}"
            if self.sweeps
            else f"No sweeps in {self.store_path} yet: pick a preset and run it."
        )

    def selected(self):
        table = self.query_one("#history", DataTable)
        if not table.row_count:
            return None
        return self.sweeps[table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value]

    def action_open(self) -> None:
        if sweep := self.selected():
            from tui.screens.results import ResultsScreen

            self.app.push_screen(ResultsScreen(self.store_path, sweep.id))

    def action_resume(self) -> None:
        sweep = self.selected()
        if sweep is None:
            return
        if not sweep.resumable:
            why = "it is still running" if sweep.status == "running" else "every trial is done"
            self.notify(f"Sweep {sweep.id} cannot be resumed: {why}.", severity="warning")
            return
        from tui.screens.live import LiveScreen

        self.app.push_screen(LiveScreen(self.store_path, sweep.id, self.app.data_dir))

    def action_back(self) -> None:
        self.app.pop_screen()
