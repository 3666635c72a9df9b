"""CNN populations vs one at a time: the study's MNIST CNN (channels 16-128, batch 32, SGD,
as `mnist-cnn-learning-rate`) as K members of one stacked model (grouped convolutions).

hypertui's figure is a population step (StackedCNN.gradients and StackedOptimizer.step on
real MNIST batches, each member its own) divided by K; the bare one is one model's step in
the plainest PyTorch loop. Their ratio below 1 is what stacking the CNN saves per model.
On a CPU both use every thread, as the runs themselves do.
"""

from __future__ import annotations

import functools
import time

import torch

from bench.common import line, paired, sync
from hypertui.engine.core.config import make_config
from hypertui.engine.data.load import load_dataset
from hypertui.engine.training.losses import make_loss, member_loss_gradient
from hypertui.engine.training.models import build_model, build_optimizer
from hypertui.engine.training.stacked import Member, stacked_model
from hypertui.engine.training.stacked_optimizer import StackedOptimizer

CPU_SIZES = (4,)
GPU_SIZES = (4, 16, 64)
STEPS = 20


def members(k: int, device: str):
    return [
        make_config(
            problem="mnist", model="cnn", optimizer="sgd", batch_size=32, epochs=1,
            time_budget_s=None, lr=0.1 / 2**i, seed=i, device=device,
        )
        for i in range(k)
    ]  # fmt: skip


def population_step(configs, x, y) -> float:
    """Seconds per member-step of the K configs trained as one population."""
    device = x.device
    model = stacked_model([Member(str(i), c) for i, c in enumerate(configs)], device)
    opt = StackedOptimizer(model, configs)
    loss_of = functools.partial(member_loss_gradient, configs[0])
    k, bs = len(configs), configs[0].batch_size
    gen = torch.Generator(device=device).manual_seed(0)
    idx = torch.randint(len(x), (STEPS + 2, k, bs), generator=gen, device=device)
    for s in range(STEPS + 2):
        if s == 2:  # two warm-up steps
            sync(device)
            t0 = time.perf_counter()
        model.gradients(x[idx[s]], y[idx[s]], loss_of)
        opt.step()
    sync(device)
    return (time.perf_counter() - t0) / STEPS / k


def single_step(config, x, y) -> float:
    """Seconds per step of one model, trained alone."""
    device = x.device
    torch.manual_seed(0)
    model = build_model(config).to(device)
    opt = build_optimizer(config, model.parameters())
    loss_fn = make_loss(config)
    gen = torch.Generator(device=device).manual_seed(0)
    idx = torch.randint(len(x), (STEPS + 2, config.batch_size), generator=gen, device=device)
    for s in range(STEPS + 2):
        if s == 2:
            sync(device)
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x[idx[s]]), y[idx[s]]).backward()
        opt.step()
    sync(device)
    return (time.perf_counter() - t0) / STEPS


def main(quick: bool = False) -> list[str]:
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    sizes = GPU_SIZES if cuda else CPU_SIZES
    data = load_dataset(members(1, device)[0], torch.device(device))
    x, y = data.train.x, data.train.y
    lines = []
    for k in sizes[:1] if quick else sizes:
        configs = members(k, device)
        ours, bare = paired(
            lambda c=configs: population_step(c, x, y),
            lambda c=configs: single_step(c[0], x, y),
            repeats=1 if quick else 3,
        )
        lines.append(line(f"CNN population K={k} ({device}), per model-step", ours, bare, "s"))
    return lines
