"""Editor: every config field and sweep axis of a preset as a keyboard form.

Values are checked as they are typed with the engine's own parser (`parse_value`) and the
whole preset with the engine's own expansion; the message shows beside the field and
Run stays disabled while anything is invalid.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static
from textual.worker import get_current_worker

from hypertui.engine.core.config import CHOICES, FIELDS, MODELS, Config, field_docs, parse_value
from hypertui.engine.core.errors import ConfigError, HypertuiError
from hypertui.engine.sweeps.conditions import moot_fields, sometimes_moot
from hypertui.engine.sweeps.estimate import estimate_seconds, human
from hypertui.engine.sweeps.presets import RANDOM_KINDS, Preset, RandomAxis, parse_axis
from hypertui.tui.app.screens.dialogs import ConfirmScreen
from hypertui.tui.text.report import describe_point
from hypertui.tui.text.safe import escape, plain

# seeds has its own count; a data set (path, target...) is one per preset, not an axis;
# folds say how every point is validated; a sweep ranks all its runs by one metric
NOT_SWEPT = (
    "problem", "seed", "device", "features", "path", "target", "task", "model_args", "metric",
    "folds", "fold", "split_column", "val_path", "test_path",
)  # fmt: skip
TEXT_FIELDS = ("model",)  # a choice, or your own "package.module:build": typed, not picked
VALIDATE_AFTER_S = 0.2  # typing pause after which the form is checked
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PathSuggester(Suggester):
    """Completes a typed file or folder path from the file system (the `path` field)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        typed = Path(os.path.expanduser(value))  # pathlib's raises for an unknown ~user
        folder, stem = (typed, "") if value.endswith("/") else (typed.parent, typed.name)
        try:
            names = sorted(p.name for p in folder.iterdir() if p.name.startswith(stem))
        except OSError:
            return None
        names = [n for n in names if not n.startswith(".") or stem.startswith(".")]
        return value + names[0][len(stem) :] if names else None


def value_text(value: Any, name: str = "") -> str:
    if name == "model_args":  # (key, value) pairs, shown as the TOML table a preset holds
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value) + "}"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return ", ".join(value)
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


def sweep_text(axis: list | RandomAxis | None) -> str:
    """What the sweep column shows: `0.1, 0.01`, `choice relu, tanh`, `log_uniform 1e-4 0.1`."""
    if axis is None:
        return ""
    if isinstance(axis, RandomAxis) and axis.kind == "choice":
        return "choice " + ", ".join(_cell(v) for v in axis.values)
    if isinstance(axis, RandomAxis):
        return f"{axis.kind} {axis.low:g} {axis.high:g}"
    return ", ".join(_cell(v) for v in axis)


def _cell(value: Any) -> str:
    return describe_point({"v": value})[2:]


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets: '[10], [10, 10]' -> ['[10]', '[10, 10]']."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [p.strip() for p in [*parts, current] if p.strip()]


def parse_sweep(name: str, text: str) -> list | RandomAxis | None:
    """'' -> not swept; '0.1, 0.01' -> a grid; 'choice relu, tanh' -> drawn from the values;
    'log_uniform 1e-4 0.1', 'uniform 0 0.9', 'int_uniform 8 64' -> drawn from the range.
    Drawn axes are checked by the engine, as a preset file's are."""
    text = text.strip()
    if not text:
        return None
    head = text.split()[0]
    if head == "choice":
        rest = text[len(head) :].strip()
        if not rest:
            raise ConfigError("choice needs values: choice a, b, c")
        return _engine_axis(name, {"choice": _values(name, rest)})
    if head in RANDOM_KINDS:
        bounds = text.split()[1:]
        number = int if head == "int_uniform" else float
        try:
            low, high = (number(b) for b in bounds)
        except ValueError:
            what = "two whole numbers" if number is int else "two numbers"
            raise ConfigError(f"{head} needs {what}: {head} LOW HIGH") from None
        return _engine_axis(name, {head: [low, high]})
    return _values(name, text)


def _engine_axis(name: str, spec: dict) -> RandomAxis:
    try:
        axis = parse_axis(name, spec)
    except ConfigError as exc:  # "[sweep] lr: ..." -> what is wrong; the row says which
        raise ConfigError(str(exc).removeprefix(f"[sweep] {name}").lstrip(":. ")) from None
    assert isinstance(axis, RandomAxis)
    return axis


def _values(name: str, text: str) -> list:
    """'0.1, 0.01' or '[10], [10, 10]' or a TOML list: the values, each checked."""
    if text.startswith("[[") or (text.startswith("[") and name not in ("hidden", "channels")):
        try:
            items = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            raise ConfigError(f"cannot read {text!r} as a list") from None
        values = [parse_value(name, value_text(v) if not isinstance(v, str) else v) for v in items]
    else:
        values = [parse_value(name, part) for part in split_top_level(text)]
    if not values:
        raise ConfigError("an axis needs at least one value")
    return [list(v) if isinstance(v, tuple) else v for v in values]


class EditorScreen(Screen):
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", priority=True),
        Binding("ctrl+s", "save", "Save as user preset", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, preset: Preset) -> None:
        super().__init__()
        self.preset = preset
        self.current: Preset | None = preset
        self.docs = field_docs()
        self._pending = None  # the validation timer while typing
        self.initial_name = f"{preset.name}-mine" if preset.shipped else preset.name
        self.kept: list | None = None  # the form as last run or saved (as opened, at first)
        self.read_values: tuple[dict, dict] = ({}, {})  # the form's values and axes that parse

    def compose(self) -> ComposeResult:
        from hypertui.engine.training.devices import available_devices

        p = self.preset
        base = p.base_config
        available = available_devices()
        yield Header()
        with VerticalScroll(id="form"):
            yield Static(f"[b]{escape(p.name)}[/b] — {escape(p.description)}", id="editor-title")
            with Horizontal(classes="field-row"):
                yield Label("save as", classes="field-name")
                yield Input(self.initial_name, id="name", classes="field-value", compact=True)
                yield Label("seeds", classes="field-name short")
                yield Input(
                    str(p.seeds), id="seeds", classes="field-small", type="integer", compact=True
                )
                yield Label("draws", classes="field-name short")
                yield Input(
                    str(p.trials),
                    id="trials",
                    classes="field-small",
                    type="integer",
                    tooltip="random draws per grid point, for random axes",
                    compact=True,
                )
            yield Static("", id="err-meta", classes="field-error")
            with Horizontal(classes="field-row"):
                yield Label("train on", classes="field-name")
                yield Select(
                    [("this machine", "local"), ("Ray", "ray")],
                    value="local",
                    id="backend",
                    allow_blank=False,
                    compact=True,
                    classes="field-value",
                )
                yield Label("address", classes="field-name short")
                yield Input(
                    "",
                    id="address",
                    placeholder="empty: Ray here",
                    tooltip="a Ray cluster: auto, HOST:PORT or ray://HOST:PORT;"
                    " empty starts Ray on this machine",
                    classes="field-value",
                    compact=True,
                    disabled=True,  # until Ray is chosen
                )
            if p.full:
                yield Checkbox(
                    f"full version: {p.full_note or 'the preset [full] table'}", id="full"
                )
            yield Static(
                "[b]field           value           sweep: a, b · choice a, b · uniform LO HI[/b]",
                id="form-head",
            )
            for name in FIELDS:
                value = getattr(base, name)
                if name == "task":  # as written: an inferred task stays "infer" when editing
                    value = p.base.get("task", "")
                with Horizontal(classes="field-row", id=f"row-{name}"):
                    yield Label(name, classes="field-name", id=f"label-{name}")
                    if name == "device":
                        options = [
                            (d + ("" if d == "auto" or d in available else " (not here)"), d)
                            for d in ("auto", "cpu", "cuda", "mps")
                        ]
                        options += [(d, d) for d in available if d.startswith("cuda:")]
                        yield Select(
                            options,
                            value=value,
                            allow_blank=False,
                            id=f"value-{name}",
                            classes="field-value",
                            compact=True,
                        )
                    elif name in CHOICES and name not in TEXT_FIELDS:
                        infer = [("infer", "")] if name == "task" else []  # "" = inferred
                        yield Select(
                            infer + [(c, c) for c in CHOICES[name]],
                            value=value,
                            allow_blank=False,
                            id=f"value-{name}",
                            classes="field-value",
                            compact=True,
                        )
                    else:
                        yield Input(
                            value_text(value, name),
                            id=f"value-{name}",
                            classes="field-value",
                            compact=True,
                            suggester=PathSuggester() if name == "path" else None,
                        )
                    yield Input(
                        sweep_text(p.axes.get(name)),
                        id=f"sweep-{name}",
                        classes="field-sweep",
                        disabled=name in NOT_SWEPT,
                        placeholder="" if name in NOT_SWEPT else "not swept",
                        compact=True,
                    )
                yield Static(self.docs.get(name, ""), id=f"err-{name}", classes="field-help")
        with Horizontal(id="editor-actions"):
            yield Static("", id="editor-status")
            yield Button("Run (ctrl+r)", id="run", variant="success")
            yield Button("Save as (ctrl+s)", id="save")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"hypertui · edit {self.preset.name}"
        self.validate()
        self.query_one(f"#value-{next(iter(FIELDS))}").focus()
        self.kept = self.form()

    def form(self) -> list:
        """The preset's values on the form, to tell whether they changed since last kept
        (the name to save as and where to train are not the preset's: no need to ask)."""
        return [
            w.value
            for w in self.query("Input, Select, Checkbox")
            if w.id not in ("name", "backend", "address")
        ]

    @property
    def unsaved(self) -> bool:
        """The form holds changes neither run nor saved: leaving would lose them."""
        return self.kept is not None and self.form() != self.kept

    def leave_question(self) -> str:
        name = escape(self.preset.name)
        return f"Leave the editor? Your changes to {name} are neither run nor saved."

    # -- reading the form ----------------------------------------------------------------

    def _value(self, name: str) -> str:
        widget = self.query_one(f"#value-{name}")
        return str(widget.value)

    def read(self) -> tuple[Preset | None, dict[str, str], str]:
        """The preset the form describes, per-field errors, and a form-wide error."""
        errors: dict[str, str] = {}
        base: dict[str, Any] = {}
        axes: dict[str, Any] = {}
        for name in FIELDS:
            try:
                value = parse_value(name, self._value(name))
                if name == "model_args":  # checked pairs -> the table a preset holds
                    value = {k: list(v) if isinstance(v, tuple) else v for k, v in value}
                base[name] = list(value) if isinstance(value, tuple) else value
            except ConfigError as exc:
                errors[name] = str(exc)
            if name in NOT_SWEPT:
                continue
            try:
                axis = parse_sweep(name, self.query_one(f"#sweep-{name}", Input).value)
                if axis is not None:
                    axes[name] = axis
            except ConfigError as exc:
                errors[name] = f"sweep: {exc}"
        self.read_values = (base, axes)
        counts = {}
        for key in ("seeds", "trials"):
            text = self.query_one(f"#{key}", Input).value
            if not text.isdigit() or int(text) < 1:
                errors["meta"] = f"{key} must be a whole number >= 1"
            else:
                counts[key] = int(text)
        if errors:
            return None, errors, ""
        has_random = any(isinstance(a, RandomAxis) for a in axes.values())
        name = self.query_one("#name", Input).value.strip()
        preset = Preset(
            name=self.preset.name if name in ("", self.initial_name) else name,
            description=self.preset.description,
            claim=self.preset.claim,
            checks=self.preset.checks,
            base={k: v for k, v in base.items() if v is not None},
            axes=axes,
            seeds=counts["seeds"],
            trials=counts["trials"] if has_random else 1,
            sweep_seed=self.preset.sweep_seed,
            source="editor",
            shipped=False,
            import_dir=self.preset.import_dir,
        )
        try:
            Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in base.items()})
            preset.validate()
            from hypertui.engine.training.devices import resolve_device

            resolve_device(base["device"])
        except ConfigError as exc:  # a combination: engine messages start with the field
            message = str(exc).removeprefix("editor: ")
            if message.startswith("[sweep] "):  # what the sweep's fields mean together
                message = "sweep: " + message.removeprefix("[sweep] ")
            field = message.removeprefix("sweep: ").split(" ", 1)[0].rstrip(":")
            if field in FIELDS:
                return None, {field: message}, ""
            return None, {}, message
        return preset, {}, ""

    def validate(self) -> None:
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        preset, errors, general = self.read()
        self.current = preset
        base, axes = self.read_values
        moot = moot_fields(base, axes)  # greyed: means nothing for any of these values
        drawn_where = sometimes_moot(base, axes)  # drawn only where it means something
        for name in FIELDS:
            help_line = self.query_one(f"#err-{name}", Static)
            self.query_one(f"#row-{name}").set_class(name in moot, "moot")
            help_line.set_class(name in moot and name not in errors, "moot")
            if name in errors:
                help_line.update(plain(errors[name], "red"))
                help_line.add_class("invalid")
            else:
                if name in moot:
                    help_line.update(plain(moot[name]))
                elif name in drawn_where:
                    where = drawn_where[name]
                    help_line.update(plain(f"drawn only where it means something: {where}"))
                else:
                    help_line.update(self.docs.get(name, ""))
                help_line.remove_class("invalid")
        self.query_one("#err-meta", Static).update(plain(errors.get("meta", ""), "red"))
        status = self.query_one("#editor-status", Static)
        if preset is None:
            problems = len(errors) + bool(general)
            status.update(plain(general or f"{problems} invalid field(s): fix them to run", "red"))
        else:
            kind = (
                "cpu" if preset.base_config.device in ("cpu", "auto") and not self._gpu() else "gpu"
            )
            status.update(f"{preset.n_trials} trials · {human(estimate_seconds(preset, kind))}")
        self.query_one("#run", Button).disabled = preset is None
        self.query_one("#save", Button).disabled = preset is None

    @staticmethod
    def _gpu() -> bool:
        from hypertui.engine.training.devices import available_devices

        return available_devices()[0] != "cpu"

    def on_input_changed(self, event: Input.Changed) -> None:
        # Validating expands every trial (~100 ms for a 648-trial grid): once typing pauses,
        # not on every key. Run and save validate first, so nothing stale is ever used.
        if self._pending is not None:
            self._pending.stop()
        self._pending = self.set_timer(VALIDATE_AFTER_S, self.validate)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "backend":
            self.query_one("#address", Input).disabled = event.value != "ray"
            return
        self.validate()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        source = self.preset.with_overrides(full=True) if event.value else self.preset
        base = source.base_config
        for name in FIELDS:
            widget = self.query_one(f"#value-{name}")
            widget.value = (
                (source.base.get("task", "") if name == "task" else getattr(base, name))
                if isinstance(widget, Select)
                else value_text(getattr(base, name), name)
            )
            if name not in NOT_SWEPT:
                self.query_one(f"#sweep-{name}", Input).value = sweep_text(source.axes.get(name))
        self.query_one("#seeds", Input).value = str(source.seeds)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_run()
        elif event.button.id == "save":
            self.action_save()

    # -- actions ------------------------------------------------------------------------

    def action_run(self) -> None:
        self.validate()
        if self.current is None:
            self.notify("Fix the fields marked in red first.", severity="error")
            return
        _, config = next(self.current.points())
        if config.model not in MODELS:  # one build of it first, in a process of its own
            self.notify("Checking your model: one build, in a process of its own…")
            self.run_worker(
                lambda: self.check_model(config.to_dict()),
                thread=True,
                exclusive=True,
                group="model-check",
            )
            return
        self.start_run()

    def check_model(self, config: dict) -> None:
        """In a worker thread: build the user's model once; run, or say why not."""
        from hypertui.engine.sweeps.apart import check_build

        why = check_build(config)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.model_checked, why)

    def model_checked(self, why: str) -> None:
        if why:
            self.notify(
                why, title="Your model cannot train", severity="error", timeout=12, markup=False
            )
            return
        self.start_run()

    def start_run(self) -> None:
        from hypertui.engine.store.store import UI_LOCK_WAIT_S, Store
        from hypertui.engine.sweeps.backends import check_backend
        from hypertui.engine.sweeps.sweep import create_sweep

        options = {**self.app.run_options(), **self.backend_options()}
        changed = self.changes(self.current)
        if changed:  # what History and `runs` show beside the preset's name, as --set does
            options["overrides"] = " ".join(changed)
        try:
            check_backend(options)  # Ray missing, nothing at the address: say so, start nothing
            store = Store(self.app.store_path, lock_wait_s=UI_LOCK_WAIT_S * 4)
            sweep_id = create_sweep(store, self.current, options)
            store.close()
        except HypertuiError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.kept = self.form()  # the sweep records these changes (History shows them)
        self.app.start_sweep(sweep_id)

    def changes(self, edited: Preset) -> list[str]:
        """The form's changes to the preset, spelled as `hypertui run --set` spells them."""
        from hypertui.engine.sweeps.overrides import overrides

        full = any(box.value for box in self.query("#full").results(Checkbox))
        return overrides(self.preset, edited, full=full)

    def backend_options(self) -> dict:
        """Where the sweep trains: this machine, or Ray (a local instance or a cluster)."""
        backend = self.query_one("#backend", Select).value
        address = self.query_one("#address", Input).value.strip() if backend == "ray" else ""
        return {"backend": backend, **({"address": address} if address else {})}

    def action_save(self) -> None:
        self.validate()
        if self.current is None:
            self.notify("Fix the fields marked in red first.", severity="error")
            return
        from hypertui.engine.analysis.export import write_atomic
        from hypertui.engine.core.paths import user_presets_dir
        from hypertui.engine.sweeps.presets import catalogue, preset_to_toml

        name = self.query_one("#name", Input).value.strip()
        if not NAME.match(name):
            self.notify("Name: letters, digits, - _ . only (up to 64).", severity="error")
            return
        existing = catalogue().presets.get(name)
        path = user_presets_dir() / f"{name}.toml"
        reopened = not self.preset.shipped and name == self.preset.name and self.preset.source
        if reopened:  # the user preset this editor opened: save back into its own file
            path = Path(self.preset.source)
        elif existing is not None and (existing.shipped or path.exists()):
            self.notify(
                f"A preset named {name!r} exists already: choose another name.", severity="error"
            )
            return
        try:
            write_atomic(path, preset_to_toml(replace(self.current, name=name)))
        except HypertuiError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.kept = self.form()
        self.notify(f"Saved {path}", title="Preset saved", timeout=6, markup=False)

    def action_back(self) -> None:
        if not self.unsaved:
            self.app.pop_screen()
            return

        def answer(leave: bool | None) -> None:
            if leave:
                self.app.pop_screen()

        self.app.push_screen(ConfirmScreen(self.leave_question()), answer)
