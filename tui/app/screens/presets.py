"""Presets: every shipped and user preset, filterable by typing, grouped by problem."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from hypertui.engine.sweeps.estimate import estimate_seconds, human
from hypertui.engine.sweeps.presets import Catalogue, Preset, RandomAxis, catalogue
from hypertui.tui.text.report import describe_point
from hypertui.tui.text.safe import clean, plain

PROBLEM_TITLES = {
    "house": "House prices (Ames)",
    "mnist": "MNIST digits",
    "table": "Your tables",
    "images": "Your images",
}


def axis_text(axis) -> str:
    if isinstance(axis, RandomAxis):
        return axis.text(lambda v: describe_point({"v": v})[2:])
    return ", ".join(describe_point({"v": v})[2:] for v in axis)


_ESTIMATES: dict[tuple[int, str], str] = {}  # (id of the preset, device kind) -> "~2 min"


def estimate(preset: Preset, device_kind: str) -> str:
    """The run-time estimate, computed once per preset: it expands every trial (a 648-trial
    grid cost ~100 ms), and the list redraws on every key typed into the filter."""
    if preset.problem == "function":
        return "?"  # nothing to estimate it from
    key = (id(preset), device_kind)
    if key not in _ESTIMATES:
        _ESTIMATES[key] = human(estimate_seconds(preset, device_kind))
    return _ESTIMATES[key]


def preset_details(preset: Preset, device_kind: str) -> Text:
    text = Text()
    text.append(f"{clean(preset.name)}\n", style="bold")
    text.append(f"{clean(preset.description, one_line=False)}\n\n")
    if preset.claim:
        text.append("Checks: ", style="bold")
        text.append(f"{clean(preset.claim, one_line=False)}\n\n")
    text.append(f"{preset.n_trials} trials", style="bold")
    if preset.problem == "function":
        text.append(f" of your function {clean(preset.base['train'])} · Enter runs it\n")
    else:
        text.append(f" · {estimate(preset, device_kind)} on {device_kind}\n")
    if preset.full_note:
        text.append(f"Full version (a switch in the editor): {clean(preset.full_note)}\n")
    text.append("\nSwept\n", style="bold")
    for name, axis in preset.axes.items():
        text.append(f"  {name}: {axis_text(axis)}\n")
    if preset.seeds > 1:
        text.append(f"  seeds: {preset.seeds} per point\n")
    if not preset.axes and preset.seeds == 1:
        text.append("  nothing: a single run\n")
    text.append("\nConfig\n", style="bold")
    for name, value in preset.base.items():
        if name not in preset.axes:
            text.append(f"  {name} = {describe_point({'v': value})[2:]}\n")
    origin = "shipped" if preset.shipped else "user"
    source = f"presets/{Path(preset.source).name}" if preset.shipped else preset.source
    text.append(f"\n{origin} preset · {clean(source)}\n", style="dim")
    return text


class PresetsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("down", "move(1)", "Next", show=False, priority=True),
        Binding("up", "move(-1)", "Previous", show=False, priority=True),
        Binding("ctrl+r", "reload", "Reload presets"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.catalogue = Catalogue({}, {})
        self.device_kind = "cpu"
        self.filled_for = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(
            placeholder="type to filter presets (name, problem, description)",
            id="filter",
            select_on_focus=False,  # a key that brings the focus back must add, not replace
        )
        with Horizontal(id="presets-body"):
            yield OptionList(id="preset-list")
            with VerticalScroll(id="preset-detail-box"):
                yield Static(id="preset-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "hypertui · presets"
        self.action_reload()
        self.query_one("#filter", Input).focus()
        # Which devices exist needs torch (~1.5 s to import): find out after the first
        # paint, in a thread, and redraw the estimates if there is a GPU.
        self.run_worker(self.detect_device, thread=True, exit_on_error=False)

    def detect_device(self) -> None:
        from hypertui.engine.training.devices import available_devices

        kind = "cpu" if available_devices()[0] == "cpu" else "gpu"
        if kind != self.device_kind:
            self.app.call_from_thread(self.set_device_kind, kind)

    def set_device_kind(self, kind: str) -> None:
        self.device_kind = kind
        self.fill(self.query_one("#filter", Input).value)

    def action_reload(self) -> None:
        self.catalogue = catalogue()
        self.fill(self.query_one("#filter", Input).value)

    def fill(self, query: str) -> None:
        self.filled_for = query
        words = query.lower().split()
        options: list[Option | None] = []
        # Presets whose name (or problem) holds every word come first, then those that
        # match only in their description or claim: "study" opens house-study-grid, not
        # house-best ("the study's best model"), which sorts before it.
        by_problem: dict[tuple[bool, str], list[Preset]] = {}
        for preset in sorted(self.catalogue.presets.values(), key=lambda p: p.name):
            title = f"{preset.name} {preset.problem}".lower()
            haystack = f"{title} {preset.description} {preset.claim}".lower()
            if all(w in haystack for w in words):
                in_text = not all(w in title for w in words)
                by_problem.setdefault((in_text, preset.problem), []).append(preset)
        for (in_text, problem), presets in sorted(by_problem.items(), key=lambda kv: kv[0][0]):
            heading = PROBLEM_TITLES.get(problem, problem) + (
                " · in descriptions" if in_text else ""
            )
            options.append(Option(Text(heading, style="bold"), disabled=True))
            for p in presets:
                line = Text.assemble(
                    f" {clean(p.name):<26}",
                    (f"{p.n_trials:>3} · ", "dim"),
                    (estimate(p, self.device_kind), "dim"),
                )
                options.append(Option(line, id=f"preset:{p.name}"))
        if self.catalogue.errors:
            options.append(Option(Text("Invalid presets", style="bold red"), disabled=True))
            for path in self.catalogue.errors:
                options.append(
                    Option(plain(f"  {path.rsplit('/', 1)[-1]}", "red"), id=f"invalid:{path}")
                )
        option_list = self.query_one("#preset-list", OptionList)
        option_list.clear_options()
        option_list.add_options(options)
        first = next((i for i, o in enumerate(options) if o is not None and not o.disabled), None)
        option_list.highlighted = first
        if first is None:
            self.query_one("#preset-detail", Static).update(plain(f"No preset matches {query!r}."))

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill(event.value)

    def on_key(self, event: events.Key) -> None:
        """Typing filters wherever the focus is (the list, after a click or a screen came
        back): a typed key never falls on a widget that drops it."""
        box = self.query_one("#filter", Input)
        if box.has_focus or not (event.is_printable or event.key == "backspace"):
            return
        event.stop()
        event.prevent_default()
        box.focus()
        if event.key == "backspace":
            box.action_delete_left()
        elif event.character:
            box.insert_text_at_cursor(event.character)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        option_id = event.option.id or ""
        detail = self.query_one("#preset-detail", Static)
        if option_id.startswith("preset:"):
            detail.update(preset_details(self.catalogue.presets[option_id[7:]], self.device_kind))
        elif option_id.startswith("invalid:"):
            detail.update(plain(self.catalogue.errors[option_id[8:]], "red", one_line=False))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_open()

    def action_move(self, delta: int) -> None:
        option_list = self.query_one("#preset-list", OptionList)
        (option_list.action_cursor_down if delta > 0 else option_list.action_cursor_up)()

    def action_open(self) -> None:
        # Enter is a priority binding: it can arrive before the filter has taken the keys
        # typed just ahead of it (a fast typist, a paste). Open once the filter's own queue,
        # those keys first, has been worked through.
        self.query_one("#filter", Input).call_later(self.open_highlighted)

    def open_highlighted(self) -> None:
        query = self.query_one("#filter", Input).value
        if query != self.filled_for:  # Enter typed right after the filter text
            self.fill(query)
        option_list = self.query_one("#preset-list", OptionList)
        if option_list.highlighted is None:
            return
        option_id = option_list.get_option_at_index(option_list.highlighted).id or ""
        if option_id.startswith("invalid:"):
            self.notify(
                self.catalogue.errors[option_id[8:]],
                title="Invalid preset",
                severity="error",
                timeout=8,
                markup=False,
            )
        elif option_id.startswith("preset:"):
            preset = self.catalogue.presets[option_id[7:]]
            if preset.problem == "function":
                self.ask_to_run(preset)
                return
            from hypertui.tui.app.screens.editor import EditorScreen

            self.app.push_screen(EditorScreen(preset))

    def ask_to_run(self, preset) -> None:
        """A preset of your own function has no fields of ours to edit (its file is the
        place): Enter asks, then runs it."""
        from hypertui.tui.app.screens.dialogs import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self.notify("Checking your function: one import, in a process of its own…")
                self.run_worker(
                    lambda: self.start_function(preset),
                    thread=True,
                    exclusive=True,
                    group="function-run",
                )

        self.app.push_screen(
            ConfirmScreen(
                f"Run {preset.name}: {preset.n_trials} trials of your function"
                f" {preset.base['train']}?\n(Its values live in {preset.source}: edit them there.)"
            ),
            answer,
        )

    def start_function(self, preset) -> None:
        """In a worker thread: import the function once in a child, make the sweep, start
        its runner; or say why not."""
        from hypertui.engine.core.errors import HypertuiError
        from hypertui.engine.store.store import UI_LOCK_WAIT_S, Store
        from hypertui.engine.sweeps.apart import check_function
        from hypertui.engine.sweeps.sweep import create_sweep

        why = check_function(preset.base["train"])
        if not why:
            try:
                store = Store(self.app.store_path, lock_wait_s=UI_LOCK_WAIT_S * 4)
                sweep_id = create_sweep(store, preset, self.app.run_options())
                store.close()
            except HypertuiError as exc:
                why = str(exc)
        if why:
            self.app.call_from_thread(
                self.notify, why, title="Cannot run", severity="error", timeout=12, markup=False
            )
            return
        self.app.call_from_thread(self.app.start_sweep, sweep_id)
