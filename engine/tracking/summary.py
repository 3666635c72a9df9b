"""What a tracked run reached: the last value of each metric, the values at its best point
by the main metric, the test metrics, counted from the points as they are logged."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from hypertui.engine.core.objective import guess_higher


def guess_mode(metric: str) -> str:
    """ "max" for metrics that are better higher (by their name), else "min" (losses)."""
    return "max" if guess_higher(metric) else "min"


VALIDATION = {"val", "valid", "validation", "dev", "eval"}  # words that name a validation metric


def pick_metric(names: list[str]) -> str:
    """The ranking metric when none was named: a validation loss (val_loss, Loss/val),
    else the first validation metric, else the first one logged."""
    words = {n: set(re.split(r"[^a-z0-9]+", n.lower())) for n in names}
    validation = [n for n in names if words[n] & VALIDATION]
    return next((n for n in validation if "loss" in words[n]), (validation or names)[0])


@dataclass
class Summary:
    metric: str | None = None
    mode: str = "min"
    final: dict[str, float] = field(default_factory=dict)  # last value of each metric
    test: dict[str, float] = field(default_factory=dict)  # test_* metrics, last values
    best: dict[str, float] = field(default_factory=dict)  # the values at the best point
    best_epoch: int | None = None
    best_value: float | None = None
    epochs: set = field(default_factory=set)  # epochs given
    steps: int = 0
    samples: int | None = None
    diverged: bool = False  # the main metric went NaN or infinite

    def columns(self, elapsed_s: float | None) -> dict:
        """What the run reached, as the store's run columns."""
        return {
            "epochs_done": float(len(self.epochs)) if self.epochs else None,
            "steps": self.steps,
            "samples": self.samples,
            "elapsed_s": elapsed_s,
            "best_epoch": self.best_epoch,
            "final": self.final,
            "best": self.best,
            "test": self.test,
        }

    def add(self, epoch: int | None, step: int, samples: int | None, values: dict) -> None:
        for name, value in values.items():
            (self.test if name.startswith("test_") else self.final)[name] = value
        if epoch is not None:
            self.epochs.add(epoch)
        self.steps, self.samples = step, samples if samples is not None else self.samples
        value = values.get(self.metric) if self.metric else None
        if value is None:
            return
        if not math.isfinite(value):
            self.diverged = True
            return
        better = self.best_value is None or (
            value > self.best_value if self.mode == "max" else value < self.best_value
        )
        if better:
            self.best_value, self.best_epoch = value, epoch
            self.best = {k: v for k, v in values.items() if not k.startswith("test_")}
