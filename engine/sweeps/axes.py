"""A sweep's axes: what a [sweep] table's values expand to, for our presets and for
presets of your own function alike."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RANDOM_KINDS = ("log_uniform", "uniform")
# The most trials one sweep may hold. Each is a stored row; 10^4 start training within about
# a second, 10^6 would take minutes and a gigabyte just to be listed.
MAX_TRIALS = 20_000


@dataclass(frozen=True)
class RandomAxis:
    kind: str  # log_uniform | uniform
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        if self.kind == "log_uniform":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return float(f"{value:.4g}")  # readable in tables and CSV
