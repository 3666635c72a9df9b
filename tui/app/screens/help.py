"""The help page: every screen's keys, read from its BINDINGS so that help cannot drift.

A hand-written table missed keys as screens grew (`i` in Results, `f`/`r`/`c` in Analysis,
`d` in History); tests/test_tui.py checks that every screen of the app has a row here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "Pick a preset (type to filter, arrows, Enter) → edit it → watch it train → compare the "
    "results → export them. Sweeps train in a separate process and are saved as they go: "
    "quitting, a closed terminal or a crash loses at most the running trial, and History "
    "resumes the rest. Esc goes up one level: Presets is the top, History sits under it."
)
KEY_NAMES = {
    "escape": "Esc",
    "enter": "Enter",
    "question_mark": "?",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
    "f1": "F1",
    "f2": "F2",
    "slash": "/",
}


@dataclass(frozen=True)
class Section:
    title: str  # where, as the user sees it: one short word or two
    screen: str  # "module:Class" under hypertui.tui.app whose BINDINGS are listed
    notes: str = ""  # keys that belong to a widget (a table's arrows, the detail's tabs)


SECTIONS = (
    Section(
        "Everywhere",
        "app:HypertuiApp",
        "ctrl+p commands · ? h q only where no text field has the focus (in Presets and the "
        "Editor they type)",
    ),
    Section("Presets", "screens.presets:PresetsScreen", "type to filter"),
    Section(
        "Editor",
        "screens.editor:EditorScreen",
        "Tab/shift+Tab move between fields; a sweep is a grid (a, b) or drawn per trial (choice "
        "a, b · uniform, log_uniform or int_uniform LO HI; draws: how many); a grey field means "
        "nothing for these values; Esc asks first when changes are neither run nor saved",
    ),
    Section(
        "Live",
        "screens.live:LiveScreen",
        "batch sizes compare fairly only on samples seen or seconds: press x",
    ),
    Section(
        "Results",
        "screens.results:ResultsScreen",
        "arrows move; s again reverses the sort",
    ),
    Section("Runs", "screens.results:RunsScreen", "a group's runs; arrows move"),
    Section(
        "Run detail",
        "screens.detail:RunDetailScreen",
        "← → switch tabs: Summary, Curves, then Predictions (and Variance) or Confusion",
    ),
    Section(
        "Analysis",
        "screens.analysis:AnalysisScreen",
        "v: the tables (f: the slice's field) → the metric against each numeric field, a point "
        "per run (f/← →: the field) → parallel coordinates of the top configs (↑↓: pick one) → "
        "the Pareto front of the preset's objectives (else the metric against train_s): "
        "↑↓ a member, f/← → the pair drawn when there are 3 or more",
    ),
    Section(
        "History",
        "screens.history:HistoryScreen",
        "arrows move; c compares the marked sweeps, or with none marked those the filter "
        "shows; / filters by words of a preset, name or note, or #tag",
    ),
    Section(
        "Compare",
        "screens.compare:CompareScreen",
        "the sweeps' groups in one table (sweep a column) over one chart of curves: each "
        "sweep's best group in a colour of its own (g again: back from all runs); v shows "
        "both, the curves or the table",
    ),
    Section("Help", "screens.help:HelpScreen"),
    Section("Questions", "screens.dialogs:ConfirmScreen"),
    Section("Tag/name", "screens.dialogs:LabelScreen", "Enter in a field saves too"),
)


def screen_class(spec: str) -> type:
    module, name = spec.split(":")
    return getattr(importlib.import_module(f"hypertui.tui.app.{module}"), name)


def key_name(key: str) -> str:
    return KEY_NAMES.get(key, key)


def keys_text(bindings: list[Binding], notes: str) -> Text:
    """'p Pause/resume · s Skip trial · ...': keys that do one thing share one entry."""
    by_action: dict[tuple[str, str], list[str]] = {}
    for binding in bindings:
        keys = [key_name(k.strip()) for k in binding.key.split(",")]
        by_action.setdefault((binding.action, binding.description), []).extend(keys)
    text = Text()
    for (_, description), keys in by_action.items():
        if text:
            text.append(" · ")
        text.append("/".join(keys), style="bold")
        text.append(f" {description.removeprefix(keys[0] + ': ')}")  # Live: "x: epoch/..."
    if notes:
        text.append(f"\n{notes}", style="dim")
    return text


def help_table() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 1, 1, 0), expand=True)
    table.add_column("where", no_wrap=True, style="bold cyan")  # never wrapped (it was: 9 lines)
    table.add_column("keys", ratio=1)
    for section in SECTIONS:
        bindings = [
            b if isinstance(b, Binding) else Binding(*b)
            for b in screen_class(section.screen).BINDINGS
        ]
        table.add_row(section.title, keys_text(bindings, section.notes))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(
                Group(Text("hypertui\n", style="bold"), Text(INTRO + "\n"), help_table()),
                id="help-text",
            )

    def action_close(self) -> None:
        self.dismiss(None)
