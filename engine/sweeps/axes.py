"""A sweep's axes: what a [sweep] table's values expand to, for our presets and for
presets of your own function alike."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypertui.engine.core.errors import ConfigError

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


Axes = dict[str, "list[Any] | RandomAxis"]


def count_trials(axes: Axes, trials: int, seeds: int) -> int:
    """Trials a sweep holds: grid points x random draws x seeds."""
    grid = math.prod(len(v) for v in axes.values() if isinstance(v, list))
    return grid * trials * seeds


def check_count(n: int, where: str) -> None:
    """Refuse a sweep too large to store or run, counted before anything is expanded."""
    if n > MAX_TRIALS:
        raise ConfigError(
            f"{where}: {n:,} trials (grid x trials x seeds); "
            f"a sweep holds at most {MAX_TRIALS:,}: fewer values, trials or seeds"
        )


def expand_points(axes: Axes, trials: int, sweep_seed: int) -> Iterator[dict[str, Any]]:
    """Each grid point x random draw (`trials` per grid point, drawn from `sweep_seed`),
    its values in the file's axis order."""
    grid = {k: v for k, v in axes.items() if isinstance(v, list)}
    random = {k: v for k, v in axes.items() if isinstance(v, RandomAxis)}
    rng = np.random.default_rng(sweep_seed)
    for combo in itertools.product(*grid.values()):
        for _ in range(trials):
            point = dict(zip(grid, combo, strict=True))
            point |= {k: axis.draw(rng) for k, axis in random.items()}
            yield {k: point[k] for k in axes}


def random_axis(key: str, spec: dict, fail: Callable[[str], Exception]) -> RandomAxis:
    """`{ log_uniform = [low, high] }` or `{ uniform = [low, high] }` as a RandomAxis."""
    if len(spec) != 1 or next(iter(spec)) not in RANDOM_KINDS:
        raise fail(
            f"[sweep] {key}: a random axis is {{ log_uniform = [low, high] }} "
            f"or {{ uniform = [low, high] }}, got {spec!r}"
        )
    kind, bounds = next(iter(spec.items()))
    ok = (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        and bounds[0] < bounds[1]
        and (kind != "log_uniform" or bounds[0] > 0)
    )
    if not ok:
        raise fail(f"[sweep] {key}: {kind} needs [low, high] with low < high (low > 0 for log)")
    return RandomAxis(kind, float(bounds[0]), float(bounds[1]))
