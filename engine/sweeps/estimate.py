"""A rough run-time estimate for a preset, shown before it runs ("~2 min on cpu").

The cost model is deliberately simple: seconds per optimizer step for the house MLPs,
seconds per training example for MNIST, plus evaluation per report. The constants were
measured on a 2-core CPU (house 4x10 MLP at batch 10: ~0.6 ms per step; study CNN at
batch 64: ~0.25 ms per example) and scaled for accelerators; a time budget is exact.
"""

from __future__ import annotations

import math

from hypertui.engine.core.config import Config
from hypertui.engine.sweeps.presets import Preset

HOUSE_TRAIN = 2050  # training rows of the Ames split
MNIST_TRAIN = 50_000
STEP_S = {"cpu": 0.55e-3, "accelerator": 0.3e-3}  # per MLP step, small batches
CNN_EXAMPLE_S = {"cpu": 0.25e-3, "accelerator": 0.01e-3}
FC_EXAMPLE_S = {"cpu": 0.03e-3, "accelerator": 0.005e-3}
SETUP_S = {
    "house": 0.2,
    "table": 0.5,
    "mnist": 3.0,
    "images": 3.0,
}  # model, data on device, final and test evaluation
STARTUP_S = 3.0  # once per sweep: the process imports torch and loads the data


def trial_seconds(config: Config, device_kind: str) -> float:
    kind = "cpu" if device_kind == "cpu" else "accelerator"
    if config.problem in ("house", "table"):  # tables: sized like the Ames one, unread
        n = min(HOUSE_TRAIN, config.train_samples or HOUSE_TRAIN)
        batch = min(config.batch_size, n)  # a batch never holds more than the data
        steps = math.ceil(n / batch) * config.epochs
        per_step = STEP_S[kind] * (1 + batch / 200)
        train = steps * per_step
    else:
        n = min(MNIST_TRAIN, config.train_samples or MNIST_TRAIN)
        per_example = (CNN_EXAMPLE_S if config.model == "cnn" else FC_EXAMPLE_S)[kind]
        train = n * config.epochs * per_example
    if config.time_budget_s is not None:
        train = min(train, config.time_budget_s)
    return train * 1.1 + SETUP_S[config.problem]  # ~10% for per-epoch evaluation


def population_seconds(configs: list[Config], device_kind: str) -> float:
    """K trials trained as one population. An MLP step costs ~0.8 ms + 8 us per member on
    a 2-core CPU (bench/population.py: K=16 0.9 ms, K=64 1.15 ms, K=256 2.8 ms); a CNN's
    grouped convolutions cost about K single steps there (4 members: 0.80-0.93 of a single
    run per model-step, bench/cnn_population.py), and are counted so on a GPU too, where
    they have not been measured."""
    base = configs[0]
    k = len(configs)
    one = trial_seconds(base, device_kind) - SETUP_S[base.problem]
    if base.model == "cnn":
        scale = k
    else:
        scale = (1 + 0.015 * k) if device_kind == "cpu" else (1 + 0.0005 * k)
    return one * scale + SETUP_S[base.problem] + 0.002 * k * base.epochs


def estimate_seconds(preset: Preset, device_kind: str = "cpu", population: bool = True) -> float:
    """The preset's run time as `hypertui run` trains it (populations on by default)."""
    from hypertui.engine.core.grouping import population_key

    trials = preset.expand()
    chunks = [trials]
    if preset.search != "random":  # `trials` configs in all, trained a batch at a time
        from hypertui.engine.sweeps.search import batch_size, runs_per_trial

        per = batch_size(preset) * runs_per_trial(preset)  # draws stand in for what is asked
        trials = trials[: preset.n_trials]
        chunks = [trials[i : i + per] for i in range(0, len(trials), per)]
    total = STARTUP_S
    for chunk in chunks:
        groups: dict[str, list[Config]] = {}
        for trial in chunk:
            key = population_key(trial.config) if population else None
            if key is None:
                total += trial_seconds(trial.config, device_kind)
            else:
                groups.setdefault(key, []).append(trial.config)
        for configs in groups.values():
            if len(configs) == 1:
                total += trial_seconds(configs[0], device_kind)
            else:
                total += population_seconds(configs, device_kind)
    return total


def human(seconds: float) -> str:
    if seconds < 60:
        return f"~{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
