"""The Textual app: pick or edit a preset, watch it train, compare and export."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.paths import default_store_path
from hypertui.tui.app.screens.dialogs import ConfirmScreen
from hypertui.tui.app.screens.help import HelpScreen
from hypertui.tui.app.screens.presets import PresetsScreen


class HypertuiApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "hypertui"
    BINDINGS = [  # q, ? and h also work wherever no text field has the focus
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Help"),
        Binding("f2", "history", "History"),
        Binding("q", "quit", "Quit", show=False),
        Binding("question_mark", "help", "Help", show=False),
        Binding("h", "history", "History", show=False),
    ]

    def __init__(
        self,
        store_path: Path | None = None,
        data_dir: Path | None = None,
        attach: str | None = None,
    ) -> None:
        super().__init__()
        self.store_path = Path(store_path or default_store_path())
        self.data_dir = data_dir
        self.attach = attach  # a sweep to open live at start (`hypertui attach`)
        self.farewell = ""  # printed after the app exits: sweeps that go on without it

    def on_mount(self) -> None:
        if self.attach:  # straight to the sweep; Presets only once the user goes back
            self.open_live(self.attach)
        else:
            self.push_screen(PresetsScreen())

    def open_live(self, sweep_id: str) -> None:
        from hypertui.tui.app.screens.live import LiveScreen

        self.push_screen(LiveScreen(self.store_path, sweep_id))

    def start_sweep(self, sweep_id: str) -> None:
        """Train a stored sweep in a runner of its own (it outlives this app) and follow it."""
        from hypertui.engine.sweeps.runner import launch

        try:
            launched = launch(self.store_path, sweep_id)
        except OSError as exc:
            self.notify(f"cannot start the runner: {exc}", severity="error")
            return
        self.notify(f"Sweep {sweep_id} runs in the background (log: {launched.log}).")
        self.open_live(sweep_id)

    def run_options(self) -> dict:
        """How sweeps started from the app train (stored with each sweep)."""
        return {"data_dir": str(self.data_dir.resolve())} if self.data_dir else {}

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Presets", "Go to the list of presets", self.action_presets)
        yield SystemCommand("History", "Past sweeps: open or resume one", self.action_history)
        yield SystemCommand("Help", "Keys and how hypertui works", self.action_help)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_history(self) -> None:
        from hypertui.tui.app.screens.history import HistoryScreen

        if not isinstance(self.screen, HistoryScreen):
            self.to_top(lambda: self.push_screen(HistoryScreen(self.store_path)))

    def back_from(self, screen: Screen) -> None:
        """Leave a screen; the app opened on it (`attach`) goes on to Presets."""
        if len(self.screen_stack) > 2:
            self.pop_screen()
        else:
            self.switch_screen(PresetsScreen())

    def action_presets(self) -> None:
        self.to_top(lambda: None)

    def to_top(self, then: Callable[[], object]) -> None:
        """Go to Presets, then `then()` (History opens there): Presets and History are the
        app's top level, so Esc from History goes to Presets, never back through the screens
        it was opened from (Results > History > Results > History... replayed every visit).
        An editor with changes neither run nor saved asks first."""
        from hypertui.tui.app.screens.editor import EditorScreen

        if isinstance(self.screen, ConfirmScreen):
            return
        editor = next(
            (s for s in self.screen_stack if isinstance(s, EditorScreen) and s.unsaved), None
        )

        def go(leave: bool | None = True) -> None:
            if not leave:
                return
            while len(self.screen_stack) > 2:
                self.pop_screen()
            if not isinstance(self.screen, PresetsScreen):  # opened on a sweep (`attach`)
                self.switch_screen(PresetsScreen())
            then()

        if editor is None:
            go()
        else:
            self.push_screen(ConfirmScreen(editor.leave_question()), go)

    async def action_quit(self) -> None:
        """Quit at once: sweeps train in runners of their own and go on without the app."""
        self.farewell = self.goodbye()
        self.exit()

    def goodbye(self) -> str:
        from hypertui.engine.store.store import Store

        try:
            store = Store(self.store_path, create=False)
            running = store.running_sweeps()
            store.close()
        except HypertuiError:
            return ""
        store_arg = "" if self.store_path == default_store_path() else f" --store {self.store_path}"
        return "\n".join(
            f"sweep {s.id} ({s.preset}, {s.n_done}/{s.n_planned} done) goes on in the background;"
            f" come back with: hypertui{store_arg} attach {s.id}"
            for s in running
        )
