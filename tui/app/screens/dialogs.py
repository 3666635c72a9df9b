"""Small modal screens: a yes/no question, a sweep's tags, note and name (the help page is
screens/help.py)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.records import SweepRow
from hypertui.tui.text.safe import plain


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            with Horizontal(id="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


def tag_words(text: str) -> list[str]:
    """Tags as typed: separated by spaces or commas, a leading # dropped (#baseline)."""
    return [w.removeprefix("#") for w in text.replace(",", " ").split() if w.removeprefix("#")]


class LabelScreen(ModalScreen[bool]):
    """A sweep's name, tags and note, as `hypertui tag` sets them. `save(tags, note, name)`
    stores them or raises HypertuiError, said here in one line while the dialog stays open
    with what was typed; True once saved."""

    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, sweep: SweepRow, save: Callable[[list[str], str, str], None]) -> None:
        super().__init__()
        self.sweep, self.save = sweep, save

    def compose(self) -> ComposeResult:
        with Vertical(id="label-dialog"):
            yield Static(plain(f"Sweep {self.sweep.id} ({self.sweep.preset})", "bold"))
            for key, title, value, hint in (
                ("name", "name", self.sweep.name, f"what lists call it ({self.sweep.preset})"),
                ("tags", "tags", " ".join(self.sweep.tags), "baseline long-run (spaces apart)"),
                ("note", "note", self.sweep.note, "anything worth remembering"),
            ):
                with Horizontal(classes="label-row"):
                    yield Label(title, classes="label-name")
                    yield Input(value, placeholder=hint, id=f"label-{key}", compact=True)
            yield Static("", id="label-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Save (Enter)", id="save", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(False)

    def action_save(self) -> None:
        def value(key: str) -> str:
            return self.query_one(f"#label-{key}", Input).value

        try:
            self.save(tag_words(value("tags")), value("note"), value("name"))
        except HypertuiError as exc:
            self.query_one("#label-error", Static).update(plain(str(exc), "red"))
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
