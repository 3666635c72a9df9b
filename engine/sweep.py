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

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import make_config
from engine.errors import HypertuiError
from engine.events import Event, Failed, Finished, Progress, RunStarted
from engine.ids import new_id
from engine.population import MEMBER_FIELDS, Member, population_key, run_population
from engine.presets import Preset, preset_to_toml
from engine.store import RunRow, Store
from engine.train import new_run_id, run

MAX_MEMBERS = 4096  # trials per population (memory stays small for the study's MLPs)


@dataclass(frozen=True)
class SweepEvent:
    sweep_id: str
    trial: int  # the trial's index in the sweep, 0-based
    n_trials: int  # trials in the whole sweep, finished ones included
    event: Event


def create_sweep(store: Store, preset: Preset) -> str:
    """Record a preset's expanded trials as pending runs; return the new sweep's id."""
    trials = preset.expand()
    sweep_id = new_id(8)
    store.create_sweep(
        sweep_id,
        preset=preset.name,
        problem=preset.problem,
        description=preset.description,
        swept=preset.swept,
        trials=[
            (new_run_id(), t.index, t.config.seed, t.config.to_dict(), t.point) for t in trials
        ],
        preset_toml=preset_to_toml(preset),
    )
    return sweep_id


@dataclass
class Controls:
    """Switches a UI, a signal handler or a test flips while a sweep runs (thread-safe)."""

    stop: threading.Event = field(default_factory=threading.Event)  # cancel the sweep
    pause: threading.Event = field(default_factory=threading.Event)  # hold between two steps
    skip: threading.Event = field(default_factory=threading.Event)  # end the current trial


def run_sweep(
    store: Store,
    sweep_id: str,
    controls: Controls | None = None,
    data_dir: Path | None = None,
    population: bool = True,
) -> Iterator[SweepEvent]:
    """Run the sweep's unfinished trials, recording everything in `store`.

    With `population` (the default), MLP trials that differ only in lr, momentum, weight
    decay, seed, activation and optimizer train together as one stacked model
    (engine/population.py); their events are the same as one by one. `controls.skip`
    ends the current trial, or the current population, as cancelled (run again on resume).
    A HypertuiError (data missing, device unavailable) stops the sweep and propagates; the
    trials it hit stay pending so that a resume after the fix runs them.
    """
    controls = controls or Controls()
    stop, skip = controls.stop, controls.skip
    pending = store.claim_sweep(sweep_id)
    n_trials = store.sweep(sweep_id).n_runs
    index = {row.id: row.idx for row in pending}
    end_status = "interrupted"  # unless the loop below says otherwise
    current: list[str] = []
    try:
        for batch in _batches(pending, population):
            if stop.is_set():
                end_status = "cancelled"
                return
            skip.clear()
            current = [row.id for row in batch]
            halt = lambda: stop.is_set() or skip.is_set()  # noqa: E731
            if len(batch) == 1:
                row = batch[0]
                events = run(
                    make_config(row.config),
                    should_stop=halt,
                    run_id=row.id,
                    data_dir=data_dir,
                    should_pause=controls.pause.is_set,
                )
            else:
                members = [Member(row.id, make_config(row.config)) for row in batch]
                events = run_population(
                    members, should_stop=halt, data_dir=data_dir, should_pause=controls.pause.is_set
                )
            points: list[Progress] = []
            for event in events:
                if isinstance(event, Progress):
                    points.append(event)
                    if len(points) >= len(batch):  # one transaction per report
                        store.add_points(points)
                        points = []
                else:
                    store.add_points(points)
                    points = []
                    _record(store, event, skipped=skip.is_set() and not stop.is_set())
                yield SweepEvent(sweep_id, index[event.run_id], n_trials, event)
            store.add_points(points)
            current = []
            if stop.is_set():
                end_status = "cancelled"
                return
        end_status = "done"
    except HypertuiError:
        store.reset_runs(current)
        current = []
        raise
    finally:
        for run_id in current:  # interrupted mid-trial: Ctrl-C, a closed generator
            store.run_interrupted(run_id)
        store.end_sweep(sweep_id, end_status)


def _batches(pending: list[RunRow], population: bool) -> list[list[RunRow]]:
    """Trials that can train as one population, in sweep order; otherwise one by one."""
    if not population:
        return [[row] for row in pending]
    groups: dict[str, list[RunRow]] = {}
    batches: list[list[RunRow]] = []
    keys: dict[str, str | None] = {}  # a key depends only on the non-member fields
    for row in pending:
        shared = repr(sorted((k, v) for k, v in row.config.items() if k not in MEMBER_FIELDS))
        if shared not in keys:
            keys[shared] = population_key(make_config(row.config))
        key = keys[shared]
        if key is None:
            batches.append([row])
            continue
        if key not in groups or len(groups[key]) >= MAX_MEMBERS:
            groups[key] = []
            batches.append(groups[key])
        groups[key].append(row)
    # Members with the same optimizer side by side: each run of them is one update group.
    return [sorted(b, key=lambda row: row.config["optimizer"]) for b in batches]


def _record(store: Store, event: Event, skipped: bool) -> None:
    if isinstance(event, RunStarted):
        store.run_started(event)
    elif isinstance(event, Finished):
        if skipped and event.status == "cancelled":
            event = Finished(**{**event.__dict__, "reason": "skipped"})
        store.run_ended(event)
    elif isinstance(event, Failed):
        store.run_failed(event.run_id, event.reason)
