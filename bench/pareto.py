"""The Pareto front of a stored house-study-grid (648 runs) on two and three objectives.

The runs are synthesized (no training), as in bench/analysis.py: the preset's real trials
recorded in a fresh store with made-up final metrics, training seconds and parameter counts
(lr 2.0 diverged; time grows with depth and shrinks with the batch size, seed noise on
both), so the store holds what a trained grid holds for this computation. Target: the front
of 648 stored runs in at most 20 ms (issue 23), measured on the runs as Analysis and
`analyze --pareto` have them; reading them from the store is timed apart.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.analysis import best_of
from hypertui.engine.analysis.pareto import front, pareto_mask
from hypertui.engine.core.events import Finished, RunStarted
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.sweeps.sweep import create_sweep

TARGET_MS = 20.0


def stored_grid(folder: Path) -> tuple[Store, str]:
    store = Store(folder / "runs.sqlite")
    sweep_id = create_sweep(store, find_preset("house-study-grid"))
    rng = np.random.default_rng(0)
    effect = {"sgd": 0.03, "adam": 0.005, "rmsprop": 0.0, "sigmoid": 0.02, "relu": 0.0}
    for run in store.runs(sweep_id):
        p = run.point
        depth, diverged = len(p["hidden"]), p["lr"] == 2.0
        value = (
            0.09
            + effect.get(p["optimizer"], 0.0)
            + effect.get(p["activation"], 0.004)
            + 0.01 * abs(np.log10(p["lr"]) + 2.5)
            + 0.004 / depth
            + 0.003 * rng.normal()
        )
        seconds = 40.0 * depth * 10 / p["batch_size"] * (1 + 0.05 * rng.normal())
        params = 381 if depth == 1 else 491 if depth == 2 else 711
        store.run_started(RunStarted(run.id, run.config, "cpu", "CPU", params, {}))
        metrics = {} if diverged else {"val_mse": value, "val_loss": value}
        store.run_ended(
            Finished(
                run.id, "diverged" if diverged else "finished", 200, 1, 1, seconds, seconds,
                metrics, metrics, 200, {} if diverged else {"test_mse": value},
            )
        )  # fmt: skip
    return store, sweep_id


def main(quick: bool = False):
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory() as tmp:
        store, sweep_id = stored_grid(Path(tmp))
        sweep = store.sweep(sweep_id)
        read_ms, runs = best_of(lambda: store.runs(sweep_id), repeats)
        two = ["val_mse", "train_s"]
        ms, fr = best_of(lambda: front(runs, sweep.swept, two, [False, False]), repeats)
        three = [*two, "params"]
        ms3, fr3 = best_of(lambda: front(runs, sweep.swept, three, [False] * 3), repeats)
        store.close()
    rows = np.array([c.values for c in fr3.configs])
    mask_ms, _ = best_of(lambda: pareto_mask(rows, [False] * 3), repeats)
    verdict = "ok" if max(ms, ms3) <= TARGET_MS else "OVER TARGET"
    yield (
        f"pareto: {len(runs)} runs, {len(fr.configs)} configs with a mean "
        f"({fr.n_diverged_configs} left out for a diverged run)\n"
        f"  front of val_mse x train_s: {ms:.1f} ms ({len(fr.members)} members); "
        f"x params too: {ms3:.1f} ms ({len(fr3.members)} members; the dominance test "
        f"alone {mask_ms:.2f} ms) (target ≤ {TARGET_MS:.0f} ms: {verdict}); "
        f"reading the runs from the store: {read_ms:.0f} ms; best of {repeats}"
    )
