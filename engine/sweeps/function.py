"""A trial of your own training function: `main(config, run)`, called in the child process
that engine/sweeps/apart.py starts for it (the function may exit, hang or leak GPU memory
without touching the runner).

`run` logs as a tracked script's does (engine/tracking/logger.py), but each point goes to
the runner over the child's pipe as a `Progress` event, and the runner writes the store:
the same events as any trial, so Live, Results, halting and resuming need nothing new.
A skip or a cancel reaches the function as `hypertui.Stop` from `run.log`; a pause holds
there. How the function ends is how the trial ends: it returns (finished, or diverged when
its metric went NaN), raises (failed, with the traceback in the runner's log), is stopped
(cancelled) — or returns having logged nothing, which fails it with the reason.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from hypertui.engine.core.events import Event, Failed, Finished, Progress, RunStarted
from hypertui.engine.core.halving import asha_keeps
from hypertui.engine.core.records import RunRow
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.function_preset import OURS
from hypertui.engine.tracking.logger import Logger, Pruned, Stop
from hypertui.engine.tracking.summary import Summary
from hypertui.engine.tracking.writer import Point

Rungs = dict[int, list[float]]  # epochs done -> the ranking metric of earlier trials there


def is_function_trial(row: RunRow) -> bool:
    """Whether a trial calls the user's function (our own configs have no `train`)."""
    return "train" in row.config


class TrialRun(Logger):
    """The `run` a swept function logs to: its points go to the runner as events."""

    def __init__(
        self, row: RunRow, halt, pause, send: Callable[[Event], None], history: Rungs | None
    ):
        super().__init__()
        self.id = row.id
        self.config = {k: v for k, v in row.config.items() if k not in OURS}
        self.summary = Summary(row.config.get("metric", "val_loss"), row.config.get("mode", "min"))
        self.halt, self.pause, self.send = halt, pause, send
        self.halving = row.config.get("prune") == "halving"
        self.first = row.config.get("prune_from", 1)
        self.eta = row.config.get("prune_eta", 3)
        self.history = history or {}
        self.judged = set()

    def emit(self, point: Point) -> None:
        step = point.step if point.step is not None else point.count
        self.summary.add(point.epoch, step, point.samples, point.values)
        values = point.values
        self.send(
            Progress(
                self.id,
                point.epoch if point.epoch is not None else 0,
                step,
                point.samples or 0,
                point.elapsed_s,
                values.get("train_loss"),
                {k: v for k, v in values.items() if k != "train_loss"},
                end_of_epoch=point.by_epoch,
            )
        )
        if self.halving and point.by_epoch:
            self.judge(len(self.summary.epochs))

    def judge(self, epochs: int) -> None:
        """At a rung (prune_from x eta^k epochs done), the asynchronous halving rule: go on,
        or raise Pruned out of `run.log` (the trial ends `pruned`, its curve kept)."""
        last = self.config.get("epochs")  # the function's own, when it has one
        if not is_rung(epochs, self.first, self.eta) or epochs in self.judged or epochs == last:
            return
        self.judged.add(epochs)
        s = self.summary
        value = s.final.get(s.metric)
        earlier = self.history.get(epochs, [])
        if value is not None and not asha_keeps(value, earlier, s.mode == "max", self.eta):
            raise Pruned(
                f"pruned by halving after epoch {epochs}: {s.metric} {value:.4g} is outside the"
                f" best 1/{self.eta} of the {len(earlier) + 1} trials that reached it"
            )

    def stop_reason(self) -> str:
        return "stopped from hypertui" if self.halt.is_set() else ""

    def paused(self) -> bool:
        return self.pause.is_set()

    def ended(self, status: str, reason: str = "") -> Finished:
        s = self.summary
        if status == "finished" and s.diverged:
            status, reason = "diverged", f"{s.metric} is not finite"
        return Finished(
            run_id=self.id,
            status=status,
            epochs_done=float(len(s.epochs)),
            steps=s.steps,
            samples=s.samples or 0,
            elapsed_s=self.elapsed_s,
            wall_s=time.monotonic() - self._started,
            final=s.final,
            best=s.best,
            best_epoch=s.best_epoch,
            test=s.test,
            reason=reason,
        )


def call_function(
    row: RunRow, halt, pause, send: Callable[[Event], None], history: Rungs | None = None
) -> None:
    """The child's side of a function trial: import the function, call it, send every
    event; a failure of the user's code is the trial's (traceback on stderr: the log).
    `history`: what earlier trials reached at each halving rung."""
    spec = row.config["train"]
    run = TrialRun(row, halt, pause, send, history)
    function = _import(spec, row.id, send)
    if function is None:
        return
    send(RunStarted(row.id, row.config, "", "", 0, {}, (), _environment()))
    try:
        result = function(dict(run.config), run)
    except Pruned as exc:
        send(run.ended("pruned", str(exc)))
        return
    except Stop as exc:
        send(run.ended("cancelled", str(exc)))
        return
    except SystemExit as exc:
        if exc.code not in (None, 0):
            send(Failed(row.id, f"{spec} called sys.exit({exc.code!r})"))
            return
        result = None
    except BaseException as exc:  # the user's code raised: its trial fails
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[-1]
        send(
            Failed(
                row.id, f"{type(exc).__name__}: {first} (traceback in the runner's log or stderr)"
            )
        )
        return
    _log_result(run, result)
    if not run.summary.final and not run.summary.test:
        send(Failed(row.id, f"{spec} returned without logging a metric (call run.log)"))
        return
    if run.summary.metric not in {**run.summary.final, **run.summary.test}:
        run.warn("metric", f"{spec} never logged {run.summary.metric}, the metric that ranks")
    send(run.ended("finished"))


def is_rung(epochs: int, first: int, eta: int) -> bool:
    """Whether `epochs` done is a halving rung: first, first x eta, first x eta^2, ..."""
    while epochs > first and epochs % eta == 0:
        epochs //= eta
    return epochs == first


def rung_history(store: Store, row: RunRow) -> Rungs:
    """What every other trial of `row`'s sweep that has a curve reached at each rung: its
    ranking metric at the end of that many epochs (read by the runner as the trial starts;
    trials run one after another, so these are the trials that reached a rung before it)."""
    config = row.config
    if config.get("prune") != "halving":
        return {}
    metric, first, eta = (
        config.get("metric", "val_loss"),
        config.get("prune_from", 1),
        config.get("prune_eta", 3),
    )
    history: Rungs = {}
    for other in store.runs(row.sweep_id, analysis=False):
        if other.id == row.id:
            continue
        seen: set = set()
        for point in store.points(other.id):
            if not point["end_of_epoch"]:
                continue
            seen.add(point["epoch"])
            value = point.get(metric)
            if value is not None and is_rung(len(seen), first, eta):
                history.setdefault(len(seen), []).append(value)
    return history


def _log_result(run: TrialRun, result: Any) -> None:
    """What the function returned, as its last point: a dict of metrics, or the value of
    the ranking metric (airbench's `main()` returns its accuracy)."""
    if isinstance(result, dict):
        run.log(result)
    elif isinstance(result, (int, float)) and not isinstance(result, bool):
        run.log({run.summary.metric: float(result)})


def _import(spec: str, run_id: str, send) -> Callable | None:
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, name)
    except BaseException as exc:  # its import raised: anything, SystemExit included
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[-1]
        send(Failed(run_id, f"train = {spec!r}: {type(exc).__name__}: {first}"))
        return None
    if not callable(function):
        send(
            Failed(
                run_id, f"train = {spec!r} is not a function (it is {type(function).__name__!r})"
            )
        )
        return None
    return function


def import_problem(spec: str) -> str:
    """Why `spec` cannot be called as main(config, run) ('' when it can): imported here,
    in a child process of its own (engine/sweeps/apart.py `check_function`)."""
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:
        first = (str(exc).strip().splitlines() or [""])[-1]
        return f"train = {spec!r}: importing {module_name} failed ({type(exc).__name__}: {first})"
    function = getattr(module, name, None)
    if function is None:
        return f"train = {spec!r}: module {module_name!r} has no {name!r}"
    if not callable(function):
        return f"train = {spec!r} is not a function (it is {type(function).__name__!r})"
    return ""


def _environment() -> dict[str, str]:
    env = {"python": platform.python_version()}
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch"] = str(torch.__version__)
    return env
