"""One run's account of its training, kept the same way by a single run and a population.

Both loops (train.py, population.py) report a run's curve and decide from its reports when
it diverged, which report is final and which epoch was best. That bookkeeping lives here
once, so a single run and the same trial inside a population can never disagree on it:

    ledger = Ledger(config.main_metric, patience=config.patience, min_delta=config.min_delta)
    why = ledger.record(progress, full=True)    # "" or why the run diverged
    if why:
        ledger.stop("diverged", why, at=(step, samples, train_s))
    elif why := ledger.out_of_patience():       # early stopping
        ledger.stop("finished", why, at=(step, samples, train_s))
    ...
    yield ledger.finished(run_id, n_train, (step, samples, train_s), wall_s, test, analysis)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypertui.engine.core.config import higher_is_better
from hypertui.engine.core.events import Finished, Progress
from hypertui.engine.training.class_metrics import UNDEFINED_ON_ONE_CLASS

EXPLODED = 1e3  # a train loss this many times the first batch's (untrained) means diverged
Position = tuple[int, int, float]  # (steps, samples, training seconds) at some moment


def diverged(train_loss: float, metrics: dict[str, float], first_loss: float | None) -> str:
    """Why a report means the run diverged, or "". An AUC is NaN on a split of one class
    (a short interval report's rows may hold one): that is no divergence."""
    checked = [v for k, v in metrics.items() if not k.endswith(UNDEFINED_ON_ONE_CLASS)]
    if not all(math.isfinite(v) for v in (train_loss, *checked)):
        return "loss became NaN or infinite"
    if train_loss > EXPLODED * max(first_loss or 0.0, 1e-8):
        return f"train loss exploded from {first_loss:.3g} to {train_loss:.3g}"
    return ""


@dataclass
class Ledger:
    main: str  # the ranking metric, e.g. "val_mse" (lower is better), "val_acc", "val_macro_f1"
    first_loss: float | None = None  # the untrained model's loss on its first batch
    final: dict[str, float] = field(default_factory=dict)  # the last full report's metrics
    best: dict[str, float] = field(default_factory=dict)  # the best full report's metrics
    best_epoch: int | None = None
    status: str = "finished"  # or diverged | pruned | cancelled, once it stops
    reason: str = ""
    stopped_at: Position | None = None  # where it stopped training before the others did
    patience: int | None = None  # early stopping: full reports without improvement that stop it
    min_delta: float = 0.0  # the change of the main metric that counts as improvement
    waited: int = 0  # full reports since the main metric last improved by more than min_delta

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.main)

    @property
    def score(self) -> float:
        """The main metric at the last full report; NaN before one, or once diverged."""
        if self.status == "diverged" or self.main not in self.final:
            return math.nan
        return self.final[self.main]

    def first_batch(self, loss: float) -> None:
        if self.first_loss is None:
            self.first_loss = loss

    def record(self, p: Progress, full: bool) -> str:
        """Account for a report; return why it shows the run diverged, or "".

        A full report (the whole validation set) is the run's final one, diverged or not;
        it is its best when its main metric beats every earlier full report's (the first
        of equals stays best), never when it diverged."""
        why = diverged(p.train_loss, p.metrics, self.first_loss)
        if full:
            self.final = {"train_loss": p.train_loss, **p.metrics}
        if full and not why:
            value = p.metrics[self.main]
            self.waited = 0 if self._improves(value) else self.waited + 1
            if self._beats_best(value):
                self.best, self.best_epoch = dict(p.metrics), p.epoch
        return why

    def out_of_patience(self) -> str:
        """Why early stopping ends the run now ("" while it may go on): `patience` full
        reports (epochs) in a row without an improvement of more than `min_delta`."""
        if self.patience is None or self.waited < self.patience:
            return ""
        by = f" by more than {self.min_delta:g}" if self.min_delta else ""
        return (
            f"early stopping: {self.main} did not improve{by} for {self.patience} epochs"
            f" (best at epoch {self.best_epoch})"
        )

    def _improves(self, value: float) -> bool:
        """Better than the best so far by more than min_delta (Keras' EarlyStopping)."""
        if not self.best:
            return True
        best = self.best[self.main]
        if self.higher_is_better:
            return value > best + self.min_delta
        return value < best - self.min_delta

    def _beats_best(self, value: float) -> bool:
        if not self.best:
            return True
        best = self.best[self.main]
        return value > best if self.higher_is_better else value < best

    RESUMED = ("first_loss", "final", "best", "best_epoch", "waited")

    def state(self) -> dict:
        """What a checkpoint keeps of the account (a run stopped has no checkpoint)."""
        return {name: getattr(self, name) for name in self.RESUMED}

    def restore(self, state: dict) -> None:
        for name in self.RESUMED:
            setattr(self, name, state[name])

    def stop(self, status: str, reason: str, at: Position | None = None) -> None:
        self.status, self.reason, self.stopped_at = status, reason, at

    def finished(
        self,
        run_id: str,
        n_train: int,
        now: Position,
        wall_s: float,
        test: dict[str, float] | None = None,
        analysis: dict[str, list] | None = None,
        notes: tuple[str, ...] = (),
    ) -> Finished:
        """The run's Finished event: where it stopped (or `now`), its metrics, and test and
        analysis only when it finished."""
        status = self.status
        steps, samples, train_s = self.stopped_at or now
        return Finished(
            run_id=run_id,
            status=status,
            epochs_done=round(samples / n_train, 4),
            steps=steps,
            samples=samples,
            elapsed_s=round(train_s, 6),
            wall_s=round(wall_s, 6),
            final=self.final,
            best=self.best,
            best_epoch=self.best_epoch,
            test=(test or {}) if status == "finished" else {},
            reason=self.reason,
            analysis=(analysis or {}) if status == "finished" else {},
            notes=notes,
        )
