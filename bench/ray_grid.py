"""The study's house grid through Ray against the local runner, in one process.

Both train the same sweep (`house-study-grid`, populations on): the local runner trains its
9 populations one after another in this process; Ray trains them as tasks on a local
instance with every CPU of the machine. Ray's start-up (ray.init of a local instance, the
mailbox actor and the first workers importing torch) is timed apart and also included.
Needs the hypertui[ray] extra; not part of `make bench`'s default list for that reason.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep


def _timed_sweep(store: Store, preset, backend=None) -> tuple[float, dict]:
    sweep_id = create_sweep(store, preset)
    t0 = time.perf_counter()
    for _ in run_sweep(store, sweep_id, backend=backend):
        pass
    return time.perf_counter() - t0, store.sweep(sweep_id).counts


def main(quick: bool = False, epochs: int | None = None) -> list[str]:
    import ray

    from hypertui.engine.sweeps.ray.backend import RayBackend

    preset = find_preset("house-study-grid")
    epochs = epochs or (10 if quick else preset.base_config.epochs)
    preset = preset.with_overrides({"epochs": epochs, "device": "cpu"})
    store = Store(Path(tempfile.mkdtemp(prefix="hypertui-raygrid-")) / "runs.sqlite")
    local_s, local_counts = _timed_sweep(store, preset)
    t0 = time.perf_counter()
    ray.init(include_dashboard=False, logging_level=logging.WARNING)
    backend = RayBackend()
    init_s = time.perf_counter() - t0
    ray_s, ray_counts = _timed_sweep(store, preset, backend)
    cpus = int(ray.cluster_resources().get("CPU", 0))
    ray.shutdown()
    label = f"house grid, 648 trials x {epochs} epochs"
    return [
        f"{label:<40} local {local_s:8.1f} s   ray ({cpus} CPUs) {ray_s:8.1f} s"
        f"   ratio {ray_s / local_s:5.2f}   ray.init {init_s:5.1f} s"
        f"   ray + init ratio {(ray_s + init_s) / local_s:5.2f}   target <= 1.10",
        f"{'':<40} counts local {local_counts} ray {ray_counts}",
    ]


if __name__ == "__main__":
    import sys

    from bench.common import machine

    print(machine())
    args = [a for a in sys.argv[1:] if a.isdigit()]
    for text in main(quick="--quick" in sys.argv, epochs=int(args[0]) if args else None):
        print(text, flush=True)
