"""Population based training inside a population (schedule = "pbt").

Every `pbt_interval` epochs the members in the bottom `pbt_quantile` of the last full
report copy the weights and optimizer state of a member drawn from the top quantile
("exploit") and perturb its hyperparameters ("explore"): each of lr, weight decay and
momentum (where the optimizer has one) is resampled with probability 0.25 from the values
the population started with, else multiplied by 0.8 or 1.2. These are Ray Tune's
PopulationBasedTraining defaults, in epochs; the members share one clock, so the step is
synchronous, and the exploit is a copy of rows of the flat parameter buffer and of the
optimizer's state instead of a checkpoint written and restored.

Members copy only from members with the same activation and optimizer (their rows mean the
same thing); each such set is ranked on its own. The draws come from a generator seeded
by the members' seeds and the epoch: the same population gives the same lineage, and a
resumed one goes on with the same draws.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

FACTORS = (0.8, 1.2)  # Ray's perturbation factors
RESAMPLE_PROBABILITY = 0.25  # Ray's resample_probability
MAX_MOMENTUM = 0.99  # momentum is kept below 1 (a config allows [0, 1))
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")


@dataclass(frozen=True)
class Exploit:
    """Row `row` took the weights and state of row `source` and these hyperparameters."""

    row: int
    source: int
    values: dict[str, float]


def quantile_size(n: int, quantile: float) -> int:
    """Members in each of the bottom and top quantiles of n (Ray's ceil, at most n // 2)."""
    return min(math.ceil(n * quantile), n // 2)


def draws(seeds: list[int], epoch: int) -> random.Random:
    """The generator of one step's draws: the members' seeds and the epoch decide it."""
    return random.Random(f"pbt {sorted(seeds)} {epoch}")


def perturb(
    values: dict[str, float],
    optimizer: str,
    pool: dict[str, list[float]],
    rng: random.Random,
    fields: tuple[str, ...] = ("lr", "momentum", "weight_decay"),
) -> dict[str, float]:
    """Explore: resample each of `fields` from `pool` with probability 0.25, else x0.8 or
    x1.2 (momentum only where the optimizer has one); the rest are the source's."""
    out = dict(values)
    for name in ("lr", "weight_decay", "momentum"):
        if name not in fields:
            continue
        if name == "momentum" and optimizer not in MOMENTUM_OPTIMIZERS:
            continue
        if rng.random() < RESAMPLE_PROBABILITY:
            value = rng.choice(pool[name])
        else:
            value = values[name] * rng.choice(FACTORS)
        out[name] = min(value, MAX_MOMENTUM) if name == "momentum" else value
    return out


def plan(
    scores: list[float],
    kinds: list[tuple[str, str]],
    higher: bool,
    quantile: float,
    rng: random.Random,
) -> list[tuple[int, int]]:
    """(row, source) pairs: each bottom member of a set of rows that share a kind
    (activation, optimizer) and a finite score draws its source from the set's top."""
    sets: dict[tuple[str, str], list[int]] = {}
    for r, (score, kind) in enumerate(zip(scores, kinds, strict=True)):
        if math.isfinite(score):
            sets.setdefault(kind, []).append(r)
    pairs = []
    for rows in sets.values():
        q = quantile_size(len(rows), quantile)
        if q < 1:
            continue
        ranked = sorted(rows, key=lambda r: scores[r], reverse=higher)  # best first
        top, bottom = ranked[:q], ranked[-q:]
        pairs += [(r, rng.choice(top)) for r in bottom]
    return pairs


@torch.no_grad()
def exploit_explore(
    model,
    opt,
    scores: list[float],
    kinds: list[tuple[str, str]],
    higher: bool,
    quantile: float,
    pool: dict[str, dict[str, list[float]]],
    rng: random.Random,
    fields: tuple[str, ...] = ("lr", "momentum", "weight_decay"),
) -> list[Exploit]:
    """One PBT step on a stacked model's rows and its StackedOptimizer. `scores`: each row's
    main metric (NaN: not a candidate, e.g. diverged); `kinds`: each row's (activation,
    optimizer); `pool[optimizer]`: the values a resample draws from; `fields`: what
    explore perturbs (config.pbt_fields)."""
    pairs = plan(scores, kinds, higher, quantile, rng)
    if not pairs:
        return []
    dst = [d for d, _ in pairs]
    src = [s for _, s in pairs]
    now = opt.hyperparameter_lists()
    values = [
        perturb({k: v[s] for k, v in now.items()}, kinds[d][1], pool[kinds[d][1]], rng, fields)
        for d, s in pairs
    ]
    device = model.flat.device
    at, frm = torch.tensor(dst, device=device), torch.tensor(src, device=device)
    model.flat.index_copy_(0, at, model.flat.index_select(0, frm))
    opt.copy_members(dst, src, values)
    return [Exploit(d, s, v) for d, s, v in zip(dst, src, values, strict=True)]
