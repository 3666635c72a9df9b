"""What the store holds, as plain records: a sweep (`SweepRow`) and a run (`RunRow`).

The store (engine/store) reads its rows into these; analysis, exports and the UI work on
them without knowing SQLite is behind them (tests build them by hand, see tests/fakes.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

FINAL_STATUSES = ("finished", "diverged", "failed", "pruned")  # a resume never reruns these
UNFINISHED = ("pending", "running", "cancelled", "interrupted")
# Sweeps whose runs a user's own training loop writes, with metrics of its own naming:
# a script that calls `hypertui.init` (each script one run, its group one sweep), and a
# sweep of the user's function (`train = "module:function"` in a preset)
SCRIPT = "script"  # the problem of a group of runs that scripts write (no runner resumes it)
TENSORBOARD = "tensorboard"  # runs read from TensorBoard event files (`hypertui import-tb`)
OWN_LOOP_PROBLEMS = (SCRIPT, "function", TENSORBOARD)


@dataclass(frozen=True)
class SweepRow:
    id: str
    preset: str
    problem: str
    description: str
    swept: list[str]
    preset_toml: str
    created_at: float
    updated_at: float
    status: str  # pending | running | done | incomplete | cancelled | interrupted
    counts: dict[str, int]  # runs per status
    pid: int | None = None  # the runner's process, while running
    host: str | None = None
    heartbeat: float | None = None
    runner_started: float | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # how it runs
    control: str = ""  # what viewers asked: '' (run), 'pause' or 'cancel'
    skip_seq: int = 0
    paused: bool = False  # the runner acknowledged a pause and holds
    error: str = ""  # why the runner stopped, when it stopped on an error
    paused_s: float = 0.0  # seconds the current runner has held on pauses, as of heartbeat
    tags: list[str] = dataclasses.field(default_factory=list)  # what the user says of it
    note: str = ""
    name: str = ""  # a name of the user's; "" = the preset's

    @property
    def title(self) -> str:
        """What lists call it: the user's name for it, else its preset's."""
        return self.name or self.preset

    @property
    def n_runs(self) -> int:
        return sum(self.counts.values())

    @property
    def n_planned(self) -> int:
        """Its trials: those stored, or more where a learned search (search = "tpe") asks
        them batch by batch and has stored only the batches asked so far."""
        planned = self.options.get("n_trials", 0)
        return max(self.n_runs, planned if isinstance(planned, int) else 0)

    @property
    def n_done(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINAL_STATUSES)

    @property
    def resumable(self) -> bool:
        """Whether a runner can train what is left (a script's runs are the script's)."""
        if self.problem in (SCRIPT, TENSORBOARD):
            return False
        return self.status != "running" and self.n_done < self.n_planned

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class RunRow:
    id: str
    sweep_id: str
    idx: int
    seed: int
    config: dict[str, Any]
    point: dict[str, Any]
    status: str
    reason: str
    device: str | None
    device_name: str | None
    n_params: int | None
    env: dict[str, str]
    git_rev: str | None
    started_at: float | None
    ended_at: float | None
    epochs_done: float | None
    steps: int | None
    samples: int | None
    elapsed_s: float | None
    wall_s: float | None
    best_epoch: int | None
    final: dict[str, float]
    best: dict[str, float]
    test: dict[str, float]
    analysis: dict[str, list]
    # a run that a script writes itself (`hypertui.init`): its process and last sign of life
    pid: int | None = None
    host: str | None = None
    heartbeat: float | None = None

    @property
    def fold(self) -> int:
        """Which cross-validation fold validated this run (0 without folds)."""
        fold = self.config.get("fold", 0)
        return fold if isinstance(fold, int) else 0

    @property
    def folds(self) -> int:
        """The cross-validation folds of its config (1 without)."""
        folds = self.config.get("folds", 1)
        return folds if isinstance(folds, int) else 1

    @property
    def replicate(self) -> tuple[int, int]:
        """(seed, fold): what repeats a config. Runs of two configs with one replicate
        share their initial weights, batch order and validation rows: a pair."""
        return self.seed, self.fold


def replicate_point(run: RunRow) -> dict[str, Any]:
    """A run's swept values, its seed, and its fold where it cross-validates: how a
    trial is named in a line of text."""
    fold = {"fold": run.fold} if run.folds > 1 else {}
    return {**run.point, "seed": run.seed, **fold}
