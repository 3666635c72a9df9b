"""MNIST to 99% test accuracy: the `mnist-fast` preset through hypertui against the same
recipe written as a bare PyTorch loop (OneCycleLR, bf16 autocast), measured in one run.

Both train the study's CNN (16-32-64-128) for the preset's epochs on the same device and
data tensors. The figure is training time, evaluation excluded, synchronised on a GPU; the
time to 99% counts only if the run's test accuracy reached 0.99 at the end.
"""

from __future__ import annotations

import time

import torch

from bench.common import line, paired, sync
from hypertui.engine.core.config import Config
from hypertui.engine.data.load import load_dataset
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.training.devices import resolve_device
from hypertui.engine.training.losses import evaluate, make_loss
from hypertui.engine.training.models import build_model, build_optimizer
from hypertui.engine.training.schedule import planned_steps
from hypertui.engine.training.train import run

TARGET_ACC = 0.99


def bare(config: Config) -> tuple[float, float]:
    """Training seconds and final test accuracy of the plainest loop of the same recipe."""
    device = resolve_device(config.device)
    data = load_dataset(config, device)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    opt = build_optimizer(config, model.parameters())
    x, y, n, bs = data.train.x, data.train.y, len(data.train), config.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=planned_steps(config.epochs, n, bs), cycle_momentum=False
    )
    loss_fn = make_loss(config)
    bf16 = config.precision == "bf16"
    sync(device)
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        perm = torch.randperm(n, device=device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x[idx])
            loss = loss_fn(out.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    sync(device)
    seconds = time.perf_counter() - t0
    return seconds, evaluate(config, model, data.test.x, data.test.y, "test")["test_acc"]


def ours(config: Config) -> tuple[float, float]:
    done = list(run(config))[-1]
    if done.status != "finished":
        raise SystemExit(f"mnist-fast ended {done.status}: {done.reason}")
    return done.elapsed_s, done.test["test_acc"]


def main(quick: bool = False) -> list[str]:
    config = find_preset("mnist-fast").base_config
    if quick:  # one epoch of 10k examples: checks the wiring, not the 99%
        config = config.replace(epochs=1, train_samples=10_000)
    ours(config.replace(epochs=1, train_samples=2_560))  # load the data, warm the kernels
    accs: dict[str, list[float]] = {"hypertui": [], "bare": []}

    def timed(name, fn):
        def once() -> float:
            seconds, acc = fn(config)
            accs[name].append(acc)
            return seconds

        return once

    a, b = paired(timed("hypertui", ours), timed("bare", bare), 1 if quick else 2)
    device = resolve_device(config.device)
    label = f"MNIST mnist-fast, {config.epochs} epochs ({device.type})"
    reached = all(acc >= TARGET_ACC for acc in accs["hypertui"] + accs["bare"])
    target = "<= 1.5 s on an H100/H200" if device.type == "cuda" else "(GPU target: <= 1.5 s)"
    accuracy = ", ".join(f"{k} {min(v):.4f}-{max(v):.4f}" for k, v in accs.items())
    verdict = "99% reached by every run" if reached else "99% NOT reached by every run"
    return [line(label, a, b, "s", target), f"    test accuracy: {accuracy}; {verdict}"]
