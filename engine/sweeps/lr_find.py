"""Learning-rate range test (Smith 2015; fastai's lr_find, torch-lr-finder), as one population.

Every config of a preset that differs in anything but lr and seed trains once, from its
initial weights, with a learning rate that rises exponentially from `start` to `end` over
`steps` steps, one batch a step. The batch loss is smoothed by a bias-corrected
exponential moving average; a member stops when its smoothed loss passes `stop_factor`
times its best (it has diverged). MLP configs that can share a population train as one
stacked model (engine/training/population.py); others (the CNN) train one after another.

Two suggestions per curve, as fastai names them: `steepest`, the lr where the smoothed loss
falls fastest against log lr, and `valley`, fastai's default: a point two thirds down the
longest stretch of falling loss, which lies below the divergence cliff more reliably.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from hypertui.engine.core.config import Config
from hypertui.engine.core.grouping import population_key
from hypertui.engine.data.load import load_dataset
from hypertui.engine.sweeps.presets import Preset
from hypertui.engine.training.devices import resolve_device
from hypertui.engine.training.losses import make_loss, member_loss_gradient
from hypertui.engine.training.models import build_model, build_optimizer
from hypertui.engine.training.stacked import Member, stacked_model, tune_for
from hypertui.engine.training.stacked_optimizer import StackedOptimizer
from hypertui.engine.training.train import native_bf16, restore_settings

START_LR, END_LR, STEPS = 1e-7, 10.0, 100  # fastai's defaults
BETA = 0.98  # EMA of the batch loss (fastai, torch-lr-finder)
STOP_FACTOR = 4.0  # stop once the smoothed loss is 4x its best
SKIP_START, SKIP_END = 10, 5  # the steepest slope ignores the noisy ends (torch-lr-finder)


@dataclass(frozen=True)
class Curve:
    config: Config  # the member's config (its own lr is ignored)
    point: dict  # the preset's swept values of this config, lr and seed excluded
    lrs: tuple[float, ...]  # one per step trained
    losses: tuple[float, ...]  # the smoothed loss after each step
    steepest: float | None
    valley: float | None


@dataclass(frozen=True)
class LrFind:
    curves: list[Curve]
    seconds: float  # wall time, data loading included

    @property
    def suggestion(self) -> float:
        """One lr for the whole preset: the geometric mean of the curves' valleys."""
        values = [c.valley for c in self.curves if c.valley]
        if not values:
            raise ValueError("no curve fell: the range test found no usable learning rate")
        return math.exp(sum(math.log(v) for v in values) / len(values))


def schedule(steps: int, start: float, end: float) -> list[float]:
    return [start * (end / start) ** (t / max(1, steps - 1)) for t in range(steps)]


def steepest(lrs: list[float], losses: list[float]) -> float | None:
    """The lr where the smoothed loss falls fastest against log lr."""
    if len(losses) < SKIP_START + SKIP_END + 2:
        return None
    lo, hi = SKIP_START, len(losses) - SKIP_END
    grad = np.gradient(np.array(losses[lo:hi]), np.log(np.array(lrs[lo:hi])))
    return float(lrs[lo + int(np.argmin(grad))])


def valley(lrs: list[float], losses: list[float]) -> float | None:
    """fastai's `valley`: two thirds of the way down the longest falling stretch."""
    n = len(losses)
    if n < 3:
        return None
    longest = [1] * n  # longest decreasing subsequence ending at i
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[end] < longest[i]:
            end, start = i, i - longest[i]
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def members_of(preset: Preset) -> list[tuple[Config, dict]]:
    """One config per point of the preset with lr and seed left out (the first seed)."""
    seen: dict[str, tuple[Config, dict]] = {}
    for trial in preset.expand():
        point = {k: v for k, v in trial.point.items() if k != "lr"}
        seen.setdefault(repr(sorted(point.items())), (trial.config, point))
    return list(seen.values())


def lr_find(
    preset: Preset,
    steps: int = STEPS,
    start: float = START_LR,
    end: float = END_LR,
    data_dir=None,
) -> LrFind:
    t0 = time.perf_counter()
    members = members_of(preset)
    lrs = schedule(steps, start, end)
    groups: dict[str, list[tuple[Config, dict]]] = {}
    alone = []
    for config, point in members:
        key = population_key(config.replace(lr=start))
        (groups.setdefault(key, []) if key else alone).append((config, point))
    curves = []
    with restore_settings():
        for group in groups.values():
            curves += _population(group, lrs, data_dir)
        for config, point in alone:
            curves.append(_single(config, point, lrs, data_dir))
    order = {repr(sorted(p.items())): i for i, (_, p) in enumerate(members)}
    curves.sort(key=lambda c: order[repr(sorted(c.point.items()))])
    return LrFind(curves, time.perf_counter() - t0)


class _Smoother:
    """Bias-corrected EMA per member and the stop rule."""

    def __init__(self, k: int):
        self.avg = [0.0] * k
        self.best = [math.inf] * k
        self.curves: list[list[float]] = [[] for _ in range(k)]
        self.live = [True] * k

    def add(self, t: int, losses: list[float]) -> None:
        for i, loss in enumerate(losses):
            if not self.live[i]:
                continue
            self.avg[i] = BETA * self.avg[i] + (1 - BETA) * loss
            smooth = self.avg[i] / (1 - BETA ** (t + 1))
            if not math.isfinite(smooth) or (t > 0 and smooth > STOP_FACTOR * self.best[i]):
                self.live[i] = False  # diverged: the curve ends before this step
                continue
            self.best[i] = min(self.best[i], smooth)
            self.curves[i].append(smooth)


def _curve(config: Config, point: dict, lrs: list[float], losses: list[float]) -> Curve:
    seen = lrs[: len(losses)]
    return Curve(
        config, point, tuple(seen), tuple(losses), steepest(seen, losses), valley(seen, losses)
    )


def _batches(n: int, bs: int, seed: int, device, steps: int):
    """Batch indices for `steps` steps: the member's seeded randperm, epoch after epoch."""
    gen = torch.Generator(device=device).manual_seed(seed)
    out: list[torch.Tensor] = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=gen, device=device)
        out += [perm[i : i + bs] for i in range(0, n - bs + 1, bs)] or [perm]
    return out[:steps]


def _population(group, lrs, data_dir) -> list[Curve]:
    base = group[0][0]
    device = resolve_device(base.device)
    data = load_dataset(base, device, data_dir)
    model = stacked_model([Member(str(i), c) for i, (c, _) in enumerate(group)], device)
    # Every member starts at lr 1; the schedule's lr is the step's scale factor.
    opt = StackedOptimizer(model, [c.replace(lr=1.0) for c, _ in group])
    tune_for(model, device)
    x, y, n = data.train.x, data.train.y, len(data.train)
    batches = [_batches(n, base.batch_size, c.seed, device, len(lrs)) for c, _ in group]
    smoother = _Smoother(len(group))
    loss_of = functools.partial(member_loss_gradient, base)
    for t, lr in enumerate(lrs):
        idx = torch.stack([b[t] for b in batches])
        loss = model.gradients(x[idx], y[idx], loss_of)
        opt.step(lr)
        smoother.add(t, loss.tolist())
        if not any(smoother.live):
            break
    return [_curve(c, p, lrs, smoother.curves[i]) for i, (c, p) in enumerate(group)]


def _single(config: Config, point: dict, lrs: list[float], data_dir) -> Curve:
    device = resolve_device(config.device)
    data = load_dataset(config, device, data_dir)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    opt = build_optimizer(config, model.parameters())
    loss_fn = make_loss(config)
    x, y, n = data.train.x, data.train.y, len(data.train)
    batches = _batches(n, config.batch_size, config.seed, device, len(lrs))
    autocast = torch.autocast(
        device.type, torch.bfloat16, enabled=config.precision == "bf16" and native_bf16(device)
    )
    smoother = _Smoother(1)
    for t, lr in enumerate(lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        idx = batches[t]
        with autocast:
            out = model(x[idx])
        loss = loss_fn(out.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        smoother.add(t, [loss.item()])
        if not smoother.live[0]:
            break
    return _curve(config, point, lrs, smoother.curves[0])


def lr_preset(preset: Preset, lr: float, spread: float | None = None) -> tuple[str, str]:
    """A user preset's name and TOML text: `preset` with lr fixed to `lr`, or, with
    `spread`, swept over [lr / spread, lr, lr * spread]. Written by tomli_w and read back
    by parse_preset before anyone saves it."""
    import tomli_w

    from hypertui.engine.sweeps.presets import RandomAxis, parse_preset

    name = f"{preset.name}-lr"
    base = {k: v for k, v in preset.base.items() if v is not None}
    sweep = {
        k: (v.spec() if isinstance(v, RandomAxis) else v)
        for k, v in preset.axes.items()
        if k != "lr"
    }
    lr = float(f"{lr:.3g}")
    if spread:
        sweep["lr"] = [float(f"{lr / spread:.3g}"), lr, float(f"{lr * spread:.3g}")]
    else:
        base["lr"] = lr
    doc: dict = {
        "name": name,
        "description": f"{preset.description} (lr from `hypertui lr-find {preset.name}`)",
        "seeds": preset.seeds,
    }
    if preset.claim:
        doc["claim"] = preset.claim
    if any(isinstance(v, RandomAxis) for v in preset.axes.values()):
        doc |= {"trials": preset.trials, "sweep_seed": preset.sweep_seed}
    doc["config"] = base
    if sweep:
        doc["sweep"] = sweep
    full = {k: v for k, v in preset.full.items() if k != "lr"}
    if full:
        doc["full"] = full
    text = tomli_w.dumps(doc)
    parse_preset(text, f"{name}.toml")  # refuse to write what would not load
    return name, text
