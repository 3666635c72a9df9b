"""Tracking your own loop (`python -m bench tracking`): what `import hypertui` and
`run.log` cost the user's script, how soon a point is visible to a viewer, and what
tracking adds to the example's MNIST CNN loop (logging every step).

Targets (issue 20): import <= 50 ms with no torch, pandas or Textual; `run.log` of 10
scalars <= 50 us median and <= 1 ms p99 in the calling thread; a point visible to
`attach` <= 0.5 s after the call; <= 1% added to an MNIST CNN epoch.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

import hypertui
from hypertui.engine.store.follow import Follower
from hypertui.engine.store.store import Store


def import_seconds(repeats: int) -> tuple[float, float, str]:
    """Best of `repeats` wall times of `python -c "import hypertui"` and of a bare
    interpreter, and which heavy modules the import loaded."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    ours = min(run("import hypertui; hypertui.init") for _ in range(repeats))
    bare = min(run("pass") for _ in range(repeats))
    code = (
        "import sys, hypertui; hypertui.init; print(' '.join(m for m in "
        "('torch', 'pandas', 'numpy', 'textual', 'rich') if m in sys.modules) or 'none')"
    )
    heavy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return ours, bare, heavy.stdout.strip()


def log_latency(store: Path, calls: int) -> tuple[float, float]:
    """Median and p99 seconds of one `run.log` of 10 scalars in the calling thread."""
    values = {f"metric_{i}": 0.1 * i for i in range(10)}
    times = []
    with hypertui.init(name="bench-log", config={"seed": 0}, store=store) as run:
        clock = time.perf_counter
        for step in range(calls):
            start = clock()
            run.log(values, step=step)
            times.append(clock() - start)
    times.sort()
    return statistics.median(times), times[int(0.99 * len(times))]


def visible_after(store: Path, points: int) -> list[float]:
    """Seconds from `run.log` to the point being read by a viewer polling the store as
    `attach` does (every 0.25 s; here every 10 ms, to measure the writer alone)."""
    delays = []
    with hypertui.init(name="bench-visible", config={"seed": 0}, store=store) as run:
        viewer = Store(store)
        follower = Follower(viewer, run.sweep_id)
        follower.poll()
        for step in range(points):
            logged = time.perf_counter()
            run.log({"val_loss": 1.0 / (step + 1)}, step=step)
            while True:
                events = follower.poll().events
                if any(getattr(e.event, "step", None) == step for e in events):
                    break
                time.sleep(0.01)
            delays.append(time.perf_counter() - logged)
            time.sleep(0.3)  # points far apart: each waits for its own flush
        viewer.close()
    return delays


class Net(nn.Module):  # the example's CNN (examples/mnist_cnn.py)
    def __init__(self, width: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def cnn_epoch(x, y, run) -> float:
    """One epoch of the example's loop (batch 64) on tensors; logs every step when `run`."""
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for step, i in enumerate(range(0, len(x), 64)):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[i : i + 64]), y[i : i + 64])
        loss.backward()
        optimizer.step()
        if run is not None:
            run.log({"train_loss": loss.item()}, step=step)
        else:
            loss.item()  # the same sync point, untracked
    return time.perf_counter() - start


def cnn_overhead(store: Path, quick: bool) -> str:
    """What tracking adds to the example's CNN: short stretches of training, tracked and
    untracked in turn (each pair sees the same machine), the median of their ratios and
    its 95% interval. One long epoch each varies by +-15% on a shared 2-core machine."""
    n, pairs = (1_000, 6) if quick else (3_200, 40)  # 50 steps a stretch
    x, y = torch.randn(n, 1, 28, 28), torch.randint(0, 10, (n,))
    ratios, training_s = [], 0.0
    with hypertui.init(name="bench-cnn", config={"seed": 0}, store=store) as run:
        cnn_epoch(x, y, run), cnn_epoch(x, y, None)  # warm-up: allocator, first flush
        writer = time.pthread_getcpuclockid(run._writer.ident)
        writer_s = time.clock_gettime(writer)
        for i in range(pairs):
            if i % 2:  # which goes first alternates too
                untracked = cnn_epoch(x, y, None)
                tracked = cnn_epoch(x, y, run)
            else:
                tracked = cnn_epoch(x, y, run)
                untracked = cnn_epoch(x, y, None)
            ratios.append(tracked / untracked)
            training_s += tracked
        share = 100 * (time.clock_gettime(writer) - writer_s) / training_s
    interval = stats.bootstrap((ratios,), np.median, confidence_level=0.95, random_state=0)
    low, high = interval.confidence_interval
    return (
        f"MNIST CNN ({n // 64 + 1} steps of batch 64 a stretch, a run.log every step,"
        f" 1 thread): tracking adds {100 * (np.median(ratios) - 1):+.2f}% (median of"
        f" {pairs} tracked/untracked pairs; 95% interval {100 * (low - 1):+.2f}%"
        f" to {100 * (high - 1):+.2f}%); the writer thread's CPU time: {share:.2f}% of"
        " the tracked training time   target <= 1%"
    )


def main(quick: bool = False) -> list[str]:
    torch.set_num_threads(1)
    out = []
    ours, bare, heavy = import_seconds(3 if quick else 7)
    out.append(
        f"import hypertui (+ hypertui.init): {1e3 * (ours - bare):.1f} ms over a bare"
        f" interpreter ({1e3 * ours:.0f} vs {1e3 * bare:.0f} ms, best of runs);"
        f" heavy modules loaded: {heavy}   target <= 50 ms, none"
    )
    with tempfile.TemporaryDirectory() as tmp:
        median, p99 = log_latency(Path(tmp) / "runs.sqlite", 2_000 if quick else 20_000)
        out.append(
            f"run.log of 10 scalars, calling thread: median {1e6 * median:.1f} us,"
            f" p99 {1e6 * p99:.1f} us   target <= 50 us, <= 1000 us"
        )
        delays = visible_after(Path(tmp) / "runs.sqlite", 5 if quick else 20)
        middle = statistics.median(delays)
        out.append(
            f"a point visible to a viewer after run.log: median {1e3 * middle:.0f}"
            f" ms, max {1e3 * max(delays):.0f} ms ({len(delays)} points)   target <= 500 ms"
        )
        out.append(cnn_overhead(Path(tmp) / "c", quick))
    return out


if __name__ == "__main__":
    print("\n".join(main("--quick" in sys.argv)))
