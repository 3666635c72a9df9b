"""A rough run-time estimate for a preset, shown before it runs ("~2 min on cpu").

The cost model is deliberately simple: seconds per optimizer step for the house MLPs,
seconds per training example for MNIST, plus evaluation per report. The constants were
measured on a 2-core CPU (house 4x10 MLP at batch 10: ~0.6 ms per step; study CNN at
batch 64: ~0.25 ms per example) and scaled for accelerators; a time budget is exact.
"""

from __future__ import annotations

import math

from engine.config import Config
from engine.presets import Preset

HOUSE_TRAIN = 2050  # training rows of the Ames split
MNIST_TRAIN = 50_000
STEP_S = {"cpu": 0.55e-3, "accelerator": 0.3e-3}  # per MLP step, small batches
CNN_EXAMPLE_S = {"cpu": 0.25e-3, "accelerator": 0.01e-3}
FC_EXAMPLE_S = {"cpu": 0.03e-3, "accelerator": 0.005e-3}
SETUP_S = {"house": 0.2, "mnist": 3.0}  # model, data on device, final and test evaluation


def trial_seconds(config: Config, device_kind: str) -> float:
    kind = "cpu" if device_kind == "cpu" else "accelerator"
    if config.problem == "house":
        n = min(HOUSE_TRAIN, config.train_samples or HOUSE_TRAIN)
        steps = math.ceil(n / config.batch_size) * config.epochs
        per_step = STEP_S[kind] * (1 + config.batch_size / 200)
        train = steps * per_step
    else:
        n = min(MNIST_TRAIN, config.train_samples or MNIST_TRAIN)
        per_example = (CNN_EXAMPLE_S if config.model == "cnn" else FC_EXAMPLE_S)[kind]
        train = n * config.epochs * per_example
    if config.time_budget_s is not None:
        train = min(train, config.time_budget_s)
    return train * 1.1 + SETUP_S[config.problem]  # ~10% for per-epoch evaluation


def estimate_seconds(preset: Preset, device_kind: str = "cpu") -> float:
    return sum(trial_seconds(t.config, device_kind) for t in preset.expand())


def human(seconds: float) -> str:
    if seconds < 60:
        return f"~{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"
