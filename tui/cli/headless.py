"""`hypertui run` without the TUI: a rich progress display, or JSON lines with --json.

Progress goes to stderr and results to stdout, so `hypertui run ... > table.txt` keeps
only the table; with --json, stdout carries nothing but one JSON object per line.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hypertui.engine.analysis.compare import compare_sweep
from hypertui.engine.analysis.export import fmt
from hypertui.engine.core.controls import Controls
from hypertui.engine.core.events import Failed, Finished, RunStarted, SweepEvent, event_to_dict
from hypertui.engine.core.events import Progress as ProgressEvent
from hypertui.engine.core.objective import objective
from hypertui.engine.core.records import OWN_LOOP_PROBLEMS, replicate_point
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.backends import jobs_line
from hypertui.engine.sweeps.runner import run_watched
from hypertui.tui.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from hypertui.tui.text.report import comparison_table, describe_point, print_verdicts
from hypertui.tui.text.safe import escape


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null so that any JSON reader accepts the line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def json_line(item: SweepEvent) -> str:
    data = event_to_dict(item.event)
    kind = data.pop("event")
    head = {
        "event": kind,
        "sweep_id": item.sweep_id,
        "trial": item.trial + 1,  # 1-based, as everywhere a trial is shown
        "n_trials": item.n_trials,
    }
    line = json.dumps({**head, **data})
    if "NaN" in line or "Infinity" in line:  # rare (a diverged run): redo it JSON-safe
        line = json.dumps(_plain({**head, **data}))
    return line


def summary(store: Store, sweep_id: str) -> dict[str, Any]:
    sweep = store.sweep(sweep_id)
    comp = compare_sweep(sweep, store.runs(sweep_id))
    ranking = []
    for g in comp.groups:
        s = g.stats.get(comp.main)
        ranking.append(
            {
                "point": g.point,
                "n": g.n_finished,
                "diverged": g.n_diverged,
                "pruned": g.n_pruned,
                "failed": g.n_failed,
                f"{comp.main}_mean": s.mean if s else None,
                f"{comp.main}_std": s.std if s else None,
            }
        )
    return _plain(
        {
            "event": "summary",
            "sweep_id": sweep_id,
            "status": sweep.status,
            "counts": sweep.counts,
            "main_metric": comp.main,
            "ranking": ranking,
        }
    )


def _labels(runs) -> dict[int, str]:
    """Each trial's line label: its swept values, seed and fold."""
    return {r.idx: escape(describe_point(replicate_point(r))) for r in runs}


class _Display:
    """Per-trial and overall bars with ETA, and one line per finished trial."""

    def __init__(self, store: Store, sweep_id: str):
        self.console = Console(stderr=True)
        sweep = store.sweep(sweep_id)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.overall = self.progress.add_task(
            f"sweep {sweep_id} {escape(sweep.preset)}",
            total=sweep.n_runs,
            completed=sweep.n_done,
            info="",
        )
        self.trial = self.progress.add_task("trial", total=1, info="")
        self.options, self.said_jobs = sweep.options, False
        self.budget: float | None = None
        # a sweep of your own function ranks by the metric its preset names
        self.own_metric = (
            sweep.options.get("metric") if sweep.problem in OWN_LOOP_PROBLEMS else None
        )
        runs = store.runs(sweep_id)
        self.store, self.sweep_id = store, sweep_id  # a learned search adds runs as it asks
        self.points = _labels(runs)
        # what ranks the trials: val_acc, val_mse, its config's metric, or the function's
        self.metric = self.own_metric or objective(sweep.problem, runs, sweep.options).main

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:  # an error message follows: leave it alone on its line
            self.progress.live.transient = True
        self.progress.stop()

    def show(self, item: SweepEvent) -> None:
        e = item.event
        if not self.said_jobs:  # the first line once training starts (an error says only
            self.said_jobs = True  # itself): where the units train, how many at once
            self.console.print(f"[dim]{jobs_line(self.options)}[/dim]", highlight=False)
        name = f"trial {item.trial + 1}/{item.n_trials}"
        if item.trial not in self.points:  # a learned search's next batch, just asked
            self.points = _labels(self.store.runs(self.sweep_id, analysis=False))
            self.progress.update(self.overall, total=item.n_trials)
        if isinstance(e, RunStarted):
            self.budget = e.config.get("time_budget_s")
            total = self.budget if self.budget else e.config.get("epochs")
            self.progress.reset(self.trial, total=total, description=name, info="")
        elif isinstance(e, ProgressEvent):
            if self.own_metric:  # the function's epochs are its own: 0-based, as range()
                done = e.epoch + 1 if e.end_of_epoch else e.epoch
            elif self.budget:
                done = min(e.elapsed_s, self.budget)
            else:
                done = e.epoch if e.end_of_epoch else e.epoch - 1
            metric = self.metric
            self.progress.update(
                self.trial, completed=done, info=f"{metric} {fmt(e.metrics.get(metric))}"
            )
        elif isinstance(e, (Finished, Failed)):
            self.progress.advance(self.overall)
            self.console.print(self.line(item), highlight=False)

    def line(self, item: SweepEvent) -> str:
        e = item.event
        head = f"trial {item.trial + 1}/{item.n_trials} {self.points[item.trial]}"
        if isinstance(e, Failed):
            return f"[red]✗ {head} failed[/red]: {escape(e.reason)}"
        value = f"{self.metric} {fmt(e.final[self.metric])}" if self.metric in e.final else ""
        colour = {"finished": "green", "diverged": "yellow", "pruned": "cyan", "cancelled": "dim"}[
            e.status
        ]
        reason = f" ({escape(e.reason)})" if e.reason and e.status != "finished" else ""
        return (
            f"[{colour}]{'✓' if e.status == 'finished' else '!'} {head} {e.status}[/{colour}]"
            f" {value}{reason} in {e.wall_s:.1f} s"
        )


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: Python's exit would flush the closed pipe and fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def resume_hint(store: Store, sweep_id: str) -> str:
    return f"  hypertui run --resume {sweep_id} --store {store.path}"


def run_headless(store: Store, sweep_id: str, as_json: bool, retry_failed: bool = False) -> int:
    """Train a sweep in this process (a runner in the foreground), showing its progress.

    It claims the sweep and beats its heartbeat like a detached runner, so `hypertui
    pause|skip|cancel` and the app control it too; kill -TERM cancels, kill -USR1 toggles
    pause, kill -USR2 skips. A closed stdout (`--json | head`) cancels the sweep."""
    controls = Controls()
    controls.install_signals()
    out = Console()
    try:
        if as_json:
            for item in run_watched(store, sweep_id, controls, retry_failed):
                print(json_line(item), flush=True)
        else:
            with _Display(store, sweep_id) as display:
                for item in run_watched(store, sweep_id, controls, retry_failed):
                    display.show(item)
    except KeyboardInterrupt:
        hint = resume_hint(store, sweep_id)
        print(f"\ninterrupted; finished trials are saved. Resume with:\n{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away: nobody sees the rest, stop cleanly
        _quiet_stdout()
        hint = resume_hint(store, sweep_id)
        print(f"output closed; the sweep stopped. Resume with:\n{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED

    sweep = store.sweep(sweep_id)
    if as_json:
        print(json.dumps(summary(store, sweep_id)), flush=True)
    else:
        runs = store.runs(sweep_id)
        comp = compare_sweep(sweep, runs)
        title = f"{escape(sweep.preset)} (sweep {sweep_id})"
        out.print(comparison_table(comp, title=title, runs=runs))
        print_verdicts(out, sweep, runs)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(sweep.counts.items()))
        out.print(
            f"sweep {sweep_id}: {counts}. Export: hypertui export {sweep_id} --out results.csv",
            highlight=False,
        )
    if sweep.status == "cancelled":
        print(
            f"cancelled; finished trials are saved. Resume with:\n{resume_hint(store, sweep_id)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if sweep.counts.get("failed") else EXIT_OK
