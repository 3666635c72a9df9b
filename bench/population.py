"""Population vs one at a time: the house 4x10 MLP (batch 10, Adam) as K stacked members.

hypertui's figure is the training time per model-step of a K-member population through
`run_population` (events and evaluation included, training seconds as it reports them);
the bare figure is one model trained alone by the plainest PyTorch loop, per step. Their
ratio is the speed-up of training K trials together.
"""

from __future__ import annotations

from functools import partial

import torch

from bench.common import paired
from bench.overhead import bare_loop
from engine.config import make_config
from engine.population import Member, run_population

CPU_SIZES = (16, 64, 256)
GPU_SIZES = (1024, 8192, 65536)


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


def main(quick: bool = False) -> list[str]:
    lines = []
    threads = torch.get_num_threads()
    single = make_config(
        hidden=[10, 10, 10, 10], batch_size=10, optimizer="adam", epochs=1, device="cpu"
    )
    sizes = [("cpu", k) for k in CPU_SIZES]
    if torch.cuda.is_available():
        sizes += [("cuda", k) for k in GPU_SIZES]

    def bare_step() -> float:
        seconds, steps = bare_loop(single, 1)
        return seconds / steps

    for device, k in sizes:
        ours, bare = paired(partial(population_step, k, device, 1), bare_step, 2 if quick else 3)
        torch.set_num_threads(threads)
        target = {256: ">= 30x", 8192: ">= 1000x"}.get(k, "")
        lines.append(
            f"{f'population K={k} ({device}) per model-step':<44} hypertui {ours * 1e6:9.2f} us "
            f" one-at-a-time {bare * 1e6:9.2f} us  speed-up {bare / ours:8.1f}x"
            + (f"   target {target}" if target else "")
        )
    return lines
