"""TensorBoard logs you already have, in the store: `hypertui import-tb LOGDIR [--follow]`.

Every folder under LOGDIR that holds event files is one run (TensorBoard's own notion of a
run); all of them are one sweep (a group, as tracked scripts' runs are), compared by their
folder. Scalars are read with TensorBoard's own event-file reader (the optional extra
`hypertui[tensorboard]`): one curve point per step, holding every tag logged at that step,
charted against the step. `--follow` keeps reading the files as the training script
writes them, so a script that already logs to TensorBoard is watched live in the app with
no change to it; the importer beats each run's heartbeat as a tracked script does.

A run's id comes from its folder's path, so importing the same folder again adds only the
steps past those already stored.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Progress
from hypertui.engine.core.records import TENSORBOARD
from hypertui.engine.store import tracked
from hypertui.engine.store.liveness import HEARTBEAT_S
from hypertui.engine.store.store import Store
from hypertui.engine.tracking.summary import Summary, guess_mode, pick_metric

FOLLOW_S = 1.0  # --follow reads the event files this often


def event_loader() -> Callable:
    """TensorBoard's EventFileLoader, or one line saying how to install it."""
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    except ImportError:
        raise HypertuiError(
            "import-tb reads event files with TensorBoard's own reader: "
            "pip install 'hypertui[tensorboard]' (or: pip install tensorboard)"
        ) from None
    return EventFileLoader


def run_folders(logdir: Path) -> list[Path]:
    """The folders under (and including) `logdir` that hold event files, in order."""
    if not logdir.is_dir():
        raise HypertuiError(f"{logdir}: no such folder (give the folder TensorBoard logs to)")
    folders = sorted({p.parent for p in logdir.rglob("*tfevents*") if p.is_file()})
    if not folders:
        raise HypertuiError(f"{logdir}: no TensorBoard event files (*tfevents*) in it")
    return folders


@dataclass
class TbRun:
    folder: Path
    name: str  # the folder, relative to LOGDIR ("." for LOGDIR itself)
    run_id: str
    loaders: dict[Path, object] = field(default_factory=dict)  # event file -> its loader
    steps: dict[int, dict[str, float]] = field(default_factory=dict)  # read, not stored
    first_wall: float | None = None
    last_elapsed: float | None = None  # the logs' seconds from the first event to the last step
    last_stored: int = -1  # the last step in the store
    summary: Summary = field(default_factory=Summary)
    chose_metric: bool = False  # the metric was picked from this run's first point
    sweep_id: str = ""


def run_id_of(folder: Path) -> str:
    """A run's id from its folder's absolute path: the same folder, the same run."""
    return "tb-" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]


def read_scalars(run: TbRun, loader_class: Callable, warn: Callable[[str], None]) -> None:
    """Read what the run's event files gained since the last read into `run.steps`."""
    for path in sorted(run.folder.glob("*tfevents*")):
        if path not in run.loaders:
            run.loaders[path] = loader_class(str(path))
        try:
            for event in run.loaders[path].Load():
                _take(run, event)
        except Exception as exc:  # a truncated or damaged file: what was read stays
            warn(f"{path}: {type(exc).__name__}: {exc}; read up to there")


def _take(run: TbRun, event) -> None:
    if not event.HasField("summary"):
        return
    if run.first_wall is None:
        run.first_wall = event.wall_time
    for value in event.summary.value:
        number = _scalar(value)
        if number is not None:
            run.steps.setdefault(int(event.step), {})[value.tag] = number
            run.steps[int(event.step)]["_wall"] = event.wall_time


def _scalar(value) -> float | None:
    """A summary value's number, when it is a scalar (images, histograms are skipped)."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.metadata.plugin_data.plugin_name != "scalars" and value.metadata.data_class != 1:
        return None
    tensor = value.tensor
    numbers = list(tensor.float_val) or list(tensor.double_val) or list(tensor.int64_val)
    return float(numbers[0]) if len(numbers) == 1 else None


def new_points(run: TbRun, final: bool) -> list[Progress]:
    """Steps read past the last stored one, in order, as curve points; the newest step is
    held back while following (more of its tags may still come) unless `final`."""
    ready = sorted(run.steps)
    if not final and ready:
        ready = ready[:-1]
    points = []
    for step in ready:
        values = run.steps.pop(step)
        wall = values.pop("_wall")
        if run.summary.metric is None and values:  # none named: one of the first tags
            run.summary.metric = pick_metric(list(values))
            run.summary.mode = guess_mode(run.summary.metric)
            run.chose_metric = True
        run.summary.add(None, step, None, values)  # stored before or not: all of it counts
        run.last_elapsed = wall - (run.first_wall or wall)
        if step <= run.last_stored:
            continue
        points.append(
            Progress(
                run.run_id,
                0,
                step,
                0,
                wall - (run.first_wall or wall),
                values.get("train_loss"),
                {k: v for k, v in values.items() if k != "train_loss"},
                end_of_epoch=False,
            )
        )
        run.last_stored = step
    return points


def import_logdir(
    store: Store,
    logdir: Path,
    group: str,
    metric: str | None,
    mode: str | None,
    follow: bool,
    say: Callable[[str], None],
    stopped: Callable[[], bool] = lambda: False,
) -> str:
    """Import (and with `follow`, keep importing) LOGDIR's runs; returns the sweep id."""
    loader_class = event_loader()
    logdir = logdir.resolve()
    runs: dict[Path, TbRun] = {}
    warned: set[str] = set()

    def warn(text: str) -> None:
        if text not in warned:
            warned.add(text)
            say(f"warning: {text}")

    sweep_id = ""
    next_beat = 0.0
    while True:
        for folder in run_folders(logdir):
            if folder not in runs:
                runs[folder] = _start(store, folder, logdir, group, metric, mode, follow)
                sweep_id = runs[folder].sweep_id
        for run in runs.values():
            read_scalars(run, loader_class, warn)
            points = new_points(run, final=not follow)
            store.add_points(points)
            if points and follow:  # `runs` shows what it reached while it is followed
                tracked.progress(store, run.run_id, **run.summary.columns(run.last_elapsed))
            if run.chose_metric:  # the group ranks by it, unless a run chose one first
                run.chose_metric = False
                tracked.set_metric(store, run.sweep_id, run.summary.metric, run.summary.mode)
        if follow and time.monotonic() >= next_beat:
            next_beat = time.monotonic() + HEARTBEAT_S
            for run in runs.values():
                tracked.beat(store, run.sweep_id, run.run_id, False, 0.0)
        if not follow or stopped():
            break
        time.sleep(FOLLOW_S)
    for run in runs.values():
        store.add_points(new_points(run, final=True))
        _end(store, run)
    n_points = sum(r.last_stored >= 0 for r in runs.values())
    say(f"{len(runs)} runs ({n_points} with scalars) from {logdir} in sweep {sweep_id}")
    return sweep_id


def _start(store, folder, logdir, group, metric, mode, follow) -> TbRun:
    name = str(folder.relative_to(logdir)) if folder != logdir else "."
    run = TbRun(folder, name, run_id_of(folder))
    run.summary = Summary(metric, mode or (guess_mode(metric) if metric else "min"))
    existing = store.db.execute(
        "SELECT sweep_id, (SELECT MAX(step) FROM points WHERE run_id=runs.id) FROM runs WHERE id=?",
        (run.run_id,),
    ).fetchone()
    if existing is not None:  # imported before: go on past its last stored step
        run.sweep_id = existing[0]
        run.last_stored = existing[1] if existing[1] is not None else -1
        tracked.rejoin(store, run.sweep_id, run.run_id)
        return run
    joined = tracked.join(
        store,
        run.run_id,
        group,
        {"run": name},
        0,
        metric,
        run.summary.mode if metric else None,
        {"logdir": str(logdir), "follow": follow},
        problem=TENSORBOARD,
        description=f"TensorBoard logs in {logdir}",
    )
    run.sweep_id = joined.sweep_id
    if joined.metric:
        run.summary.metric, run.summary.mode = joined.metric, joined.mode or "min"
    return run


def _end(store: Store, run: TbRun) -> None:
    s = run.summary
    tracked.end(
        store,
        run.sweep_id,
        run.run_id,
        "diverged" if s.diverged else "finished",
        f"{s.metric} is not finite" if s.diverged else "",
        **s.columns(run.last_elapsed),
        wall_s=run.last_elapsed,  # the training's time, as its logs tell it
        notes=[],
    )
