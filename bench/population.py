"""Population vs one at a time: the house 4x10 MLP (batch 10, Adam) as K stacked members.

hypertui's figure is the training time per model-step of a K-member population through
`run_population` (events and evaluation included, training seconds as it reports them);
the bare figure is one model trained alone by the plainest PyTorch loop, per step. Their
ratio is the speed-up of training K trials together.

On a CUDA machine the populations train on the GPU (K = 72, the grid's size, up to
65,536) and one at a time is measured both on the CPU and on the GPU: the speed-up is
against the faster of the two, since a tiny MLP trains faster alone on a CPU core.
"""

from __future__ import annotations

import time
from functools import partial

import torch

from bench.common import paired
from bench.overhead import bare_loop
from hypertui.engine.core.config import Config, make_config
from hypertui.engine.data.load import load_dataset
from hypertui.engine.training.losses import make_loss
from hypertui.engine.training.models import build_model, build_optimizer
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member

CPU_SIZES = (16, 64, 256)
GPU_SIZES = (72, 1024, 8192, 65536)
GPU = "cuda"  # a dry run of the GPU lines on a CPU sets this to "cpu"
TARGETS = {256: ">= 30x", 8192: ">= 1000x"}


def population_step(k: int, device: str, epochs: int) -> float:
    """Training seconds per member-step for a population of k."""
    members = [
        Member(
            f"m{i}",
            make_config(
                hidden=[10, 10, 10, 10],
                batch_size=10,
                epochs=epochs,
                optimizer="adam",
                lr=10 ** (-2 - 2 * i / k),
                seed=i,
                device=device,
            ),
        )
        for i in range(k)
    ]
    done = list(run_population(members))[-1]
    return done.elapsed_s / done.steps / k


def bare_cuda_step(config: Config) -> float:
    """Seconds per step of the plainest loop training one model on the GPU."""
    device = torch.device(GPU)
    data = load_dataset(config, device)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    opt = build_optimizer(config, model.parameters())
    loss_fn = make_loss(config)
    x, y, n, bs = data.train.x, data.train.y, len(data.train), config.batch_size
    steps = 0
    _sync()
    t0 = time.perf_counter()
    perm = torch.randperm(n, device=device)
    for i in range(0, n, bs):
        idx = perm[i : i + bs]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        steps += 1
    _sync()
    return (time.perf_counter() - t0) / steps


def main(quick: bool = False) -> list[str]:
    lines = []
    threads = torch.get_num_threads()
    single = make_config(
        hidden=[10, 10, 10, 10], batch_size=10, optimizer="adam", epochs=1, device="cpu"
    )

    def bare_step() -> float:
        seconds, steps = bare_loop(single, 1)
        return seconds / steps

    if GPU == "cuda" and not torch.cuda.is_available():
        for k in CPU_SIZES:
            ours, bare = paired(partial(population_step, k, "cpu", 1), bare_step, 2 if quick else 3)
            torch.set_num_threads(threads)
            lines.append(_line(k, "cpu", ours, f"one-at-a-time {bare * 1e6:9.2f} us", bare))
        return lines

    bare_cpu = min(bare_step() for _ in range(3))
    torch.set_num_threads(threads)
    bare_cuda_step(single)  # warm CUDA and the data cache
    bare_gpu = min(bare_cuda_step(single) for _ in range(3))
    lines.append(
        f"one at a time, house 4x10 MLP, batch 10, Adam: CPU (1 thread) {bare_cpu * 1e6:.1f} us"
        f" a step, GPU {bare_gpu * 1e6:.1f} us a step"
    )
    best = min(bare_cpu, bare_gpu)
    population_step(72, GPU, 1)  # warm the population kernels
    for k in GPU_SIZES:
        repeats = 1 if quick or k > 8192 else 2
        ours = min(population_step(k, GPU, 1) for _ in range(repeats))
        where = "CPU" if best == bare_cpu else "GPU"
        lines.append(
            _line(k, GPU, ours, f"one-at-a-time ({where}) {best * 1e6:9.2f} us", best)
            + f"   population step {ours * k * 1e3:.3f} ms"
        )
    return lines


def _line(k: int, device: str, ours: float, baseline: str, bare: float) -> str:
    target = TARGETS.get(k, "")
    return (
        f"{f'population K={k} ({device}) per model-step':<44} hypertui {ours * 1e6:9.3f} us "
        f" {baseline}  speed-up {bare / ours:8.1f}x" + (f"   target {target}" if target else "")
    )


def _sync() -> None:
    if GPU == "cuda":
        torch.cuda.synchronize()
