"""Synthetic, deterministic store contents for TUI tests and snapshots (no training), and
small image data sets written to disk."""

from __future__ import annotations

import math

import numpy as np

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished, Progress, RunStarted
from hypertui.engine.store.store import Store

CREATED = 1_790_000_000.0  # a fixed time, so History renders the same everywhere


def analysis(gaussian: bool) -> dict[str, list[float]]:
    pred = [1.2 + 0.004 * k for k in range(439)]
    if not gaussian:
        return {"pred": pred}
    return {"pred": pred, "var": [0.02 + 0.0005 * k for k in range(439)]}


def make_sweep(store: Store, sweep_id: str = "5eed0001", gaussian: bool = False) -> str:
    """A finished house sweep: lr x activation x 2 seeds, one lr diverged."""
    loss = "gaussian_nll" if gaussian else "mse"
    trials = []
    i = 0
    for lr in (0.1, 0.01, 2.0):
        for act in ("relu", "tanh"):
            for seed in (0, 1):
                config = make_config(lr=lr, activation=act, seed=seed, epochs=5, loss=loss)
                point = {"lr": lr, "activation": act}
                trials.append((f"{sweep_id[-4:]}r{i:03d}", i, seed, config.to_dict(), point))
                i += 1
    store.create_sweep(
        sweep_id, "house-demo", "house", "a synthetic sweep", ["lr", "activation"], trials
    )
    store.claim_sweep(sweep_id)
    for run_id, idx, seed, config, point in trials:
        store.run_started(
            RunStarted(
                run_id,
                config,
                "cpu",
                "CPU (1 thread)",
                381,
                {"train": 2050, "val": 439, "test": 440},
            )
        )
        base = (
            0.08
            + 0.01 * (point["activation"] == "tanh")
            + 0.004 * seed
            + 0.02 * (point["lr"] == 0.1)
        )
        diverged = point["lr"] == 2.0
        points = []
        for epoch in range(1, 6):
            val = math.nan if diverged and epoch == 2 else base + 0.3 / epoch
            metrics = {"val_loss": val, "val_mse": val}
            if gaussian:
                metrics |= {"val_nll": -0.5 - 0.05 * epoch, "val_var": 0.1 / epoch}
            points.append(
                Progress(
                    run_id,
                    epoch,
                    205 * epoch,
                    2050 * epoch,
                    0.1 * epoch,
                    base + 0.5 / epoch,
                    metrics,
                )
            )
            if diverged and epoch == 2:
                break
        store.add_points(points)
        final = {"train_loss": points[-1].train_loss, **points[-1].metrics}
        store.run_ended(
            Finished(
                run_id,
                "diverged" if diverged else "finished",
                epochs_done=len(points),
                steps=205 * len(points),
                samples=2050 * len(points),
                elapsed_s=0.1 * len(points),
                wall_s=0.5 + 0.1 * idx,
                final=final,
                best=dict(points[-1].metrics),
                best_epoch=len(points),
                test={} if diverged else {"test_loss": base + 0.05, "test_mse": base + 0.05},
                reason="loss became NaN or infinite" if diverged else "",
                analysis={} if diverged else analysis(gaussian),
            )
        )
    store.end_sweep(sweep_id, "done")
    store.db.execute(
        "UPDATE sweeps SET created_at=?, updated_at=? WHERE id=?", (CREATED, CREATED, sweep_id)
    )
    return sweep_id


def write_image_folder(root, n=24, side=10):
    """An image folder of two classes, red/ and blue/, each n RGB PNGs side x side."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 60, size=(side, side, 3), dtype=np.uint8)
            pixels[..., channel] = 200
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def pending_sweep(store: Store, sweep_id: str, n: int, **values) -> list[str]:
    """A sweep of `n` pending house trials (lr 0.01, 0.02, ...), nothing trained yet, as
    `create_sweep` leaves one; its run ids in trial order. `values` go into every config."""
    trials = []
    for i in range(n):
        config = make_config(lr=0.01 * (i + 1), hidden=[3], epochs=3, **values).to_dict()
        trials.append((f"{sweep_id[-4:]}r{i:03d}", i, 0, config, {"lr": config["lr"]}))
    store.create_sweep(sweep_id, "synthetic", "house", "", ["lr"], trials)
    return [t[0] for t in trials]


def start_trial(store: Store, run_id: str, device: str = "cpu") -> None:
    """A runner starting a trial, as run_sweep records it."""
    config = store.run(run_id).config
    store.run_started(RunStarted(run_id, config, device, device, 19, {"train": 2050}))


def train_epochs(store: Store, run_id: str, epochs) -> None:
    """A runner's curve points for these epochs of a trial (one report per epoch)."""
    store.add_points(
        [
            Progress(run_id, e, 10 * e, 2050 * e, 0.1 * e, 1.0 / e, {"val_mse": 0.5 / e})
            for e in epochs
        ]
    )


def finish_trial(store: Store, run_id: str, epochs: int, status: str = "finished") -> None:
    final = {"train_loss": 1.0 / epochs, "val_mse": 0.5 / epochs}
    store.run_ended(
        Finished(
            run_id,
            status,
            epochs,
            10 * epochs,
            2050 * epochs,
            0.1 * epochs,
            0.2 * epochs,
            final,
            dict(final),
            epochs,
            {"test_mse": 0.6 / epochs},
        )
    )


def stored_epochs(store: Store, run_id: str) -> list[int]:
    """A run's stored curve as the epochs of its end-of-epoch points, once the whole curve
    is checked to be stored once (seq 0, 1, 2, ... with no gap or repeat). A long epoch also
    reports inside itself every 2 s (an epoch is long on a busy machine): those points are
    part of the curve but not counted here, so a test never depends on the machine's speed."""
    points = store.points(run_id)
    assert [p["seq"] for p in points] == list(range(len(points))), run_id
    return [p["epoch"] for p in points if p["end_of_epoch"]]


def epoch_curve(events: list, run_id: str) -> list[dict[str, float]]:
    """A run's validation metrics at the end of each epoch, from its events."""
    return [
        e.metrics
        for e in events
        if isinstance(e, Progress) and e.run_id == run_id and e.end_of_epoch
    ]


def whole_and_resumed(store: Store, preset, cut_at_epoch: int = 3) -> tuple[str, str]:
    """Two sweeps of a preset: one trained whole, one cancelled at the end of epoch
    `cut_at_epoch` and resumed (their ids): what a resume test compares."""
    from hypertui.engine.core.controls import Controls
    from hypertui.engine.sweeps.sweep import create_sweep, run_sweep

    whole = create_sweep(store, preset)
    list(run_sweep(store, whole))
    cut = create_sweep(store, preset)
    controls = Controls()
    for item in run_sweep(store, cut, controls):
        if isinstance(item.event, Progress) and item.event.epoch == cut_at_epoch:
            controls.cancel()
    list(run_sweep(store, cut))
    return whole, cut


def member_row(model, members: int, kept: list[int], k: int) -> int:
    """Member k's row in a population's model after members left: its own where the
    static-shape step keeps every row (engine/training/step.py), else its place among
    the members kept."""
    return k if model.size == members else kept.index(k)


class RecordingGraph:
    """A CUDA graph's semantics on a CPU, for the static-shape step (step.py): `capture`
    records the aten operations a function runs, with their tensors and scalar arguments
    as they were; `replay` runs those operations again on the same tensors, each result
    standing in for the recorded one. A step that read a host value (the step count, the
    batch's length) or made a tensor anew would replay the recorded one, as a real graph
    does; one that reads the device (`.item()`, `.tolist()`) fails to record."""

    captures = 0  # recordings so far, every instance (tests reset it)

    def __init__(self, device=None):
        self.ops: list = []

    def warm(self, fn):
        return fn()

    def capture(self, fn) -> None:
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        ops = []

        class Recorder(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func is torch.ops.aten._local_scalar_dense.default:
                    raise RuntimeError("the step reads a value from the device")
                out = func(*args, **(kwargs or {}))
                ops.append((func, args, kwargs or {}, out))
                return out

        with Recorder():
            fn()
        self.ops = ops
        RecordingGraph.captures += 1

    def replay(self) -> None:
        import torch
        from torch.utils._pytree import tree_flatten, tree_map

        now: dict[int, object] = {}  # id of a recorded result -> this replay's

        def swap(x):
            return now.get(id(x), x) if isinstance(x, torch.Tensor) else x

        with torch.no_grad():
            for func, args, kwargs, out in self.ops:
                result = func(*tree_map(swap, args), **tree_map(swap, kwargs))
                pairs = zip(tree_flatten(out)[0], tree_flatten(result)[0], strict=True)
                for recorded, fresh in pairs:
                    if isinstance(recorded, torch.Tensor):
                        now[id(recorded)] = fresh


class FailingGraph(RecordingGraph):
    """A recording that fails, as one of an operation CUDA graphs cannot hold does."""

    def capture(self, fn) -> None:
        raise RuntimeError("operation not permitted when stream is capturing")


class DriftingGraph(RecordingGraph):
    """A replay that computes something else than the step (a stale input, say)."""

    def replay(self) -> None:
        super().replay()
        self.ops[-1][3].add_(1.0)  # the losses the step wrote
