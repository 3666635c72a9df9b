"""A run of your own training loop, written to the store as it trains.

    import hypertui
    with hypertui.init(name="resnet18-cifar", config={"lr": 3e-4, "seed": 0},
                       metric="val_acc", mode="max") as run:
        for epoch in range(epochs):
            ...
            run.log({"train_loss": loss, "val_acc": acc}, epoch=epoch)

`hypertui attach`, the app, `runs`, `show` and `export` see it as any sweep's run: runs that
share a `group` (default: the name) are one sweep, compared by the config keys whose
values differ, with mean ± std over `seed`. Nothing here may break the user's training:
bad values, a busy, full, read-only or damaged store are a warning on stderr (once) and a
line in the run's notes; viewers' requests arrive through `log` (a pause holds there,
a skip or a cancel raises `Stop`).
"""

from __future__ import annotations

import atexit
import math
import os
import platform
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.ids import new_id
from hypertui.engine.core.paths import checkpoints_dir, default_store_path
from hypertui.engine.tracking.logger import Logger, Pruned, Stop
from hypertui.engine.tracking.summary import guess_mode
from hypertui.engine.tracking.writer import Identity, Point, Writer

__all__ = ["Pruned", "Run", "Stop", "init"]

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{3,63}")
END_WAIT_S = 10.0  # the end of a run waits this long for the store, then gives up
PLAIN = (bool, int, float, str, type(None))


def init(
    name: str | None = None,
    config: dict[str, Any] | None = None,
    metric: str | None = None,
    mode: str | None = None,
    group: str | None = None,
    store: str | os.PathLike | None = None,
    id: str | None = None,  # noqa: A002 - the run's id, as W&B names it
) -> Run:
    """Start tracking a run (see the module's docstring); returns the `Run` to log to.

    name: what the run is (default: the script's file name); group: the sweep it joins
    (default: the name); config: its hyperparameters, plain values (numbers, strings,
    bools, lists of them); metric and mode ("min" or "max"): what ranks the group's runs
    (default: val_loss, or the first metric logged; max for accuracies, min otherwise);
    store: the run store (default: runs.sqlite in $HYPERTUI_HOME, where `hypertui` looks);
    id: the run's id (default: a new one)."""
    return Run(name, config, metric, mode, group, store, id)


class Run(Logger):
    def __init__(self, name, config, metric, mode, group, store, run_id):
        super().__init__()
        self.name = _text(name, "name", self) or _script_name()
        self.group = _text(group, "group", self) or self.name
        self.config = _plain_config(config, self)
        metric = _text(metric, "metric", self)
        if mode not in (None, "min", "max"):
            self.warn("mode", f"mode={mode!r} is not 'min' or 'max'; guessing from the name")
            mode = None
        if metric and not mode:
            mode = guess_mode(metric)
        seed = self.config.get("seed", 0)
        if type(seed) is not int:
            seed = 0
        if run_id is not None and not (isinstance(run_id, str) and ID.fullmatch(run_id)):
            self.warn("id", f"id={run_id!r} is not 4-64 letters, digits, _ . -; using a new id")
            run_id = None
        self.id = run_id or new_id(12)
        who = Identity(self.id, self.group, self.config, seed, metric, mode, _environment())
        self._writer = Writer(_store_path(store, self), who, self.warn, self.notes)
        _install_exit_hooks()
        self._writer.start()
        _open_runs.add(self)

    # -- where points go, what hypertui asks (see Logger) ------------------------------

    def emit(self, point: Point) -> None:
        self._writer.elapsed_s, self._writer.paused_s = point.elapsed_s, self._paused_s
        self._writer.points.append(point)  # the writer thread stores it

    def stop_reason(self) -> str:
        return self._writer.stop_reason

    def paused(self) -> bool:
        return self._writer.pause.is_set()

    def closed(self) -> bool:
        return self._ended or self._writer.broken

    @property
    def sweep_id(self) -> str | None:
        """The id of the group's sweep (what `hypertui attach` takes), once stored."""
        self._writer.joined.wait(END_WAIT_S)
        return self._writer.sweep_id

    def save(self, state: dict[str, Any]) -> None:
        """Keep `state` (a model's and an optimizer's state_dict, the epoch: tensors,
        numbers, strings, lists and dicts of them) as this run's checkpoint, to go on from
        if the script dies: `run.restore()` in its next run returns it (engine/tracking/saved.py).
        A value of another kind or a full disk is a warning; training goes on."""
        folder = self._checkpoints("run.save")
        if folder is None:
            return
        from hypertui.engine.tracking import saved

        try:
            saved.save(folder, state)
        except TypeError as exc:
            self.warn("save", f"run.save: {exc}; not saved")
        except OSError as exc:
            self.warn("save-disk", f"run.save: cannot write ({exc.strerror or exc}); not saved")

    def restore(self) -> dict[str, Any] | None:
        """What the newest unfinished run of this group with this config saved, or None;
        this run takes that checkpoint over (see engine/tracking/saved.py)."""
        folder = self._checkpoints("run.restore")
        if folder is None:
            return None
        import shutil

        from hypertui.engine.store.store import Store
        from hypertui.engine.tracking import saved

        try:
            store = Store(self._writer.path)
            try:
                runs = store.runs(self.sweep_id)
            finally:
                store.close()
        except HypertuiError as exc:
            self.warn("restore", f"run.restore: {exc}")
            return None
        ended = ("interrupted", "cancelled", "failed")
        same = [
            r for r in runs if r.id != self.id and r.status in ended and r.config == self.config
        ]
        for old in sorted(same, key=lambda r: r.idx, reverse=True):
            path = checkpoints_dir(self.sweep_id, old.id) / saved.LAST
            if not path.exists():
                continue
            try:
                state = saved.load(path)
                folder.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), str(folder / saved.LAST))
            except (HypertuiError, OSError) as exc:
                self.warn(f"restore {old.id}", f"run.restore: {exc}; not resumed from it")
                continue
            self.notes.append(f"resumed from the checkpoint of run {old.id}")
            return state
        return None

    def _checkpoints(self, what: str) -> Path | None:
        """This run's checkpoint folder, or None (a warning) when it is not stored."""
        if self.closed() or self.sweep_id is None:
            self.warn(what, f"{what}: the run is not stored; nothing saved or restored")
            return None
        return checkpoints_dir(self.sweep_id, self.id)

    def finish(self, status: str = "finished", reason: str = "") -> None:
        """End the run (a `with` block does it for you): its final metrics are stored,
        and its group's sweep ends with its last running run."""
        if self._ended:
            return
        self._ended = True
        _open_runs.discard(self)
        wall_s = time.monotonic() - self._started
        self._writer.end(status, reason, wall_s, END_WAIT_S)
        if status == "finished" and self._writer.sweep_id:  # a checkpoint was to resume from
            from hypertui.engine.tracking.saved import LAST

            (checkpoints_dir(self._writer.sweep_id, self.id) / LAST).unlink(missing_ok=True)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            self.finish()
            return False
        if issubclass(kind, Stop):
            self.finish("pruned" if issubclass(kind, Pruned) else "cancelled", str(exc))
            return True  # the loop was told to stop: the script goes on after the block
        if issubclass(kind, SystemExit):  # sys.exit(): its status says how it went
            code = exc.code if isinstance(exc, SystemExit) else None
            if code in (None, 0):
                self.finish()
            else:
                self.finish("failed", f"the script exited with status {code}")
            return False
        if issubclass(kind, KeyboardInterrupt):
            self.finish("cancelled", "interrupted (Ctrl-C)")
            return False
        self.finish("failed", _last_line(kind, exc))
        return False

    def __repr__(self) -> str:
        return f"<hypertui.Run {self.id} group={self.group!r}>"


_open_runs: set[Run] = set()  # ended at exit if the script never ended them


def _end_open_runs() -> None:
    for run in list(_open_runs):
        failure = _failure.get("reason")
        if failure is not None:
            status = "cancelled" if failure.startswith("KeyboardInterrupt") else "failed"
            run.finish(status, "interrupted (Ctrl-C)" if status == "cancelled" else failure)
        else:
            run.finish()


_failure: dict[str, str] = {}  # the exception that ended the script, if one did


def _install_exit_hooks() -> None:
    """Once, at the first run: runs left open end with the script, `failed` when an
    exception ended it (with its last line), `cancelled` on Ctrl-C."""
    if _failure.get("installed"):
        return
    _failure["installed"] = "yes"
    previous = sys.excepthook

    def excepthook(kind, exc, tb) -> None:
        _failure["reason"] = _last_line(kind, exc)
        previous(kind, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_open_runs)


def _last_line(kind, exc) -> str:
    text = str(exc).strip().splitlines()
    return f"{kind.__name__}: {text[-1]}" if text else kind.__name__


def _text(value: Any, what: str, run: Run) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        run.warn(what, f"{what}={value!r} is not a non-empty string; using the default")
        return None
    return value.strip()[:200]


def _plain_config(config: Any, run: Run) -> dict[str, Any]:
    """The config as plain values: a value of another kind (a Path, a torch.device) is
    kept as its text, with a warning."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        try:
            config = dict(vars(config))  # an argparse.Namespace
        except TypeError:
            run.warn("config", f"config is a {type(config).__name__}, not a dict; left out")
            return {}
    plain = {}
    for key, value in config.items():
        if not isinstance(key, str):
            run.warn(f"config {key!r}", f"config key {key!r} is not a string; left out")
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, PLAIN) for v in value):
            value = list(value)
        elif not isinstance(value, PLAIN) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            run.warn(f"config {key}", f"config {key} = {str(value)[:40]!r} is kept as text")
            value = str(value)
        plain[key] = value
    return plain


def _script_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return Path(path).stem if path else "interactive"


def _store_path(store: Any, run: Run) -> Path:
    if store is not None:
        return Path(store).expanduser()
    try:
        return default_store_path()
    except HypertuiError as exc:  # a $HYPERTUI_HOME that cannot be used
        run.warn("home", f"{exc}; tracking into ./runs.sqlite")
        return Path("runs.sqlite")


def _environment() -> dict[str, Any]:
    argv = " ".join(sys.argv)[:500]
    return {
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "argv": argv,
        "cwd": os.getcwd(),
        "torch": _loaded_version("torch"),
    }


def _loaded_version(module: str) -> str:
    """A library's version when the script imported it (never imported here for it)."""
    loaded = sys.modules.get(module)
    return str(getattr(loaded, "__version__", "")) if loaded else ""
