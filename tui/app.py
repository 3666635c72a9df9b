"""The Textual app: pick or edit a preset, watch it train, compare and export."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from engine.paths import default_store_path
from tui.screens.dialogs import ConfirmScreen, HelpScreen
from tui.screens.presets import PresetsScreen


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

    def __init__(self, store_path: Path | None = None, data_dir: Path | None = None) -> None:
        super().__init__()
        self.store_path = Path(store_path or default_store_path())
        self.data_dir = data_dir

    def on_mount(self) -> None:
        self.push_screen(PresetsScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Presets", "Go to the list of presets", self.action_presets)
        yield SystemCommand("History", "Past sweeps: open or resume one", self.action_history)
        yield SystemCommand("Help", "Keys and how hypertui works", self.action_help)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_history(self) -> None:
        from tui.screens.history import HistoryScreen

        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen(self.store_path))

    def action_presets(self) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, PresetsScreen):
            if self.running_sweep() and self.screen is self.running_sweep():
                break
            self.pop_screen()

    def running_sweep(self):
        from tui.screens.live import LiveScreen

        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen) and screen.runner.running:
                return screen
        return None

    async def action_quit(self) -> None:
        live = self.running_sweep()
        if live is None:
            self.exit()
            return

        def answer(stop: bool | None) -> None:
            if stop:
                live.runner.wait(timeout=10)
                self.exit()

        self.push_screen(
            ConfirmScreen(
                "A sweep is running. Stop it and quit?\n"
                "Finished trials are saved; the rest can be resumed from History."
            ),
            answer,
        )
