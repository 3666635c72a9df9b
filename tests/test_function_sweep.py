"""Sweeping your own training function (`train = "module:function"` in a preset): each
trial calls it in a process of its own; how it ends is how the trial ends."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import load_preset_file, parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.tui.cli.main import main as cli

# One module, a behaviour per value of `how`: each trial of the sweep meets one of them.
MODULE = """
import math, os, sys, time

print("hello from the user's module")  # must never reach stdout

def main(config, run):
    how = config["how"]
    if how == "raise":
        raise RuntimeError("the loader broke")
    if how == "exit":
        sys.exit(3)
    if how == "os_exit":
        os._exit(1)
    if how == "quiet":
        return None
    if how == "returns":
        return 0.75  # airbench's main() returns its accuracy
    if how == "quality":  # for halving: a trial's whole curve scales with its quality
        for epoch in range(config["epochs"]):
            run.log({"val_acc": config["quality"] * (epoch + 1) / 10}, epoch=epoch)
        return None
    for epoch in range(config["epochs"]):
        acc = 0.5 + config["lr"] * epoch + 0.001 * config["seed"]
        if how == "nan" and epoch == 1:
            acc = math.nan
        run.log({"train_loss": 1.0 / (epoch + 1), "val_acc": acc,
                 "saw_train": float("train" in config), "seed_seen": config["seed"]},
                epoch=epoch)
        if how == "slow":
            time.sleep(0.2)
"""

PRESET = """
name = "fn"
description = "your own function"
seeds = {seeds}
[config]
train = "userfn:main"
metric = "val_acc"
epochs = 3
lr = 0.1
how = "log"
[sweep]
{sweep}
"""


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "userfn.py").write_text(textwrap.dedent(MODULE))
    yield tmp_path
    sys.modules.pop("userfn", None)


def write_preset(folder: Path, sweep: str, seeds: int = 1) -> Path:
    path = folder / "fn.toml"
    path.write_text(PRESET.format(seeds=seeds, sweep=sweep))
    return path


def test_a_grid_over_seeds_calls_the_function_per_trial_and_ranks_by_its_metric(
    folder, tmp_path, capfd
):
    preset = load_preset_file(write_preset(folder, "lr = [0.1, 0.2]", seeds=2))
    assert preset.problem == "function" and preset.n_trials == 4
    assert preset.import_dir == str(folder)  # its module is imported from there
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, preset)
    list(run_sweep(store, sweep_id))
    sweep = store.sweep(sweep_id)
    assert sweep.status == "done" and sweep.options["metric"] == "val_acc"
    runs = store.runs(sweep_id)
    assert [r.status for r in runs] == ["finished"] * 4
    assert [(r.point, r.seed) for r in runs] == [
        ({"lr": 0.1}, 0), ({"lr": 0.1}, 1), ({"lr": 0.2}, 0), ({"lr": 0.2}, 1),
    ]  # fmt: skip
    r = runs[3]
    assert r.final["seed_seen"] == 1 and r.final["saw_train"] == 0.0  # ours are not its
    assert r.final["val_acc"] == pytest.approx(0.5 + 0.2 * 2 + 0.001)
    assert r.best_epoch == 2 and r.epochs_done == 3
    assert [p["epoch"] for p in store.points(r.id)] == [0, 1, 2]

    from hypertui.engine.analysis.compare import compare_sweep

    comp = compare_sweep(sweep, runs)
    assert comp.main == "val_acc" and comp.higher_is_better
    assert [g.point for g in comp.groups] == [{"lr": 0.2}, {"lr": 0.1}]
    assert "hello from" not in capfd.readouterr().out  # stdout is the --json stream


def test_whatever_the_function_does_is_its_trial_and_the_sweep_goes_on(folder, tmp_path):
    how = '["raise", "exit", "os_exit", "quiet", "returns", "nan", "log"]'
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, load_preset_file(write_preset(folder, f"how = {how}")))
    list(run_sweep(store, sweep_id))
    runs = {r.point["how"]: r for r in store.runs(sweep_id)}
    assert {k: r.status for k, r in runs.items()} == {
        "raise": "failed", "exit": "failed", "os_exit": "failed", "quiet": "failed",
        "returns": "finished", "nan": "diverged", "log": "finished",
    }  # fmt: skip
    assert runs["raise"].reason.startswith("RuntimeError: the loader broke")
    assert "sys.exit(3)" in runs["exit"].reason
    assert "exit code 1" in runs["os_exit"].reason
    assert "returned without logging a metric" in runs["quiet"].reason
    assert runs["returns"].final == {"val_acc": 0.75}
    assert store.sweep(sweep_id).status == "done"


def test_a_skip_stops_one_trial_through_run_log_and_a_cancel_the_sweep(folder, tmp_path):
    store = Store(tmp_path / "s.sqlite")
    text = (
        PRESET.format(seeds=1, sweep="lr = [0.1, 0.2, 0.3]")
        .replace('how = "log"', 'how = "slow"')
        .replace("epochs = 3", "epochs = 200")
    )
    (folder / "slow.toml").write_text(text)
    sweep_id = create_sweep(store, load_preset_file(folder / "slow.toml"))
    ids = [r.id for r in store.runs(sweep_id)]
    controls = Controls()

    def steer() -> None:
        viewer = Store(tmp_path / "s.sqlite")
        for target in ids[:2]:
            while not viewer.points(target):
                time.sleep(0.05)
            if target == ids[0]:
                controls.skip_runs.add(ids[0])  # as the runner's watch thread does
            else:
                controls.cancel()

    threading.Thread(target=steer, daemon=True).start()
    list(run_sweep(store, sweep_id, controls))
    runs = store.runs(sweep_id)
    assert [r.status for r in runs] == ["cancelled", "cancelled", "pending"]
    assert runs[0].reason == "skipped" and len(store.points(ids[0])) < 200
    assert store.sweep(sweep_id).status == "cancelled"


def test_a_function_preset_refuses_what_it_cannot_call_or_store(folder):
    def refused(config: str, sweep: str = "") -> str:
        text = f'description = "d"\n[config]\n{config}\n[sweep]\n{sweep}\n'
        with pytest.raises(ConfigError) as info:
            parse_preset(text, "p.toml")
        return str(info.value)

    assert "module:function" in refused('train = "userfn.main"')
    assert "plain" in refused('train = "userfn:main"\nwhen = 1979-05-27')
    assert "plain" in refused('train = "userfn:main"\nopts = { a = 1 }')
    assert "'min' or 'max'" in refused('train = "userfn:main"\nmode = "up"')
    assert "seeds = N" in refused('train = "userfn:main"', "seed = [0, 1]")
    assert "needs trials" in refused('train = "userfn:main"', "lr = { log_uniform = [1e-4, 1e-2] }")
    assert "low < high" in refused('train = "userfn:main"', "lr = { uniform = [1, 0] }")


def test_the_command_line_checks_the_function_before_a_sweep_exists(folder, tmp_path, capsys):
    store = tmp_path / "s.sqlite"
    path = write_preset(folder, "lr = [0.1, 0.2]")
    path.write_text(path.read_text().replace("userfn:main", "userfn:mian"))
    assert cli(["run", str(path), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "train = 'userfn:mian': module 'userfn' has no 'mian'" in err
    assert "Traceback" not in err
    assert not Store(store).sweeps()  # nothing left behind
    path.write_text(path.read_text().replace("userfn:mian", "userfn:main"))
    code = cli(["run", str(path), "--store", str(store), "--set", "epochs=2", "--set", "how=log"])
    assert code == 0
    (sweep,) = Store(store).sweeps()
    assert [r.final["val_acc"] for r in Store(store).runs(sweep.id)] == [0.6, 0.7]


async def test_a_function_preset_runs_from_the_presets_screen(folder, tmp_path, monkeypatch):
    from hypertui.engine.core.paths import user_presets_dir
    from hypertui.tui.app.app import HypertuiApp
    from hypertui.tui.app.screens.live import LiveScreen
    from tests.test_tui import SIZE, wait_for

    presets = user_presets_dir()
    presets.mkdir(parents=True)
    (presets / "userfn.py").write_text((folder / "userfn.py").read_text())
    (presets / "fn.toml").write_text(PRESET.format(seeds=1, sweep="lr = [0.1, 0.2]"))
    app = HypertuiApp(store_path=tmp_path / "s.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"fn", "enter")
        await wait_for(
            pilot, lambda: "Run fn: 2 trials" in str(app.screen.query_one("#question").render())
        )
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        live = app.screen
        await wait_for(pilot, lambda: live.ended)
        assert live.metric == "val_acc" and len(live.trials) == 2
        assert all(v.status == "finished" for v in live.trials.values())


def test_halving_stops_a_trial_outside_the_best_third_at_a_rung_with_pruned(folder, tmp_path):
    text = PRESET.format(seeds=1, sweep="quality = [0.5, 1.0, 0.6, 0.9]")
    text = text.replace('how = "log"', 'how = "quality"\nprune = "halving"\nquality = 1.0')
    (folder / "halving.toml").write_text(text.replace("epochs = 3", "epochs = 9"))
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, load_preset_file(folder / "halving.toml"))
    list(run_sweep(store, sweep_id))
    runs = store.runs(sweep_id)
    # asynchronous: each trial meets the ones before it at epoch 1 (then 3): the first two
    # lead their rungs; 0.6 and 0.9 are not the best of 3 and 4 (3 // 3 = 1 goes on)
    assert [r.status for r in runs] == ["finished", "finished", "pruned", "pruned"]
    assert "pruned by halving after epoch 1" in runs[2].reason
    assert [len(store.points(r.id)) for r in runs] == [9, 9, 1, 1]  # curves kept
