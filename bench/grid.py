"""The study's full house grid end to end through `hypertui run house-study-grid`.

648 trials (3 activations x 4 learning rates x 3 optimizers x 3 batch sizes x 3 depths x
2 seeds), 200 epochs each. hypertui's figure is the wall time of the command (populations
on by default). Training the same steps one model at a time is far too long to run here,
so the bare figure is a projection: every trial's steps times the bare loop's per-step
time for that batch size, measured in this run (evaluation not even counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from bench.overhead import bare_loop
from hypertui.engine.sweeps.presets import find_preset


def main(quick: bool = False) -> list[str]:
    preset = find_preset("house-study-grid")
    if quick:
        preset = preset.with_overrides({"epochs": 10})
    trials = preset.expand()
    per_step = {}
    for bs in sorted({t.config.batch_size for t in trials}):
        config = trials[0].config.replace(batch_size=bs, epochs=1, device="cpu")
        seconds, steps = bare_loop(config, 1)
        per_step[bs] = seconds / steps
    projected = sum(
        -(-2050 // t.config.batch_size) * t.config.epochs * per_step[t.config.batch_size]
        for t in trials
    )
    home = tempfile.mkdtemp(prefix="hypertui-grid-")
    cmd = [
        sys.executable,
        "-m",
        "hypertui",
        "run",
        "house-study-grid",
        "--json",
        "--store",
        f"{home}/runs.sqlite",
    ] + (["--set", "epochs=10"] if quick else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - t0
    summary = json.loads(done.stdout.splitlines()[-1])
    label = f"house grid, {len(trials)} trials x {preset.base_config.epochs} epochs"
    return [
        f"{label:<44} hypertui {wall:9.1f} s   one-at-a-time (projected) {projected:9.1f} s"
        f"  speed-up {projected / wall:6.1f}x   counts {summary['counts']}"
        f"   target <= 600 s on CPU"
    ]
