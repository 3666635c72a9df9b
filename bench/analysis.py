"""Importance, slices and the vs-best tests on a stored house-study-grid (648 runs).

The runs are synthesized (no training): the preset's real trials are recorded in a fresh
store with made-up final metrics (lr 2.0 diverged, effects per field, seed noise), so the
store holds exactly what a trained grid would hold for these computations. Target: the
importance of a 648-run grid in at most 200 ms (issue 11).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from hypertui.engine.analysis.compare import compare
from hypertui.engine.analysis.importance import analyze
from hypertui.engine.analysis.significance import versus_best
from hypertui.engine.core.events import Finished
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.sweeps.sweep import create_sweep

TARGET_MS = 200.0


def stored_grid(folder: Path) -> tuple[Store, str]:
    store = Store(folder / "runs.sqlite")
    preset = find_preset("house-study-grid")
    sweep_id = create_sweep(store, preset)
    rng = np.random.default_rng(0)
    effect = {"sgd": 0.03, "adam": 0.005, "rmsprop": 0.0, "sigmoid": 0.02, "relu": 0.0}
    for run in store.runs(sweep_id):
        p = run.point
        diverged = p["lr"] == 2.0
        value = (
            0.09
            + effect.get(p["optimizer"], 0.0)
            + effect.get(p["activation"], 0.004)
            + 0.01 * abs(np.log10(p["lr"]) + 2.5)
            + 0.00005 * p["batch_size"]
            + 0.003 * rng.normal()
        )
        metrics = {} if diverged else {"val_mse": value, "val_loss": value}
        store.run_ended(
            Finished(
                run.id, "diverged" if diverged else "finished", 200, 1, 1, 1.0, 1.0,
                metrics, metrics, 200, {} if diverged else {"test_mse": value},
            )
        )  # fmt: skip
    return store, sweep_id


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3, out


def main(quick: bool = False):
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory() as tmp:
        store, sweep_id = stored_grid(Path(tmp))
        sweep = store.sweep(sweep_id)
        read_ms, runs = best_of(lambda: store.runs(sweep_id), repeats)
        ms, result = best_of(lambda: analyze(runs, sweep.swept, sweep.problem), repeats)
        comp = compare(runs, sweep.swept, sweep.problem)
        vs_ms, _ = best_of(lambda: versus_best(comp, runs), repeats)
        store.close()
    verdict = "ok" if ms <= TARGET_MS else "OVER TARGET"
    yield (
        f"analysis: {len(runs)} runs, {result.method_text}\n"
        f"  importance + slices + top-k: {ms:.0f} ms (target ≤ {TARGET_MS:.0f} ms: {verdict}); "
        f"reading the runs from the store: {read_ms:.0f} ms; "
        f"vs best over {len(comp.groups)} groups (all pairs, Holm): {vs_ms:.0f} ms; "
        f"best of {repeats}"
    )
