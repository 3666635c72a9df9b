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

RANDOM_KINDS = ("log_uniform", "uniform", "int_uniform", "choice")
# The most trials one sweep may hold. Each is a stored row; 10^4 start training within about
# a second, 10^6 would take minutes and a gigabyte just to be listed.
MAX_TRIALS = 20_000


@dataclass(frozen=True)
class RandomAxis:
    """A field drawn afresh for each trial: from a range (uniform, log_uniform: floats;
    int_uniform: ints, both ends included) or from a list of values (choice)."""

    kind: str  # log_uniform | uniform | int_uniform | choice
    low: float = 0.0  # the range's ends (not choice)
    high: float = 0.0
    values: tuple = ()  # choice: the values, each equally likely (JSON-ready: lists stay lists)

    def draw(self, rng: np.random.Generator) -> Any:
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        if self.kind == "int_uniform":
            return int(rng.integers(int(self.low), int(self.high), endpoint=True))
        if self.kind == "log_uniform":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return float(f"{value:.4g}")  # readable in tables and CSV

    def spec(self) -> dict[str, list]:
        """The TOML inline table a preset writes: { choice = [...] } or { kind = [low, high] }."""
        if self.kind == "choice":
            return {"choice": list(self.values)}
        return {self.kind: [self.low, self.high]}

    def text(self, spell: Callable[[Any], str] = str, sep: str = ", ") -> str:
        """`choice(relu, tanh)`, `log_uniform(0.0001, 0.1)`: a one-cell description."""
        if self.kind == "choice":
            return f"choice({sep.join(spell(v) for v in self.values)})"
        return f"{self.kind}({self.low:g}{sep}{self.high:g})"


Axes = dict[str, "list[Any] | RandomAxis"]


def count_trials(axes: Axes, trials: int, seeds: int) -> int:
    """Trials a sweep holds: grid points x random draws x seeds (a grid list is crossed
    with every draw; a `choice` is drawn, so it adds no factor)."""
    grid = math.prod(len(v) for v in axes.values() if isinstance(v, list))
    return grid * trials * seeds


def check_count(n: int, where: str) -> None:
    """Refuse a sweep too large to store or run, counted before anything is expanded."""
    if n > MAX_TRIALS:
        raise ConfigError(
            f"{where}: {n:,} trials (grid x trials x seeds); "
            f"a sweep holds at most {MAX_TRIALS:,}: fewer values, trials or seeds"
        )


def expand_points(
    axes: Axes,
    trials: int,
    sweep_seed: int,
    applies: Callable[[str, dict[str, Any]], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """Each grid point x random draw (`trials` per grid point, drawn from `sweep_seed`),
    its values in the file's axis order.

    `applies(field, point)` says whether a field means something for a trial's values
    (momentum with adam does not): a random field that does not is left out of that
    trial's point. It is drawn all the same, so that leaving it out never changes another
    field's draws, nor any draw of a sweep made before fields were conditional."""
    grid = {k: v for k, v in axes.items() if isinstance(v, list)}
    random = {k: v for k, v in axes.items() if isinstance(v, RandomAxis)}
    rng = np.random.default_rng(sweep_seed)
    for combo in itertools.product(*grid.values()):
        for _ in range(trials):
            point = dict(zip(grid, combo, strict=True))
            point |= {k: axis.draw(rng) for k, axis in random.items()}
            if applies is not None:
                moot = [k for k in random if not applies(k, point)]
                for k in moot:
                    del point[k]
            yield {k: point[k] for k in axes if k in point}


def random_axis(key: str, spec: dict, fail: Callable[[str], Exception]) -> RandomAxis:
    """`{ log_uniform = [low, high] }`, `{ uniform = [low, high] }`,
    `{ int_uniform = [low, high] }` (ints, both included) or `{ choice = [a, b, ...] }`."""
    if len(spec) != 1 or next(iter(spec)) not in RANDOM_KINDS:
        raise fail(
            f"[sweep] {key}: a random axis is {{ choice = [a, b, ...] }}, "
            "{ uniform = [low, high] }, { log_uniform = [low, high] } or "
            f"{{ int_uniform = [low, high] }}, got {spec!r}"
        )
    kind, bounds = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(bounds, list) or not bounds:
            raise fail(f"[sweep] {key}: choice needs a non-empty list of values, got {bounds!r}")
        return RandomAxis("choice", values=tuple(bounds))
    number = (int,) if kind == "int_uniform" else (int, float)
    ok = (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
        and bounds[0] < bounds[1]
        and (kind != "log_uniform" or bounds[0] > 0)
    )
    if not ok:
        if kind == "int_uniform":
            raise fail(f"[sweep] {key}: int_uniform needs [low, high], two integers, low < high")
        raise fail(f"[sweep] {key}: {kind} needs [low, high] with low < high (low > 0 for log)")
    if kind == "int_uniform":
        return RandomAxis(kind, bounds[0], bounds[1])
    return RandomAxis(kind, float(bounds[0]), float(bounds[1]))
