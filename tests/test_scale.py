"""A large sweep is listed in time linear in its size: `hypertui runs SWEEP` on 20,000 runs
(10,000 points x 2 seeds) did not finish in 120 s.

Measured by what does not depend on the machine's speed: the memory the comparison against
the best takes, and the SQL statements a listing runs, each at two sizes."""

from __future__ import annotations

import random
import tracemalloc

from hypertui.engine.analysis.significance import against_best
from hypertui.engine.core.config import make_config
from hypertui.engine.store.store import Store
from hypertui.tui.cli.main import main

SWEEP = "5ca1e001"


def peak_bytes(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def seeded_groups(k: int) -> list[dict[int, float]]:
    """k groups of 2 seeds each, as a random search of k points leaves them."""
    rng = random.Random(0)
    return [{0: rng.random(), 1: rng.random()} for _ in range(k)]


def test_the_comparison_against_the_best_grows_linearly_with_the_groups():
    # Every pair of groups tested (a k x k matrix of p-values, k x k x seeds differences)
    # took 43 s and 256 MB for 4,000 groups: 16 times the memory of 1,000, not 4.
    small = peak_bytes(lambda: against_best(seeded_groups(500)))
    large = peak_bytes(lambda: against_best(seeded_groups(2000)))
    assert large < 8 * small, (small, large)


def finished_sweep(path, points: int) -> None:
    """A finished sweep of `points` learning rates x 2 seeds, written straight to SQL."""
    store = Store(path)
    trials = []
    for i in range(2 * points):
        lr, seed = 1e-4 * (1 + i // 2), i % 2
        config = make_config(lr=lr, seed=seed, epochs=2).to_dict()
        trials.append((f"5ca1r{i:05d}", i, seed, config, {"lr": lr}))
    store.create_sweep(SWEEP, "scale", "house", "", ["lr"], trials)
    store.db.execute(
        "UPDATE runs SET status='finished', epochs_done=2, wall_s=1.0, test='{}',"
        " final=json_object('val_mse', 0.1 + (idx % 97) * 0.001),"
        " best=json_object('val_mse', 0.1 + (idx % 89) * 0.001)"
    )
    store.db.execute("UPDATE sweeps SET status='done'")
    store.close()


def statements_run(argv: list[str], monkeypatch) -> list[str]:
    seen: list[str] = []
    connect = Store._connect

    def traced(self, lock_wait_s):
        db = connect(self, lock_wait_s)
        db.set_trace_callback(seen.append)
        return db

    monkeypatch.setattr(Store, "_connect", traced)
    assert main(argv) == 0
    monkeypatch.setattr(Store, "_connect", connect)
    return seen


def test_listing_a_sweep_runs_as_many_statements_at_any_size(tmp_path, monkeypatch, capsys):
    counts = []
    for points in (5, 50):
        path = tmp_path / f"{points}.sqlite"
        finished_sweep(path, points)
        counts.append(len(statements_run(["--store", str(path), "runs", SWEEP], monkeypatch)))
    capsys.readouterr()
    assert counts[0] == counts[1], counts
