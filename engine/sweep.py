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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import make_config
from engine.errors import HypertuiError
from engine.events import Event, Failed, Finished, Progress, RunStarted
from engine.presets import Preset, preset_to_toml
from engine.store import Store
from engine.train import new_run_id, run


@dataclass(frozen=True)
class SweepEvent:
    sweep_id: str
    trial: int  # the trial's index in the sweep, 0-based
    n_trials: int  # trials in the whole sweep, finished ones included
    event: Event


def create_sweep(store: Store, preset: Preset) -> str:
    """Record a preset's expanded trials as pending runs; return the new sweep's id."""
    trials = preset.expand()
    sweep_id = uuid.uuid4().hex[:8]
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
) -> Iterator[SweepEvent]:
    """Run the sweep's unfinished trials in order, recording everything in `store`.

    `controls.skip` ends only the current trial (as cancelled, to be run again on resume).
    A HypertuiError (data missing, device unavailable) stops the sweep and propagates;
    the trial it hit stays pending so that a resume after the fix runs it.
    """
    controls = controls or Controls()
    stop, skip = controls.stop, controls.skip
    pending = store.claim_sweep(sweep_id)
    n_trials = store.sweep(sweep_id).n_runs
    end_status = "interrupted"  # unless the loop below says otherwise
    current: str | None = None
    try:
        for row in pending:
            if stop.is_set():
                end_status = "cancelled"
                return
            skip.clear()
            config = make_config(row.config)
            current = row.id
            events = run(
                config,
                should_stop=lambda: stop.is_set() or skip.is_set(),
                run_id=row.id,
                data_dir=data_dir,
                should_pause=controls.pause.is_set,
            )
            for event in events:
                _record(store, event, skipped=skip.is_set() and not stop.is_set())
                yield SweepEvent(sweep_id, row.idx, n_trials, event)
            current = None
            if stop.is_set():
                end_status = "cancelled"
                return
        end_status = "done"
    except HypertuiError:
        if current is not None:
            store.reset_runs([current])
            current = None
        raise
    finally:
        if current is not None:  # interrupted mid-trial: Ctrl-C, a closed generator
            store.run_interrupted(current)
        store.end_sweep(sweep_id, end_status)


def _record(store: Store, event: Event, skipped: bool) -> None:
    if isinstance(event, RunStarted):
        store.run_started(event)
    elif isinstance(event, Progress):
        store.add_points([event])
    elif isinstance(event, Finished):
        if skipped and event.status == "cancelled":
            event = Finished(**{**event.__dict__, "reason": "skipped"})
        store.run_ended(event)
    elif isinstance(event, Failed):
        store.run_failed(event.run_id, event.reason)
