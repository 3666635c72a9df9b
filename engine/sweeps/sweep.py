"""Sweeps: a preset's trials, recorded in the store and run one after another.

    sweep_id = create_sweep(store, preset)
    for item in run_sweep(store, sweep_id):
        print(item.trial, item.event)

Every engine event is written to the store as it arrives (curve points once per report,
never per step) and passed on with its sweep context. A diverged or failed trial is
recorded and the sweep goes on; `Controls.stop` cancels the running trial within a batch and
leaves the rest `pending`; `resume` is simply `run_sweep` again on the same id.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hypertui.engine.core.config import make_config
from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import ConfigError, HypertuiError
from hypertui.engine.core.events import Event, Failed, Finished, Progress, RunStarted, SweepEvent
from hypertui.engine.core.grouping import MEMBER_FIELDS, check_pbt, population_key
from hypertui.engine.core.ids import new_id
from hypertui.engine.core.records import RunRow
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.apart import runs_own_code, train_apart
from hypertui.engine.sweeps.function import is_function_trial, rung_history
from hypertui.engine.sweeps.function_preset import FUNCTION
from hypertui.engine.sweeps.jobs import run_jobs
from hypertui.engine.sweeps.presets import Preset, parse_preset, preset_to_toml
from hypertui.engine.sweeps.unit import train_unit
from hypertui.engine.training.train import new_run_id

MAX_MEMBERS = 4096  # trials per population (memory stays small for the study's MLPs)
# A CNN member's feature maps are ~10^3 times an MLP's (64 at batch 32 hold ~0.4 GB for
# backward), and past what a device computes at once more members gain nothing.
MAX_CNN_MEMBERS = 64


def create_sweep(store: Store, preset: Preset, options: dict | None = None) -> str:
    """Record a preset's expanded trials as pending runs; return the new sweep's id.

    `options` say how a runner trains it (population, data_dir, backend), so a runner
    started later, elsewhere or detached trains it the same way."""
    trials = []
    function = preset.problem == FUNCTION  # configs of plain values; what ranks them too
    learned = preset.search != "random"  # tpe, gp: each batch recorded when it is asked
    if learned:
        from hypertui.engine.sweeps.search import optuna

        optuna()  # refused now, not in the runner
    for point, config in [] if learned else preset.points():  # each config dict built once
        values = {**config, **preset.goal} if function else config.to_dict()
        if function:  # your own function: its seeds; folds are its own business
            replicates = ((seed, {"seed": seed}) for seed in preset.seeds_of(config))
        else:
            replicates = ((s, {"seed": s, "fold": f}) for s, f in preset.replicates_of(config))
        for seed, replicate in replicates:
            trials.append((new_run_id(), len(trials), seed, {**values, **replicate}, point))
    check_pbt([values for _, _, _, values, _ in trials], function)
    local = (options or {}).get("backend", "local") == "local"  # Ray places units itself
    if preset.jobs and local and "jobs" not in (options or {}):  # `run --jobs` wins
        options = {**(options or {}), "jobs": preset.jobs}
    if preset.import_dir:  # a runner, wherever it starts, imports the model from there
        options = {**(options or {}), "import_dir": preset.import_dir}
    if function:
        options = {**(options or {}), **preset.goal}
    if learned:  # the runner asks each batch of the preset stored with the sweep
        options = {**(options or {}), "search": preset.search, "n_trials": preset.n_trials}
    sweep_id = new_id(8)
    store.create_sweep(
        sweep_id,
        preset=preset.name,
        problem=preset.problem,
        description=preset.description,
        swept=preset.swept,
        trials=trials,
        preset_toml=preset_to_toml(preset),
        options=options,
    )
    return sweep_id


def run_sweep(
    store: Store,
    sweep_id: str,
    controls: Controls | None = None,
    data_dir: Path | None = None,
    population: bool = True,
    backend: Backend | None = None,
    pending: list[RunRow] | None = None,
) -> Iterator[SweepEvent]:
    """Run the sweep's unfinished trials, recording everything in `store`.

    With `population` (the default), MLP trials that differ only in lr, momentum, weight
    decay, seed, activation and optimizer train together as one stacked model
    (engine/training/population.py); their events are the same as one by one. The units (a
    population, or a single trial) are trained by `backend`: this process by default,
    or Ray workers (engine/sweeps/ray/backend.py). `controls.skip` ends the current unit as
    cancelled (run again on resume). A HypertuiError (data missing, device unavailable)
    stops the sweep and propagates; the trials it hit stay pending so that a resume after
    the fix runs them. `pending` is what `store.claim_sweep` returned when the caller
    claimed the sweep itself (a runner claims before it imports torch). The sweep ends
    `done`, `incomplete` (skipped trials), `cancelled`, `failed` (a HypertuiError, kept
    as its error) or, when this process stops mid-way, `interrupted`.
    """
    controls = controls or Controls()
    backend = backend or LocalBackend()
    if isinstance(backend, LocalBackend):  # a function trial's halving reads earlier ones
        backend.rung_history = functools.partial(rung_history, store)
    if pending is None:
        pending = store.claim_sweep(sweep_id)
    end_status, error = "interrupted", ""  # unless the loop below says otherwise
    points = _PointBuffer(store, [])
    if store.sweep(sweep_id).options.get("search") in ("tpe", "gp"):
        from hypertui.engine.sweeps.search import learned_batches  # Optuna: only these

        sweep = store.sweep(sweep_id)
        preset = parse_preset(sweep.preset_toml, f"sweep {sweep_id}")
        batches = learned_batches(store, sweep_id, pending, preset)
    else:
        batches = iter([pending])
    try:
        for batch in batches:  # all at once; a learned search's, each asked after the last
            n_trials = store.sweep(sweep_id).n_planned  # a learned search: its runs to come
            index = {row.id: row.idx for row in batch}
            units = _batches(batch, population)
            points = _PointBuffer(store, units)
            for event in backend.run(units, controls, data_dir):
                if isinstance(event, UnitRestarted):  # a Ray retry: its first attempt never was
                    points.flush()
                    store.reset_runs(event.run_ids)
                    points.forget(event.run_ids)
                    continue
                if isinstance(event, Progress):
                    points.add(event)
                else:
                    points.flush()
                    if isinstance(event, RunStarted):
                        points.started(event.run_id)
                    else:
                        points.ended(event.run_id)
                    skipped = not controls.stop.is_set() and (
                        controls.skip.is_set() or event.run_id in controls.skip_runs
                    )
                    _record(store, event, skipped)
                yield SweepEvent(sweep_id, index[event.run_id], n_trials, event)
            points.flush()
            if controls.stop.is_set():
                break
        n_trials = store.sweep(sweep_id).n_planned  # a learned search: its batches to come
        end_status = "cancelled" if controls.stop.is_set() else "done"
        if end_status == "done" and store.sweep(sweep_id).n_done < n_trials:
            end_status = "incomplete"  # skipped trials: a resume runs them
    except HypertuiError as exc:  # the sweep failed, and says why; a resume after the fix
        points.flush()  # runs what it did not
        store.reset_running(sweep_id)
        end_status, error = "failed", str(exc)
        raise
    finally:
        points.flush()
        store.interrupt_running(sweep_id)  # Ctrl-C, a closed generator: rerun on resume
        store.end_sweep(sweep_id, end_status, error)


@dataclass(frozen=True)
class UnitRestarted:
    """A backend trains a unit again from its start (its worker died): the driver resets the
    unit's runs, so that the store holds each trial once, from the attempt that ends."""

    run_ids: tuple[str, ...]
    reason: str


class Backend(Protocol):
    """Trains a sweep's units and yields their events, in the order they happen."""

    def run(
        self, units: list[list[RunRow]], controls: Controls, data_dir: Path | None
    ) -> Iterator[Event | UnitRestarted]: ...


class LocalBackend:
    """Every unit in this process, one after another; a unit of the user's own code in a
    child process (engine/sweeps/apart.py), so that it cannot take this one down. With
    `jobs` > 1, that many units at once, each in a child process (engine/sweeps/jobs.py)."""

    rung_history: Callable[[RunRow], dict] | None = None  # run_sweep sets it: store reads

    def __init__(self, jobs: int = 1):
        self.jobs = jobs

    def run(
        self, units: list[list[RunRow]], controls: Controls, data_dir: Path | None
    ) -> Iterator[Event]:
        if self.jobs > 1 and len(units) > 1:
            yield from run_jobs(units, controls, data_dir, self.jobs, self.rung_history)
            return
        stop, skip = controls.stop, controls.skip
        for unit in units:
            if stop.is_set():
                return
            skip.clear()
            if is_function_trial(unit[0]):
                history = self.rung_history(unit[0]) if self.rung_history else None
                yield from train_apart(unit, controls, data_dir, history)
                continue
            train = train_apart if runs_own_code(unit) else train_unit
            yield from train(unit, controls, data_dir)


class _PointBuffer:
    """Curve points written one transaction per report of a unit (all its running members'
    points), never per step, so a viewer sees each report as soon as it is complete."""

    MAX_POINTS = 1024  # a bound on what a transaction holds, whatever the units do

    def __init__(self, store: Store, units: list[list[RunRow]]):
        self.store = store
        self.unit_of = {row.id: u for u, unit in enumerate(units) for row in unit}
        self.running: dict[int, set[str]] = {}  # unit -> its started, not ended runs
        self.points: list[Progress] = []
        self.counts: dict[int, int] = {}  # unit -> its points in the buffer

    def started(self, run_id: str) -> None:
        self.running.setdefault(self.unit_of[run_id], set()).add(run_id)

    def ended(self, run_id: str) -> None:
        self.running.get(self.unit_of[run_id], set()).discard(run_id)

    def forget(self, run_ids: tuple[str, ...]) -> None:
        for run_id in run_ids:
            self.ended(run_id)

    def add(self, event: Progress) -> None:
        unit = self.unit_of[event.run_id]
        self.points.append(event)
        self.counts[unit] = self.counts.get(unit, 0) + 1
        if self.counts[unit] >= len(self.running.get(unit, ())) or (
            len(self.points) >= self.MAX_POINTS
        ):
            self.flush()

    def flush(self) -> None:
        if self.points:
            self.store.add_points(self.points)
            self.points = []
            self.counts = {}


_NO_MEMBER_FIELDS = dict.fromkeys(MEMBER_FIELDS)


def _batches(pending: list[RunRow], population: bool) -> list[list[RunRow]]:
    """Trials that can train as one population, in sweep order; otherwise one by one."""
    if not population:
        if any(row.config.get("schedule") == "pbt" for row in pending):
            raise ConfigError("schedule = 'pbt' trains inside a population: drop --no-population")
        return [[row] for row in pending]
    groups: dict[str, list[RunRow]] = {}
    batches: list[list[RunRow]] = []
    keys: dict[str, str | None] = {}  # a key depends only on the non-member fields
    for row in pending:
        if is_function_trial(row):  # the user's function: a trial alone
            batches.append([row])
            continue
        shared = repr({**row.config, **_NO_MEMBER_FIELDS})
        if shared not in keys:
            keys[shared] = population_key(make_config(row.config))
        key = keys[shared]
        if key is None:
            batches.append([row])
            continue
        limit = MAX_CNN_MEMBERS if row.config["model"] == "cnn" else MAX_MEMBERS
        if key not in groups or len(groups[key]) >= limit:
            groups[key] = []
            batches.append(groups[key])
        groups[key].append(row)
    # Members with the same activation side by side: each run of them shares a kernel per
    # layer (engine/training/population.py); the optimizer gathers its members wherever they sit.
    return [
        sorted(b, key=lambda row: (row.config["activation"], row.config["optimizer"]))
        if len(b) > 1
        else b
        for b in batches
    ]


def _record(store: Store, event: Event, skipped: bool) -> None:
    if isinstance(event, RunStarted):
        store.run_started(event)
    elif isinstance(event, Finished):
        if skipped and event.status == "cancelled":
            event = Finished(**{**event.__dict__, "reason": "skipped"})
        store.run_ended(event)
    elif isinstance(event, Failed):
        store.run_failed(event.run_id, event.reason)
