"""Viewers that follow the store: attach time, poll cost, and a detached runner's speed.

- attach: the app opened on a running sweep of a store holding 700 runs (a 648-trial
  grid of 200 epochs each, 130k curve points, plus other sweeps), to the first full paint
  of the Live screen (every trial's curve replayed, charts drawn). Target <= 1 s.
- poll: one follower poll at that size with nothing new (what the worker thread pays
  every 0.25 s), and the UI thread's handling of one typical update (a report of 72
  members). Target <= 5 ms on the UI thread.
- detached: the same sweep trained by `hypertui run` in the foreground and by a detached
  runner (`run --detach`), alternated; ratio of sweep wall times. Target >= 0.95.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished, Progress, RunStarted, SweepEvent
from hypertui.engine.store.follow import Follower
from hypertui.engine.store.store import Store

ROOT = Path(__file__).resolve().parents[1]
METRICS = {"val_loss": 0.1, "val_mse": 0.1}


def grid_store(path: Path, n_runs: int = 648, epochs: int = 200) -> str:
    """A store like the study grid's: n_runs trials with full curves, plus 52 other runs."""
    store = Store(path)
    config = make_config(epochs=epochs).to_dict()
    sizes = {"train": 2050, "val": 439, "test": 440}
    for sweep_id, n in (("0ther0001", 52), ("9r1d0001", n_runs)):
        trials = [
            (f"{sweep_id[:4]}{i:04d}", i, i % 3, config, {"lr": 10.0 ** -(i % 4), "k": i // 4})
            for i in range(n)
        ]
        store.create_sweep(sweep_id, "grid", "house", "", ["lr", "k"], trials)
        store.claim_sweep(sweep_id)  # "running" in this process, heartbeat fresh
        for run_id, *_ in trials:
            store.run_started(RunStarted(run_id, config, "cpu", "CPU (1 thread)", 381, sizes))
        batch = []
        for epoch in range(1, epochs + 1):
            for run_id, *_ in trials:
                metrics = {"val_loss": 0.1 + 1 / epoch, "val_mse": 0.1 + 1 / epoch}
                batch.append(
                    Progress(run_id, epoch, epoch * 9, epoch * 2050, 0.01 * epoch, 0.2, metrics)
                )
        store.add_points(batch)
        for run_id, *_ in trials[: n // 2]:  # half finished, half still training
            final = {"val_mse": 0.105, "val_loss": 0.105}
            store.run_ended(
                Finished(run_id, "finished", epochs, 1800, 410000, 2.0, 2.5, final, final, 5, {})
            )
    store.close()
    return "9r1d0001"


def attach_time(path: Path, sweep_id: str) -> float:
    """`hypertui attach SWEEP_ID`: app start to the Live screen's first full paint."""
    from hypertui.tui.app.app import HypertuiApp
    from hypertui.tui.app.screens.live import LiveScreen
    from hypertui.tui.app.widgets.chart import Chart

    async def run() -> float:
        t0 = time.perf_counter()
        app = HypertuiApp(store_path=path, attach=sweep_id)
        async with app.run_test(size=(120, 40)) as pilot:
            while not (
                isinstance(app.screen, LiveScreen)
                and app.screen.current
                and app.screen.query_one("#chart-all", Chart).lines
            ):
                await pilot.pause(0.005)
            await pilot.pause()  # that frame out
            return time.perf_counter() - t0

    return asyncio.run(run())


def poll_costs(path: Path, sweep_id: str) -> tuple[float, float]:
    """(seconds per idle follower poll, seconds of UI work for a 72-member report)."""
    store = Store(path, create=False)
    follower = Follower(store, sweep_id)
    follower.poll()
    t0 = time.perf_counter()
    for _ in range(50):
        follower.poll()
    idle = (time.perf_counter() - t0) / 50

    from hypertui.tui.app.curves import Curve
    from hypertui.tui.app.screens.live import LiveScreen, TrialView

    class Probe(LiveScreen):  # the screen's own event handling, without a terminal
        def log_line(self, text: str) -> None:
            pass

    probe = Probe(path, sweep_id)
    probe.metric = "val_mse"
    probe.trials = {
        t.id: TrialView(t.idx, t.id, t.point, t.seed, "running", "red", "", Curve(), 2050)
        for t in follower.trials()
    }
    items = [
        SweepEvent(sweep_id, view.index, 648, Progress(r, 201, 0, 411_000, 2.0, 0.2, METRICS))
        for r, view in list(probe.trials.items())[-72:]
    ]
    t0 = time.perf_counter()
    for _ in range(20):
        for item in items:
            probe.take_event(item, log=False)
    handle = (time.perf_counter() - t0) / 20
    return idle, handle


def sweep_seconds(store_path: Path, sweep_id: str) -> float:
    store = Store(store_path, create=False)
    sweep = store.sweep(sweep_id)
    store.close()
    return sweep.updated_at - sweep.runner_started


def detached_ratio(repeats: int, epochs: int) -> tuple[float, float]:
    """Best foreground and best detached sweep wall time for quickstart at `epochs`."""
    fore, back = [], []
    with tempfile.TemporaryDirectory() as tmp:
        store_path = Path(tmp) / "runs.sqlite"
        cmd = [sys.executable, "-m", "tui", "--store", str(store_path), "run", "quickstart"]
        cmd += ["--set", f"epochs={epochs}"]
        for _ in range(repeats):
            done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, cwd=ROOT)
            sweep_id = json.loads(done.stdout.splitlines()[-1])["sweep_id"]
            fore.append(sweep_seconds(store_path, sweep_id))
            said = subprocess.run(cmd + ["--detach"], capture_output=True, text=True, cwd=ROOT)
            sweep_id = said.stdout.split()[1]
            store = Store(store_path, create=False)
            while store.sweep(sweep_id).status in ("pending", "running"):
                time.sleep(0.2)
            store.close()
            back.append(sweep_seconds(store_path, sweep_id))
    return min(fore), min(back)


def main(quick: bool = False) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.sqlite"
        t0 = time.perf_counter()
        sweep_id = grid_store(path, n_runs=72 if quick else 648)
        built = time.perf_counter() - t0
        store = Store(path, create=False)
        n_runs = sum(s.n_runs for s in store.sweeps())
        n_points = store.db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
        store.close()
        lines.append(f"store: {n_runs} runs, {n_points} curve points (built in {built:.1f} s)")
        first = min(attach_time(path, sweep_id) for _ in range(3))
        lines.append(f"{'attach: first full paint of Live':<44} {first:8.3f} s   target <= 1 s")
        idle, handle = poll_costs(path, sweep_id)
        lines.append(f"{'poll with nothing new (worker thread)':<44} {idle * 1e3:8.2f} ms")
        lines.append(
            f"{'UI thread: one 72-member report':<44} {handle * 1e3:8.2f} ms  target <= 5 ms"
        )
    fore, back = detached_ratio(repeats=1 if quick else 3, epochs=20 if quick else 300)
    lines.append(
        f"{'detached vs foreground sweep (quickstart)':<44} fore {fore:7.2f} s  detached "
        f"{back:7.2f} s  speed ratio {fore / back:6.3f}  target >= 0.95"
    )
    return lines
