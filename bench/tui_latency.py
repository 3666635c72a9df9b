"""The TUI under load: key-press latency and training speed against headless.

Runs the real app in tmux (a real terminal), resumes a prepared sweep of the house 4x10
MLP at batch 10 from History, and while it trains presses `l` (log y) and polls
the pane's output (streamed by `tmux pipe-pane`, read every millisecond without spawning
anything) until the chart's "(log scale)" label is drawn: the time from key press to what the
terminal receives. Keys are pressed during trial 1 only. Trial 2 trains with
the TUI drawing and nobody typing, as a user mostly watches; its training seconds per
step are compared with the same trial of the same sweep run headless.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep

PRESET = """
description = "latency benchmark: the house 4x10 MLP at batch 10"
[config]
problem = "house"
hidden = [10, 10, 10, 10]
batch_size = 10
optimizer = "rmsprop"
lr = 0.001
[sweep]
# Epochs differ, so the two trials cannot share a population: one trains after the other.
epochs = [{epochs}, {epochs_2}]
"""
SESSION = "hypertui-bench"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def wait_screen(text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in screen():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the TUI never showed {text!r}:\n{screen()}")
        time.sleep(0.05)


def per_step(store: Store, sweep_id: str, trial: int) -> float:
    run = store.runs(sweep_id)[trial]
    return run.elapsed_s / run.steps


def main(quick: bool = False) -> list[str]:
    if not shutil.which("tmux"):
        return ["tui: skipped (tmux is not installed)"]
    home = Path(tempfile.mkdtemp(prefix="hypertui-bench-"))
    epochs = 40 if quick else 200  # trial 1 trains ~30 s: about 70 key presses
    text = PRESET.format(epochs=epochs, epochs_2=epochs + 1)
    preset = parse_preset(text, "latency.toml")
    (home / "latency.toml").write_text(text)
    env = {**os.environ, "HYPERTUI_HOME": str(home)}
    exe = [sys.executable, "-m", "tui"]

    # the TUI: resume the prepared sweep from History, press keys while it trains
    store = Store(home / "tui.sqlite")
    sweep_id = create_sweep(store, preset)
    store.end_sweep(sweep_id, "interrupted")
    command = " ".join([*exe, "--store", str(home / "tui.sqlite")])
    tmux("kill-session", "-t", SESSION)
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            SESSION,
            f"cd {Path.cwd()} && HYPERTUI_HOME={home} {command}",
        ],
        check=True,
        env=env,
    )
    latencies = []
    try:
        wait_screen("presets")
        tmux("send-keys", "-t", SESSION, "F2")
        wait_screen("history")
        tmux("send-keys", "-t", SESSION, "r")
        wait_screen("trial 1 ")
        time.sleep(1.0)
        stream = home / "pane.out"
        tmux("pipe-pane", "-t", SESSION, "-o", f"cat >> {stream}")
        first = store.runs(sweep_id)[0].id
        with open(stream, "ab+") as out:
            while store.run(first).status == "running" and len(latencies) < 300:
                out.seek(0, 2)
                t0 = time.perf_counter()
                tmux("send-keys", "-t", SESSION, "l")  # log y on: "(log scale)" is drawn
                seen = b""
                while b"(log scale)" not in seen and time.perf_counter() - t0 < 5:
                    seen = seen[-16:] + out.read()
                    time.sleep(0.001)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.2)
                tmux("send-keys", "-t", SESSION, "l")  # and off again, not timed
                time.sleep(0.2)
        while store.sweep(sweep_id).status == "running":
            time.sleep(0.2)
    finally:
        tmux("kill-session", "-t", SESSION)
    tui_step = per_step(store, sweep_id, trial=1)  # trial 2 ran with nobody pressing keys

    # headless: the same sweep through `hypertui run --json`
    done = subprocess.run(
        [
            *exe,
            "run",
            str(home / "latency.toml"),
            "--json",
            "--store",
            str(home / "headless.sqlite"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    headless_id = json.loads(done.stdout.splitlines()[-1])["sweep_id"]
    headless_step = per_step(Store(home / "headless.sqlite"), headless_id, trial=1)

    if not latencies:
        return ["tui: no key press was measured (the first trial ended before the TUI showed it)"]
    latencies.sort()
    if os.environ.get("HYPERTUI_BENCH_VERBOSE"):
        print("latencies ms:", [round(x * 1e3) for x in latencies], file=sys.stderr)
    p50 = statistics.median(latencies)
    p90, p99 = (latencies[min(len(latencies) - 1, int(q * len(latencies)))] for q in (0.9, 0.99))
    speed = headless_step / tui_step
    return [
        f"{'TUI key press to screen (tmux, during training)':<44} p50 {p50 * 1e3:7.1f} ms   "
        f"p90 {p90 * 1e3:7.1f} ms   p99 {p99 * 1e3:7.1f} ms   n={len(latencies)}   "
        "target p99 <= 100 ms",
        f"{'TUI vs headless, per training step':<44} TUI {tui_step * 1e3:7.3f} ms  headless "
        f"{headless_step * 1e3:7.3f} ms  speed {speed:6.3f}   target >= 0.9",
    ]
