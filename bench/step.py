"""The population step: today's (eager), the static-shape one, and (CUDA) its graph.

Each figure is the training seconds a population step costs through `run_population`
(`$HYPERTUI_STEP` picks the step; events and evaluation are left out, as the run's own
clock leaves them out), the house 4x10 MLP at batch 10. Calls alternate so that both
steps see the same machine; the best of the repeats is kept. Two populations: every
member with Adam and ReLU (the issue's target), and one that mixes three activations
and three optimizers (a TPE batch's draw: the step gathers the optimizers' rows).

On CUDA a bare-PyTorch step of one such MLP, eager and recorded as a CUDA graph with
torch.optim.Adam(capturable=True), is measured beside them: what capture gives a tiny
model outside hypertui (issue 24: 1,385 and 112 us on an H200).
"""

from __future__ import annotations

import os
import time

import torch

from bench.common import paired
from hypertui.engine.core.config import make_config
from hypertui.engine.data.load import load_dataset
from hypertui.engine.training.losses import make_loss
from hypertui.engine.training.models import build_model
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member

CPU_SIZES = (16, 64, 256)
GPU_SIZES = (72, 1024, 8192)
MIXED = [(a, o) for a in ("relu", "tanh", "gelu") for o in ("adam", "adamw", "sgd")]


def population_step(k: int, device: str, mode: str, mixed: bool, epochs: int = 1) -> float:
    """Training seconds per step of a population of k with step `mode`."""
    members = []
    for i in range(k):
        act, opt = MIXED[i * len(MIXED) // k] if mixed else ("relu", "adam")
        config = make_config(
            hidden=[10, 10, 10, 10], batch_size=10, epochs=epochs, optimizer=opt,
            activation=act, lr=10 ** (-2 - 2 * i / k), seed=i, device=device,
            momentum=0.9 if opt == "sgd" else 0.0,
        )  # fmt: skip
        members.append(Member(f"m{i}", config))
    os.environ["HYPERTUI_STEP"] = mode
    try:
        done = list(run_population(members))[-1]
    finally:
        del os.environ["HYPERTUI_STEP"]
    return done.elapsed_s / done.steps


def bare_steps(device: torch.device, graph: bool, steps: int = 400) -> float:
    """Seconds per step of one 4x10 MLP by the plainest loop, or its CUDA graph."""
    config = make_config(hidden=[10, 10, 10, 10], batch_size=10, optimizer="adam")
    data = load_dataset(config, device)
    torch.manual_seed(0)
    model = build_model(config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=graph)
    loss_fn = make_loss(config)
    x, y, n = data.train.x, data.train.y, len(data.train)
    idx = torch.randint(0, n, (10,), device=device)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        return loss

    run = step
    if graph:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream(device).wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()
        run = g.replay
    perms = torch.randint(0, n, (steps, 10), device=device)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        idx.copy_(perms[i])
        run()
    torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps


def main(quick: bool = False) -> list[str]:
    lines = []
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    sizes = GPU_SIZES if cuda else CPU_SIZES
    if quick:
        sizes = sizes[:2]
    repeats = 2 if quick else (3 if cuda else 5)
    if cuda:
        dev = torch.device("cuda")
        eager = min(bare_steps(dev, False) for _ in range(3))
        graph = min(bare_steps(dev, True) for _ in range(3))
        lines.append(
            f"bare PyTorch, one 4x10 MLP, batch 10, Adam on {torch.cuda.get_device_name()}:"
            f" eager {eager * 1e6:.1f} us a step, CUDA graph {graph * 1e6:.1f} us"
        )
    new = "graph" if cuda else "static"
    for mixed in (False, True):
        what = "3 activations x 3 optimizers" if mixed else "relu, adam"
        population_step(sizes[0], device, new, mixed)  # warm the kernels (and cuDNN)
        for k in sizes:
            ours, today = paired(
                lambda k=k, m=mixed: population_step(k, device, new, m),
                lambda k=k, m=mixed: population_step(k, device, "eager", m),
                repeats,
            )
            target = "   target <= 0.3 ms" if cuda and not mixed else ""
            lines.append(
                f"K = {k:5d} ({what}, {device}): {new} {ours * 1e3:7.3f} ms a step, eager "
                f"{today * 1e3:7.3f} ms, ratio {ours / today:5.2f}{target}"
            )
    return lines
