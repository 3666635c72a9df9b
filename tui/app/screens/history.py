"""History: every sweep, newest first; follow a running one, open, resume or delete one;
mark several (or filter them by preset, name, tag or note) and compare them in one table.

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
from textual.widgets import DataTable, Footer, Header, Input, Static

from hypertui.engine.analysis.compare import compare_sweep
from hypertui.engine.analysis.export import fmt
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.records import SweepRow
from hypertui.engine.store.store import UI_LOCK_WAIT_S, Store
from hypertui.tui.app.screens.dialogs import ConfirmScreen, LabelScreen
from hypertui.tui.text.report import when
from hypertui.tui.text.safe import escape, plain

REFRESH_S = 2.0
# What a sweep is and how it did first: at 80 columns a long preset name (26 cells) and
# "created" before it pushed "best" past the right edge, cut to "val_mse 0.0".
# The mark column is one cell wide: a marked sweep shows MARK there.
COLUMNS = ("mark", "sweep", "preset", "status", "runs", "best", "created", "options")
MARK = "●"


def matches(sweep: SweepRow, words: list[str]) -> bool:
    """Whether every word of a filter is in the sweep's id, preset, name, tags or note
    (case ignored); `#word` asks for a tag that starts with it."""
    said = " ".join([sweep.id, sweep.preset, sweep.name, *sweep.tags, sweep.note]).lower()
    for word in (w.lower() for w in words):
        if word.startswith("#"):
            if not any(t.lower().startswith(word[1:]) for t in sweep.tags):
                return False
        elif word not in said:
            return False
    return True


class HistoryScreen(Screen):
    AUTO_FOCUS = "#history"  # the table: the filter's field (above it) only on /
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("t", "label", "Tag"),
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Delete"),
        # past the footer's edge at 80 columns (Delete and Back were cut): the status line
        # names them, / always and u once a sweep is marked
        Binding("slash", "filter", "Filter", show=False),
        Binding("u", "unmark", "Clear marks", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path) -> None:
        super().__init__()
        self.store_path = store_path
        self.sweeps: dict[str, SweepRow] = {}
        self.best: dict[tuple[str, int], str] = {}  # (sweep, runs done) -> best cell
        self.marked: set[str] = set()  # sweep ids marked to compare
        self.words: list[str] = []  # the filter's words; [] shows every sweep

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="filter: words of a preset, name or note; #tag · Enter keeps, Esc clears",
            id="history-filter",
            compact=True,
        )
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Static("", id="history-status")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "hypertui · history"
        table = self.query_one("#history", DataTable)
        table.add_column("", key="mark", width=1)  # MARK or nothing
        for column in COLUMNS[1:]:
            table.add_column(column, key=column)
        self.query_one("#history-filter", Input).display = False
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
        if [moved(s) for s in sweeps] == [moved(s) for s in self.sweeps.values()] and all(
            self.cell(s) for s in sweeps
        ):
            return  # nothing moved: keep the cursor and the screen as they are
        self.sweeps = {s.id: s for s in sweeps}
        self.marked &= set(self.sweeps)  # a deleted sweep is no longer marked
        self.fill()
        self.fill_best([s for s in sweeps if not self.cell(s)])

    def shown(self) -> list[SweepRow]:
        """The sweeps the filter lets through, newest first."""
        return [s for s in self.sweeps.values() if matches(s, self.words)]

    def fill(self) -> None:
        """The table's rows: the sweeps shown, the highlighted one kept where it can be."""
        table = self.query_one("#history", DataTable)
        cursor, selected = table.cursor_row, self.selected()
        table.clear()
        shown = self.shown()
        for s in shown:
            status = s.status + (" (paused)" if s.running and s.paused else "")
            table.add_row(
                MARK if s.id in self.marked else "",
                s.id,
                plain(s.title),
                status,
                f"{s.n_done}/{s.n_planned}",
                self.cell(s) or "…",
                when(s.created_at),
                plain(s.options.get("overrides", "")),
                key=s.id,
            )
        ids = [s.id for s in shown]
        if shown:
            row = ids.index(selected.id) if selected and selected.id in ids else cursor
            table.move_cursor(row=min(row, len(shown) - 1))
        if self.sweeps:  # else the line says why there are none
            self.show_status()

    def show_status(self) -> None:
        """How many sweeps, and what the highlighted one changed from its preset: at 80
        columns the options column lies past the right edge."""
        running = sum(s.running for s in self.sweeps.values())
        if self.words:
            text = Text(f"{len(self.shown())} of {len(self.sweeps)} sweeps match ")
            text.append_text(plain(" ".join(self.words), "bold"))
            text.append(" (/ then Esc shows all)")
        else:
            text = Text(f"{len(self.sweeps)} sweeps in {self.store_path}")
        if running:
            text.append(f" · {running} running: Enter follows one live")
        if self.marked:
            hidden = len(self.marked - {s.id for s in self.shown()})
            text.append(f" · {len(self.marked)} marked", style="bold")
            text.append(f" ({hidden} hidden by the filter)" if hidden else "")
            text.append(": c compares them" if len(self.marked) > 1 else ": mark another")
            text.append(", u clears")
        elif self.sweeps:
            text.append(" · space marks sweeps to compare (c)")
        if self.sweeps:
            text.append(" · / filters")
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

    def on_input_changed(self, event: Input.Changed) -> None:
        self.words = event.value.split()
        self.fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.end_filter(clear=False)

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
        return self.sweeps.get(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @property
    def filtering(self) -> bool:
        """The filter's field has the focus (Enter and Esc end it there)."""
        return self.query_one("#history-filter", Input).has_focus

    def action_filter(self) -> None:
        field = self.query_one("#history-filter", Input)
        field.display = True
        field.focus()

    def end_filter(self, clear: bool) -> None:
        """Back to the table; the field stays in sight while it filters."""
        field = self.query_one("#history-filter", Input)
        if clear:
            field.value = ""  # Input.Changed refills the table
            self.words = []
            self.fill()
        field.display = bool(field.value.strip())
        self.query_one("#history", DataTable).focus()

    def action_mark(self) -> None:
        """Mark or unmark the highlighted sweep, then move down (space, space... marks a run
        of sweeps)."""
        sweep = self.selected()
        if sweep is None:
            return
        self.marked ^= {sweep.id}
        table = self.query_one("#history", DataTable)
        table.update_cell(sweep.id, "mark", MARK if sweep.id in self.marked else "")
        table.action_cursor_down()
        self.show_status()

    def action_unmark(self) -> None:
        table = self.query_one("#history", DataTable)
        for sweep_id in self.marked:
            if sweep_id in table.rows:
                table.update_cell(sweep_id, "mark", "")
        self.marked.clear()
        self.show_status()

    def action_compare(self) -> None:
        """The marked sweeps (or, with none marked, those the filter shows) in one
        comparison; said in one line when they cannot be compared."""
        ids = [i for i in self.sweeps if i in self.marked]
        if not ids and self.words:
            ids = [s.id for s in self.shown()]
        if len(ids) < 2:
            self.notify(
                "Mark two sweeps or more (space), or filter them (/), then c compares them.",
                severity="warning",
            )
            return
        self.compare(ids)

    @work(thread=True, exclusive=True, group="history-compare")
    def compare(self, ids: list[str]) -> None:
        """Read and compare in a thread; the screen opens only on a comparison made."""
        from hypertui.tui.app.screens.compare import CompareScreen, read_compared

        try:
            compared = read_compared(self.store_path, ids)
        except HypertuiError as exc:
            self.app.call_from_thread(
                self.notify, f"Cannot compare: {exc}", severity="warning", markup=False
            )
            return
        self.app.call_from_thread(self.open_compare, CompareScreen, compared)

    def open_compare(self, screen: type, compared) -> None:
        """On the UI thread: the screen is made where it lives."""
        self.app.push_screen(screen(self.store_path, compared))

    def action_label(self) -> None:
        """Tags, a note and a name for the highlighted sweep (as `hypertui tag`)."""
        sweep = self.selected()
        if sweep is None:
            return

        def save(tags: list[str], note: str, name: str) -> None:
            store = Store(self.store_path, lock_wait_s=UI_LOCK_WAIT_S * 4)
            try:
                old = store.sweep(sweep.id).tags
                store.label(sweep.id, tags, [t for t in old if t not in tags], note, name)
            finally:
                store.close()

        def done(saved: bool | None) -> None:
            if saved:
                self.notify(f"Sweep {sweep.id} saved.", timeout=2)
                self.reload()

        self.app.push_screen(LabelScreen(sweep, save), done)

    def action_open(self) -> None:
        """A running sweep opens live, any other in Results."""
        if self.filtering:
            self.end_filter(clear=False)
            return
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
        if self.filtering:
            self.end_filter(clear=True)
            return
        self.app.pop_screen()


def moved(sweep: SweepRow) -> tuple:
    """What History shows of a sweep that can change while it is listed."""
    return (
        sweep.id,
        sweep.status,
        sweep.n_done,
        sweep.control,
        sweep.title,
        sweep.tags,
        sweep.note,
    )
