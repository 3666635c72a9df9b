"""`--jobs 2` against one unit at a time: the study's house grid through `hypertui run`.

`house-study-grid` is 9 populations of 72 (648 trials x 200 epochs). Both commands run
here, one after the other, in fresh stores; each unit trains on one torch thread either
way (a population of this MLP is tiny), so the figure is what a second process buys on
a 2-core machine without Ray. The two sweeps' results must be the same, run for run.
Target (issue 24): --jobs 2 <= 80 s where one at a time takes 140 s, i.e. <= 0.57x.
--quick: 10 epochs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def grid(jobs: int, quick: bool) -> tuple[float, dict, dict]:
    home = tempfile.mkdtemp(prefix="hypertui-jobs-")
    store = f"{home}/runs.sqlite"
    cmd = [sys.executable, "-m", "hypertui", "run", "house-study-grid", "--json"]
    cmd += ["--jobs", str(jobs), "--store", store] + (["--set", "epochs=10"] if quick else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"--jobs {jobs} failed: {done.stderr[-2000:]}")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    finals = {r["trial"]: r.get("final") for r in lines if r.get("event") == "finished"}
    return wall, lines[-1]["counts"], finals


def main(quick: bool = False) -> list[str]:
    one, counts_one, finals_one = grid(1, quick)
    two, counts_two, finals_two = grid(2, quick)
    same = finals_one == finals_two and counts_one == counts_two
    epochs = 10 if quick else 200
    return [
        f"house grid, 648 trials x {epochs} epochs: --jobs 1 {one:7.1f} s   --jobs 2 {two:7.1f} s"
        f"   ratio {two / one:.2f}x (target <= 0.57x: 80 s where one takes 140 s)",
        f"  counts {counts_two}; the same results run for run: {same}",
    ]
