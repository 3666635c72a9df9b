"""The house grid's populations one by one: what a population step costs at K = 72.

`house-study-grid` trains 9 populations (3 depths x 3 batch sizes), each of 72 members
(3 activations x 3 optimizers x 4 lrs x 2 seeds), sorted as a sweep sorts them. Each one
trains here for a few epochs through `run_population` (evaluation and events included);
the figure is its wall time per population step, and the grid's time projected from them
(the steps of 200 epochs at each batch size), to compare with `python -m bench grid`.
"""

from __future__ import annotations

import time

from hypertui.engine.core.events import Finished
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member

EPOCHS = {10: 8, 50: 40, 200: 100}  # ~1,000-1,600 steps each


def population(hidden: list[int], batch_size: int, epochs: int) -> list[Member]:
    """One of the grid's populations, its members in the order a sweep gives them."""
    values = {"hidden": hidden, "batch_size": batch_size, "epochs": epochs}
    trials = find_preset("house-study-grid").with_overrides(values).expand()
    members = [Member(f"t{t.index}", t.config) for t in trials]
    return sorted(members, key=lambda m: (m.config.activation, m.config.optimizer))


def step_seconds(hidden: list[int], batch_size: int, epochs: int) -> float:
    members = population(hidden, batch_size, epochs)
    t0 = time.perf_counter()
    steps = max(e.steps for e in run_population(members) if isinstance(e, Finished))
    return (time.perf_counter() - t0) / steps


def main(quick: bool = False) -> list[str]:
    grid = find_preset("house-study-grid")
    n_train = 2050  # the house table's training split
    lines, projected = [], 0.0
    for hidden in grid.axes["hidden"]:
        for bs, epochs in EPOCHS.items():
            seconds = step_seconds(hidden, bs, max(1, epochs // 4) if quick else epochs)
            projected += seconds * -(-n_train // bs) * grid.base_config.epochs
            depth = "x".join(map(str, hidden))
            lines.append(
                f"population K=72 hidden {depth:<11} batch {bs:<4} {seconds * 1e3:6.2f} ms a step"
            )
    lines.append(f"house-study-grid projected from these steps: {projected:6.1f} s (one core)")
    return lines
