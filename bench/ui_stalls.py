"""UI-thread stalls: first paint, a key in the Presets filter, a key in the Editor; and
the wait before a 10^4-trial sweep trains.

Runs the app headless (Textual's pilot) and times, per key, the handler the key sets off
on the UI thread. First paint is measured in a fresh interpreter, from start to the
Presets list filled (what a user waits for), so imports count. Targets (issue 9): a key
<= 16 ms p95, first paint <= 1.0 s.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time

FIRST_PAINT = """
import time; t0 = time.perf_counter()
import asyncio
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.presets import PresetsScreen
async def main():
    app = HypertuiApp()
    async with app.run_test(size=(100, 34)) as pilot:
        ready = lambda: isinstance(app.screen, PresetsScreen) and app.screen.query_one(
            '#preset-list').option_count
        while not ready():
            await pilot.pause(0.005)
        print(time.perf_counter() - t0)
asyncio.run(main())
"""


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


async def key_costs() -> tuple[list[float], list[float], float]:
    from textual.widgets import Input

    from hypertui.tui.app.app import HypertuiApp
    from hypertui.tui.app.screens.editor import EditorScreen
    from hypertui.tui.app.screens.presets import PresetsScreen

    app = HypertuiApp()
    async with app.run_test(size=(100, 34)) as pilot:
        while not isinstance(app.screen, PresetsScreen):
            await pilot.pause(0.01)
        presets = app.screen
        filter_costs = []
        for text in ["house", "mnist", "grid", "lr", ""] * 4:
            for i in range(1, len(text) + 1):
                t = time.perf_counter()
                presets.fill(text[:i])  # what Input.Changed runs for one key
                filter_costs.append(time.perf_counter() - t)
        from hypertui.engine.sweeps.presets import find_preset

        await app.push_screen(EditorScreen(find_preset("house-study-grid")))
        await pilot.pause(0.2)
        editor = app.screen
        field = editor.query_one("#value-epochs", Input)
        editor_costs = []
        for value in ["1", "12", "123", "12", "1", "10"] * 5:
            t = time.perf_counter()
            editor.on_input_changed(Input.Changed(field, value))  # one key's handler
            editor_costs.append(time.perf_counter() - t)
        t = time.perf_counter()
        editor.validate()  # once typing pauses
        pause_cost = time.perf_counter() - t
    return filter_costs, editor_costs, pause_cost


def main(quick: bool = False) -> list[str]:
    with tempfile.TemporaryDirectory() as home:
        import os

        env = {**os.environ, "HYPERTUI_HOME": home}
        paints = []
        for _ in range(2 if quick else 3):
            done = subprocess.run(
                [sys.executable, "-c", FIRST_PAINT], capture_output=True, text=True, env=env
            )
            paints.append(float(done.stdout.strip().splitlines()[-1]))
        os.environ["HYPERTUI_HOME"] = home
        filter_costs, editor_costs, pause_cost = asyncio.run(key_costs())
    starts, small = [], []  # alternated: the machine's load changes both alike
    for _ in range(1 if quick else 3):
        starts.append(sweep_start())
        small.append(sweep_start(4))
    imports = [torch_import() for _ in range(1 if quick else 3)]
    ms = 1e3
    return [
        f"first paint (fresh interpreter to Presets filled)  best {min(paints):.2f} s "
        f"median {statistics.median(paints):.2f} s   target <= 1.0 s",
        f"Presets filter, one key ({len(filter_costs)} keys)   p95 {p95(filter_costs) * ms:.1f} ms "
        f"max {max(filter_costs) * ms:.1f} ms   target <= 16 ms p95",
        f"Editor key on the 648-trial grid ({len(editor_costs)} keys) p95 "
        f"{p95(editor_costs) * ms:.2f} ms   target <= 16 ms p95",
        f"Editor check once typing pauses (648-trial grid)   {pause_cost * ms:.1f} ms",
        f"a 10^4-trial sweep, `hypertui run` to its first trial started   best "
        f"{min(starts):.2f} s median {statistics.median(starts):.2f} s   target <= 2 s",
        f"  beside it: a 4-trial sweep   best {min(small):.2f} s median "
        f"{statistics.median(small):.2f} s; `python -c 'import torch'` best {min(imports):.2f} s",
    ]


def torch_import() -> float:
    """Seconds a fresh interpreter takes to import torch: the floor of any sweep's start."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - t0


def sweep_start(trials: int = 10_000) -> float:
    """Seconds from `hypertui run` to the first trial's start on stdout, for a sweep of
    `trials` trials (quickstart's 4 points x trials/4 seeds, one epoch): what a user waits
    before anything trains. The sweep is cancelled by closing the pipe."""
    with tempfile.TemporaryDirectory() as home:
        import os

        env = {**os.environ, "HYPERTUI_HOME": home}
        cmd = [sys.executable, "-m", "tui", "run", "quickstart", "--json", "--set", "epochs=1"]
        cmd += ["--seeds", str(trials // 4)]
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        for line in child.stdout:
            if line.startswith('{"event": "started"'):
                break
        took = time.perf_counter() - t0
        child.stdout.close()  # the runner cancels the sweep
        child.wait()
    return took
