"""What checkpoints cost (`python -m bench checkpoints`): the seconds a resumable checkpoint
takes, for a K=256 house MLP population (256 members' files from their rows) and for the
MNIST CNN alone, against the time of one training step of the same run.

A checkpoint is written at the end of an epoch, every `save_every` epochs (default 10) or
`save_minutes` (default 5), and never sooner than COST_FACTOR times what the last one
took: its cost per step is a write's seconds over the steps between two writes. Here
every epoch writes one (save_every = 1, no guard) to time many writes.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished
from hypertui.engine.training import checkpoint
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run

DEFAULT_EVERY = 10  # Config.save_every


def timed_writes(train) -> tuple[list[float], list[Finished]]:
    """Seconds of each epoch's checkpoint writes (all members' together), and the runs'
    Finished events."""
    writes: dict[int, float] = defaultdict(float)
    original = checkpoint.Checkpoints.save_last

    def save_last(self, epoch, tensors, meta):
        start = time.perf_counter()
        original(self, epoch, tensors, meta)
        writes[epoch] += time.perf_counter() - start

    checkpoint.Checkpoints.save_last = save_last
    factor, checkpoint.COST_FACTOR = checkpoint.COST_FACTOR, 0  # every epoch: many writes
    try:
        done = [e for e in train() if isinstance(e, Finished)]
    finally:
        checkpoint.Checkpoints.save_last = original
        checkpoint.COST_FACTOR = factor
    return list(writes.values()), done


def line(name: str, writes: list[float], done: Finished, steps_per_epoch: int) -> str:
    step_s = done.elapsed_s / done.steps
    write_s = statistics.median(writes)
    every_s = DEFAULT_EVERY * steps_per_epoch * step_s
    gap_s = max(every_s, checkpoint.COST_FACTOR * write_s)  # the defaults, the cost guard
    return (
        f"{name}: a checkpoint {1e3 * write_s:.1f} ms (median of {len(writes)}), a step"
        f" {1e3 * step_s:.2f} ms: {write_s / step_s:.1f} steps a checkpoint, i.e."
        f" {100 * write_s / every_s:.2f}% of training every {DEFAULT_EVERY} epochs;"
        f" at the defaults (and never sooner than {checkpoint.COST_FACTOR}x a write)"
        f" {100 * write_s / gap_s:.2f}%, {1e3 * write_s / gap_s * step_s:.4f} ms a step"
    )


def main(quick: bool = False) -> list[str]:
    out = []
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        k, epochs = (32, 3) if quick else (256, 6)
        base = dict(problem="house", batch_size=10, epochs=epochs, save_every=1, device="cpu")
        members = []
        for i in range(k):
            config = make_config(
                **base, lr=10 ** (-3 + 2 * i / k), optimizer=("sgd", "adam")[i % 2], seed=i % 4
            )
            members.append(Member(f"m{i:03d}", config, Path(tmp) / "pop" / f"m{i:03d}"))
        writes, done = timed_writes(lambda: run_population(members))
        steps_per_epoch = done[0].steps // epochs
        size = sum(p.stat().st_size for p in (Path(tmp) / "pop").rglob(checkpoint.BEST))
        out.append(
            line(f"house MLP population, K={k}", writes, done[0], steps_per_epoch)
            + f"; {k} members' best weights: {size / 1024:.0f} KiB"
        )
        n = 2_000 if quick else 6_000
        cnn = make_config(
            problem="mnist",
            model="cnn",
            loss="cross_entropy",
            optimizer="adam",
            lr=1e-3,
            batch_size=64,
            epochs=3 if quick else 5,
            train_samples=n,
            save_every=1,
            device="cpu",
        )
        folder = Path(tmp) / "cnn" / "run"
        writes, done = timed_writes(lambda: run(cnn, checkpoints=folder))
        out.append(
            line("MNIST CNN (16-32-64-128), Adam, 1 thread", writes, done[0], -(-n // 64))
            + f"; best weights {(folder / checkpoint.BEST).stat().st_size / 1024:.0f} KiB"
        )
    return out
