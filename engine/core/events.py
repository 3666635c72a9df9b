"""The typed event stream a run yields: plain, frozen, picklable data.

The CLI prints these, the store records them and the TUI turns them into messages; they
cross process boundaries unchanged, so they hold only str/int/float/dict/tuple values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("finished", "diverged", "pruned", "cancelled")  # pruned: halving stopped it


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    config: dict[str, Any]  # the resolved Config.to_dict()
    device: str  # e.g. "cpu" or "cuda:0"
    device_name: str  # e.g. "CPU (2 threads)" or "NVIDIA H200"
    n_params: int
    sizes: dict[str, int]  # examples per split: train, val, test
    notes: tuple[str, ...] = ()  # data loading remarks (rows dropped, source folder)
    env: dict[str, str] = field(default_factory=dict)  # python, torch, cuda versions


@dataclass(frozen=True)
class Progress:
    run_id: str
    epoch: int  # epochs completed (end_of_epoch) or the epoch in progress (1-based)
    step: int  # optimizer steps so far
    samples: int  # training examples seen so far
    elapsed_s: float  # training seconds so far, evaluation excluded
    train_loss: float  # mean training loss since the previous Progress
    metrics: dict[str, float]  # val_loss, val_acc | val_mse (+ val_nll, val_var)
    end_of_epoch: bool = True  # False: an interval report inside an epoch (time budgets)
    val_n: int = 0  # validation examples behind `metrics` (a subset for interval reports)


@dataclass(frozen=True)
class Finished:
    run_id: str
    status: str  # one of STATUSES
    epochs_done: float  # full passes over the training set, fractional under a time budget
    steps: int
    samples: int
    elapsed_s: float  # training seconds, evaluation excluded
    wall_s: float  # whole run, evaluation and setup included
    final: dict[str, float]  # last validation metrics (+ train_loss)
    best: dict[str, float]  # validation metrics at the best epoch by the main metric
    best_epoch: int | None
    test: dict[str, float]  # test metrics of the final model; {} unless finished
    reason: str = ""  # why a run diverged or was cancelled
    # validation predictions (house) or confusion matrix (mnist) of the final model
    analysis: dict[str, list] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what happened on the way (a checkpoint not written, a resume)


@dataclass(frozen=True)
class Failed:
    run_id: str
    reason: str  # one line a user can act on


Event = RunStarted | Progress | Finished | Failed


@dataclass(frozen=True)
class SweepEvent:
    """An engine event with its place in a sweep: what runners yield and viewers follow."""

    sweep_id: str
    trial: int  # the trial's index in the sweep, 0-based (shown 1-based: "trial 1")
    n_trials: int  # trials in the whole sweep, finished ones included
    event: Event


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with the event's kind first: {"event": "progress", ...}.

    Shallow: nested dicts are the event's own (dataclasses.asdict's deep copy cost
    a tenth of a 648-trial sweep's time in `hypertui run --json`)."""
    kind = {RunStarted: "started", Progress: "progress", Finished: "finished", Failed: "failed"}
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return {"event": kind[type(event)], **fields}
