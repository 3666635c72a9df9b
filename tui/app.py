"""The Textual app (a placeholder until the TUI lands: see the README)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class HypertuiApp(App):
    TITLE = "hypertui"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(
            "The interactive app is not built yet.\n"
            "Headless use works today: see `hypertui --help` and the README.",
            id="placeholder",
        )
        yield Footer()
