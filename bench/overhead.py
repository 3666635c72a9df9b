"""Engine overhead: hypertui's training loop against a bare PyTorch loop, same work.

Both train the same model on the same tensors with the same optimizer and batch order
machinery (randperm indexing). hypertui's figure is its own training time (evaluation
excluded, as it reports it); the bare loop is timed around its epochs.
"""

from __future__ import annotations

import time

import torch

from bench.common import line, paired
from hypertui.engine.core.config import Config, make_config
from hypertui.engine.data.load import load_dataset
from hypertui.engine.training.losses import make_loss
from hypertui.engine.training.models import build_model, build_optimizer
from hypertui.engine.training.train import run


def bare_loop(config: Config, threads: int) -> tuple[float, int]:
    """Seconds and steps for `config.epochs` epochs of the plainest loop we can write."""
    torch.set_num_threads(threads)
    data = load_dataset(config, torch.device("cpu"))
    torch.manual_seed(config.seed)
    model = build_model(config)
    opt = build_optimizer(config, model.parameters())
    loss_fn = make_loss(config)
    x, y, n, bs = data.train.x, data.train.y, len(data.train), config.batch_size
    steps = 0
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            steps += 1
    return time.perf_counter() - t0, steps


def ours(config: Config) -> tuple[float, int]:
    done = list(run(config))[-1]
    return done.elapsed_s, done.steps


def main(quick: bool = False) -> list[str]:
    threads = torch.get_num_threads()
    house = make_config(
        hidden=[10, 10, 10, 10], batch_size=10, optimizer="rmsprop", epochs=2, device="cpu"
    )
    ours(house.replace(epochs=1))  # warm the data cache and allocator before timing

    def step_time(fn):
        def once() -> float:
            seconds, steps = fn()
            return seconds / steps

        return once

    a, b = paired(
        step_time(lambda: ours(house)), step_time(lambda: bare_loop(house, 1)), 5 if quick else 15
    )
    lines = [line("house 4x10 MLP, batch 10, per step (1 thread)", a, b, "s", "<= 1.05")]
    torch.set_num_threads(threads)

    cnn = make_config(
        problem="mnist",
        batch_size=64,
        epochs=1,
        device="cpu",
        train_samples=10_000 if quick else None,
    )
    ours(cnn.replace(train_samples=640))
    a, b = paired(lambda: ours(cnn)[0], lambda: bare_loop(cnn, threads)[0], 1 if quick else 3)
    label = "MNIST CNN 16-32-64-128, batch 64, one epoch" + (" (10k)" if quick else "")
    lines.append(line(label, a, b, "s", "<= 1.05"))
    torch.set_num_threads(threads)
    return lines
