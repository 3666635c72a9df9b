"""What cross-validation costs (`python -m bench folds`): a config trained on 5 folds as
5 members of one population, against the same config on 1 fold (one run), and against
the 5 folds trained one after another as single runs; on the house problem and on a
penguins-like table (text columns, missing values, 3 classes).

Timed as whole trainings (data loading excluded: it is cached after the first call), the
three alternated and the minimum of `repeats` kept, so that all see the same machine.
Each line also gives the population's seconds for 3 configs x 5 folds (15 members)
against 3 configs x 1 fold (3 members): what `folds = 5` adds to a sweep.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hypertui.engine.core.events import Finished
from hypertui.engine.data.sources import checked_config
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run

FOLDS = 5


def penguins(path: Path, n: int = 344) -> str:
    rng = np.random.default_rng(1)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n, p=[0.44, 0.36, 0.2])
    frame = pd.DataFrame(
        {
            "species": species,
            "island": rng.choice(["Biscoe", "Dream", "Torgersen", None], n),
            "bill": rng.normal(44, 5, n) + (species == "Gentoo") * 4,
            "flipper": rng.normal(200, 14, n) + (species == "Gentoo") * 15,
            "mass": rng.normal(4200, 800, n),
        }
    )
    frame.loc[rng.choice(n, 8), "bill"] = np.nan
    frame.to_csv(path, index=False)
    return str(path)


def timed(train) -> float:
    start = time.perf_counter()
    done = [e for e in train() if isinstance(e, Finished)]
    assert done and all(d.status == "finished" for d in done), [d.reason for d in done]
    return time.perf_counter() - start


def population(configs):
    return lambda: run_population([Member(f"m{i}", c) for i, c in enumerate(configs)])


def singles(configs):
    def train():
        for c in configs:
            yield from run(c)

    return train


def measure(name: str, base: dict, repeats: int) -> str:
    lrs = (0.01, 0.003, 0.001)
    folded = [checked_config({**base, "folds": FOLDS, "fold": f}) for f in range(FOLDS)]
    one = [checked_config(base)]
    grid5 = [c.replace(lr=lr) for lr in lrs for c in folded]
    grid1 = [checked_config({**base, "lr": lr}) for lr in lrs]
    cases = {
        "pop5": population(folded),
        "one": population(one),
        "seq5": singles(folded),
        "grid5": population(grid5),
        "grid1": population(grid1),
    }
    for train in cases.values():  # load each fold's data once, outside the timing
        timed(train)
    best = {k: min(timed(t) for _ in range(repeats)) for k, t in cases.items()}
    return (
        f"{name}: {FOLDS} folds as one population {best['pop5']:.2f} s vs 1 fold "
        f"{best['one']:.2f} s ({best['pop5'] / best['one']:.2f}x) vs {FOLDS} single runs "
        f"{best['seq5']:.2f} s ({best['seq5'] / best['pop5']:.2f}x the population); "
        f"3 configs x {FOLDS} folds {best['grid5']:.2f} s vs x 1 fold {best['grid1']:.2f} s "
        f"({best['grid5'] / best['grid1']:.2f}x); min of {repeats}"
    )


def main(quick: bool = False):
    torch.set_num_threads(1)
    repeats = 2 if quick else 5
    epochs = 5 if quick else 20
    yield measure(
        f"house, 4x10 MLP, batch 10, {epochs} epochs",
        {"problem": "house", "hidden": [10, 10, 10, 10], "batch_size": 10, "epochs": epochs},
        repeats,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = penguins(Path(tmp) / "penguins.csv")
        yield measure(
            f"penguins-like table (344 rows), [16] MLP, batch 16, {epochs} epochs",
            {
                "problem": "table",
                "path": path,
                "target": "species",
                "hidden": [16],
                "batch_size": 16,
                "epochs": epochs,
                "optimizer": "adam",
            },
            repeats,
        )
