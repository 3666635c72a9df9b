"""At 80 columns ids, statuses and numbers are shown whole: `runs SWEEP` and History."""

from __future__ import annotations

import math

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished, RunStarted
from hypertui.engine.store.store import Store
from hypertui.tui.cli.main import main

SWEEP = "9a1d0001"
SWEPT = ["activation", "optimizer", "lr", "batch_size", "hidden"]
# (run id, status, val_mse): a study grid's runs, ids as long as real ones (12 hex digits)
RUNS = [
    ("c023a9f1e7b2", "finished", 0.0815432),
    ("d41be07c93aa", "diverged", math.nan),
    ("e5f60718293a", "finished", 1234.56789),
    ("f00dfeed4242", "failed", None),
    ("0a1b2c3d4e5f", "pending", None),
]


def study_grid_store(path) -> Store:
    store = Store(path)
    trials = []
    for i, (run_id, *_) in enumerate(RUNS):
        point = {
            "activation": "sigmoid",
            "optimizer": "rmsprop",
            "lr": (0.001, 2.0, 0.1, 0.01, 0.0001)[i],
            "batch_size": 200,
            "hidden": [10, 10, 10, 10],
        }
        config = make_config(**point, seed=i % 2).to_dict()
        trials.append((run_id, i, i % 2, config, point))
    desc = "House prices: the study's whole grid"
    store.create_sweep(SWEEP, "house-optimizer-activation", "house", desc, SWEPT, trials)
    store.claim_sweep(SWEEP)
    for (run_id, status, value), trial in zip(RUNS, trials, strict=True):
        if status == "pending":
            continue
        store.run_started(RunStarted(run_id, trial[3], "cpu", "CPU", 381, {}))
        if status == "failed":
            store.run_failed(run_id, "a reason")
            continue
        store.run_ended(
            Finished(run_id, status, epochs_done=200, steps=41000, samples=410000,
                     elapsed_s=12.3, wall_s=13.456, final={"val_mse": value},
                     best={"val_mse": value}, best_epoch=200, test={}, reason="")
        )  # fmt: skip
    store.end_sweep(SWEEP, "incomplete")
    return store


def test_runs_at_80_columns_cuts_no_id_status_or_number(tmp_path, capsys, monkeypatch):
    path = tmp_path / "runs.sqlite"
    study_grid_store(path).close()
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--store", str(path), "runs", SWEEP]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    lines = out.splitlines()
    listing = "\n".join(lines[: [line.strip() for line in lines].index("")])  # per-run table
    assert "…" not in listing
    rows = {line.split()[1]: line for line in listing.splitlines() if line[:3].strip().isdigit()}
    assert sorted(rows) == sorted(run_id for run_id, *_ in RUNS)  # whole ids
    for run_id, status, _ in RUNS:
        assert f" {status} " in rows[run_id] + " "
    assert "0.08154" in rows["c023a9f1e7b2"] and "1235" in rows["e5f60718293a"]
    assert "200" in rows["c023a9f1e7b2"]  # epochs, whole


async def test_history_at_80x24_shows_the_best_value_whole(tmp_path):
    from hypertui.tui.app.app import HypertuiApp
    from hypertui.tui.app.screens.history import HistoryScreen

    path = tmp_path / "runs.sqlite"
    study_grid_store(path).close()
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(HistoryScreen(path))
        await pilot.pause()
        await app.workers.wait_for_complete()  # the best column fills in a worker
        await pilot.pause()
        screen = "\n".join(s.text for s in app.screen._compositor.render_strips())
        row = next(line for line in screen.splitlines() if SWEEP in line)
        assert "house-optimizer-activation" in row
        assert "val_mse 0.08154" in row, screen  # the best group's mean, whole
        assert "incomplete" in row
