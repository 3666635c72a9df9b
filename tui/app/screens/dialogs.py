"""Small modal screens: a yes/no question and the help page."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Markdown, Static

HELP = """\
# hypertui

**Pick** a preset (type to filter, arrows, Enter) → **edit** it (Tab between fields;
`ctrl+r` runs, `ctrl+s` saves it as your own preset) → **watch** it train → **compare**
the results → **export** them.

| where | keys |
| --- | --- |
| everywhere | `F1` help · `F2` history · `ctrl+q` quit · `ctrl+p` commands · `Esc` back |
| where no text field has the focus (not Presets or the Editor: there they type) | `?` help · `h` history · `q` quit |
| Live | `p` pause/resume · `s` skip trial · `c` cancel sweep · `l` log y · `x` epoch/samples/seconds · `r` results |
| Results | arrows move · `s` sort by the column (again: reverse) · `a` all columns · `e` export table · `x` export runs CSV · `Enter` runs |
| History | `Enter` results · `r` resume an interrupted sweep |

Sweeps train in a separate process and are saved as they go: quitting, a closed terminal
or a crash loses at most the running trial, and History resumes the rest.
Batch sizes compare fairly only on samples seen or seconds: press `x` in Live.
"""


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


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
