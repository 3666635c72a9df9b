"""PBT inside a population (engine/training/pbt.py): the step's cost and what it buys.

1. The exploit + explore step of a K = 256 population in house-random-search's space (sgd,
   adam and rmsprop members, log-uniform lr and weight decay): ranking, drawing 64 sources,
   copying their rows of the flat buffer and of the optimizer state, perturbing their
   values. Target (issue 23): at most 1 ms on the 2-core CPU; best of many calls.
2. PBT against random search with the same member-epochs: house-random-search's trials
   (16 points x 3 optimizers x 2 seeds = 96 members, 30 epochs) trained as one population
   with schedule = "constant" (random search) and with schedule = "pbt" (the same start
   values, pbt_interval 4, pbt_quantile 0.25); the best member's best val_mse (the
   restore-best weights both keep) of each, averaged over 5 sweep seeds. Target: PBT's mean
   at most random search's. Minutes of training: run it when the machine is quiet. --quick
   trains 1 repeat of 8 epochs (its numbers are a smoke test, not the comparison).
"""

from __future__ import annotations

import math
import random
import statistics
import time

import torch

from hypertui.engine.core.events import Finished
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.training import pbt
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member, stacked_model
from hypertui.engine.training.stacked_optimizer import StackedOptimizer

TARGET_MS = 1.0
PRESET = "house-random-search"


def configs_of(sweep_seed: int, epochs: int, schedule: str, members: int | None = None):
    preset = find_preset(PRESET)
    preset = type(preset)(**{**preset.__dict__, "sweep_seed": sweep_seed})
    preset = preset.with_overrides({"epochs": epochs, "schedule": schedule})
    trials = [t.config for t in preset.expand()]
    if members is not None:  # the step bench: the space's draws, repeated to K
        trials = [trials[i % len(trials)].with_seed(i) for i in range(members)]
    return sorted(trials, key=lambda c: (c.activation, c.optimizer))


def step_ms(k: int, calls: int) -> tuple[float, int]:
    configs = configs_of(0, 30, "pbt", members=k)
    model = stacked_model([Member(f"m{i}", c) for i, c in enumerate(configs)], torch.device("cpu"))
    opt = StackedOptimizer(model, configs)
    kinds = [(c.activation, c.optimizer) for c in configs]
    pool: dict = {}
    for c in configs:
        for name in ("lr", "momentum", "weight_decay"):
            pool.setdefault(c.optimizer, {}).setdefault(name, []).append(getattr(c, name))
    rng = random.Random(0)
    best, copied = math.inf, 0
    for _ in range(calls):
        scores = [rng.random() for _ in configs]  # a new ranking every call
        start = time.perf_counter()
        done = pbt.exploit_explore(model, opt, scores, kinds, False, 0.25, pool, rng)
        best = min(best, time.perf_counter() - start)
        copied = len(done)
    return best * 1e3, copied


def best_val(configs) -> float:
    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    done = [e for e in run_population(members) if isinstance(e, Finished)]
    values = [e.best.get("val_mse", math.nan) for e in done if e.status == "finished"]
    return min(v for v in values if math.isfinite(v))


def main(quick: bool = False):
    torch.set_num_threads(2)
    ms, copied = step_ms(256, 50 if quick else 500)
    verdict = "ok" if ms <= TARGET_MS else "OVER TARGET"
    yield (
        f"pbt step: K = 256 house members ({copied} copied and perturbed): {ms:.3f} ms, "
        f"best of {50 if quick else 500} (target ≤ {TARGET_MS:g} ms: {verdict})"
    )
    repeats, epochs = (1, 8) if quick else (5, 30)
    rand, pbts = [], []
    start = time.perf_counter()
    for seed in range(repeats):
        rand.append(best_val(configs_of(seed, epochs, "constant")))
        pbts.append(best_val(configs_of(seed, epochs, "pbt")))
    n = len(configs_of(0, epochs, "pbt"))
    mean_r, mean_p = statistics.fmean(rand), statistics.fmean(pbts)
    verdict = "ok" if mean_p <= mean_r else "PBT WORSE"
    label = " (QUICK: a smoke test, not the comparison)" if quick else ""
    yield (
        f"pbt vs random search{label}: {PRESET}, {n} members x {epochs} epochs each, "
        f"{repeats} sweep seed(s): best val_mse random {mean_r:.5f} "
        f"({', '.join(f'{v:.5f}' for v in rand)}), pbt {mean_p:.5f} "
        f"({', '.join(f'{v:.5f}' for v in pbts)}) (target pbt ≤ random: {verdict}); "
        f"{time.perf_counter() - start:.0f} s"
    )
