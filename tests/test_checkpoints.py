"""Checkpoints (engine/training/checkpoint.py): the best weights kept, a run resumed from
its last checkpoint bit for bit, and bad files that never stop a run."""

from __future__ import annotations

import pytest
import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished, Progress, RunStarted
from hypertui.engine.training import checkpoint
from hypertui.engine.training.models import build_model
from hypertui.engine.training.train import run


@pytest.fixture(autouse=True)
def every_checkpoint_due(monkeypatch):
    """Checkpoints as save_every says, whatever a write costs on this machine (the cost
    guard has its own test)."""
    monkeypatch.setattr(checkpoint, "COST_FACTOR", 0)


CONFIG = dict(problem="house", hidden=[8], batch_size=64, lr=0.01, optimizer="adam", epochs=7)


def weights_of(events_and_model):
    return {k: v.clone() for k, v in events_and_model.state_dict().items()}


def train(config, folder, stop_after: int | None = None):
    """Events and final weights of a run; with `stop_after`, cancelled once that epoch's
    full report is out (as a kill would leave it, less the process)."""
    seen: list[int] = []
    models = []
    events = []
    stop = lambda: stop_after is not None and bool(seen) and seen[-1] >= stop_after  # noqa: E731
    for e in run(config, should_stop=stop, checkpoints=folder, inspect=models.append):
        events.append(e)
        if isinstance(e, Progress) and e.end_of_epoch:
            seen.append(e.epoch)
    return events, weights_of(models[0])


def curve(events):
    return [
        (e.epoch, e.step, e.samples, e.train_loss, e.metrics)
        for e in events
        if isinstance(e, Progress)
    ]


def test_a_run_resumed_from_its_checkpoint_ends_bit_for_bit_where_the_whole_run_ends(tmp_path):
    config = make_config(**CONFIG, save_every=2)
    whole, whole_weights = train(config, tmp_path / "whole")
    cut, _ = train(config, tmp_path / "cut", stop_after=5)
    assert cut[-1].status == "cancelled"
    assert (tmp_path / "cut" / "last.safetensors").exists()  # kept for the resume
    saved_wall_s = checkpoint.read(tmp_path / "cut" / "last.safetensors")[1]["wall_s"]
    resumed, resumed_weights = train(config, tmp_path / "cut")
    assert resumed[-1].wall_s >= saved_wall_s  # the wall time goes on, as training time does
    started = resumed[0]
    assert isinstance(started, RunStarted)
    assert "resumed from its checkpoint after epoch 4" in started.notes
    assert curve(resumed) == curve(whole)  # the curve so far, then the rest, the same
    a, b = whole[-1], resumed[-1]
    assert isinstance(b, Finished) and b.status == "finished"
    assert (a.final, a.best, a.best_epoch, a.test, a.steps, a.samples) == (
        b.final, b.best, b.best_epoch, b.test, b.steps, b.samples
    )  # fmt: skip
    assert all(torch.equal(whole_weights[k], resumed_weights[k]) for k in whole_weights)
    # a finished run keeps its best weights only (keep = "best")
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["best.safetensors"]


def test_the_best_weights_load_into_the_model_and_give_the_test_metric(tmp_path):
    config = make_config(**CONFIG)
    events, _ = train(config, tmp_path)
    done = events[-1]
    tensors, meta = checkpoint.read(tmp_path / "best.safetensors")
    assert meta["epoch"] == done.best_epoch and meta["config"] == config.to_dict()
    model = build_model(config)
    model.load_state_dict(tensors)
    assert meta["test"] == done.test


def test_a_damaged_or_foreign_checkpoint_is_a_note_and_the_run_starts_over(tmp_path):
    config = make_config(**CONFIG, save_every=2)
    whole, whole_weights = train(config, tmp_path / "whole")
    for name, damage in [
        ("truncated", lambda p: p.write_bytes(p.read_bytes()[:100])),
        ("foreign", lambda p: p.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")),
        ("missing", lambda p: None),
    ]:
        folder = tmp_path / name
        train(config, folder, stop_after=3)
        damage(folder / "last.safetensors")
        events, weights = train(config, folder)
        assert events[-1].status == "finished", name
        assert curve(events) == curve(whole), name  # from the start, as the whole run
        assert all(torch.equal(whole_weights[k], weights[k]) for k in weights), name
        if name != "missing":
            assert any(
                "not resumed" in n and "trained from the start" in n for n in events[-1].notes
            )


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path):
    train(make_config(**CONFIG, save_every=1), tmp_path, stop_after=2)
    events, _ = train(make_config(**{**CONFIG, "lr": 0.02}, save_every=1), tmp_path)
    assert events[0].notes == () or not any("resumed from" in n for n in events[0].notes)
    assert "not resumed: its last checkpoint is of another config" in events[-1].notes
    assert len(curve(events)) == CONFIG["epochs"]


def test_keep_says_what_a_finished_run_keeps(tmp_path):
    for keep, files in [
        ("best", ["best.safetensors"]),
        ("best+last", ["best.safetensors", "last.safetensors"]),
        ("none", []),
    ]:
        folder = tmp_path / keep.replace("+", "_")
        train(make_config(**CONFIG, keep=keep, save_every=1), folder)
        kept = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        assert kept == files, keep


def test_the_sweeps_disk_budget_stops_checkpoints_with_a_note_not_the_run(tmp_path):
    wide = {**CONFIG, "hidden": [64, 64]}  # 4,481 weights: 18 kB a copy
    config = make_config(**wide, save_every=1, disk_budget_mb=0.01)
    events, _ = train(config, tmp_path / "sweep" / "run")
    done = events[-1]
    assert done.status == "finished" and done.test
    assert any("budget of 0.01 MB" in n for n in done.notes)
    assert not (tmp_path / "sweep" / "run" / "best.safetensors").exists()


def test_a_full_disk_is_a_note_and_training_goes_on(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", full)
    events, _ = train(make_config(**CONFIG, save_every=1), tmp_path)
    done = events[-1]
    assert done.status == "finished" and len(curve(events)) == CONFIG["epochs"]
    assert any("not written: No space left on device" in n for n in done.notes)
    assert not list(tmp_path.glob("*"))  # no temporary file left behind


SWEEP = """
description = "resume"
[config]
problem = "house"
hidden = [8]
batch_size = 64
optimizer = "adam"
epochs = 6
save_every = 2
[sweep]
lr = [0.01]
"""


def test_a_cancelled_sweep_resumes_its_trial_from_the_checkpoint_and_delete_removes_it(
    tmp_path,
):
    from hypertui.engine.core.controls import Controls
    from hypertui.engine.core.paths import checkpoints_dir
    from hypertui.engine.store.store import Store
    from hypertui.engine.sweeps.presets import parse_preset
    from hypertui.engine.sweeps.sweep import create_sweep, run_sweep

    store = Store(tmp_path / "s.sqlite")
    whole = create_sweep(store, parse_preset(SWEEP, "r.toml"))
    list(run_sweep(store, whole, population=False))
    cut = create_sweep(store, parse_preset(SWEEP, "r.toml"))
    controls = Controls()
    for item in run_sweep(store, cut, controls, population=False):
        if isinstance(item.event, Progress) and item.event.epoch == 3:
            controls.cancel()  # the epoch-2 checkpoint is on disk
    assert store.sweep(cut).status == "cancelled"
    list(run_sweep(store, cut, population=False))  # the resume
    (a,), (b,) = store.runs(whole), store.runs(cut)
    assert b.status == "finished" and "resumed from its checkpoint after epoch 2" in b.env["notes"]
    assert (a.final, a.best, a.test, a.steps) == (b.final, b.best, b.test, b.steps)
    points = store.points(b.id)
    assert [p["epoch"] for p in points] == [1, 2, 3, 4, 5, 6]  # none twice, none lost
    assert (checkpoints_dir(cut, b.id) / "best.safetensors").exists()
    store.delete_sweep(cut)
    assert not checkpoints_dir(cut).exists()


POPULATION = SWEEP.replace("lr = [0.01]", "lr = [0.01, 0.003]\noptimizer = ['adam', 'sgd']")


def test_a_population_resumes_each_member_from_its_rows_bit_for_bit(tmp_path):
    from hypertui.engine.core.paths import checkpoints_dir
    from hypertui.engine.store.store import Store
    from hypertui.engine.sweeps.presets import parse_preset
    from tests.fakes import whole_and_resumed

    store = Store(tmp_path / "s.sqlite")
    preset = parse_preset(POPULATION.replace('optimizer = "adam"\n', ""), "p.toml")
    whole, cut = whole_and_resumed(store, preset, cut_at_epoch=3)
    a, b = store.runs(whole), store.runs(cut)
    assert len(b) == 4 and all(r.status == "finished" for r in b)
    for x, y in zip(a, b, strict=True):
        assert (x.final, x.best, x.test, x.steps) == (y.final, y.best, y.test, y.steps)
        assert "resumed from its checkpoint after epoch 2" in y.env["notes"]
        assert [p["epoch"] for p in store.points(y.id)] == [1, 2, 3, 4, 5, 6]
        best = checkpoints_dir(cut, y.id) / "best.safetensors"
        assert checkpoint.read(best)[1]["test"] == y.test
        assert not (checkpoints_dir(cut, y.id) / "last.safetensors").exists()


def test_checkpoints_wait_a_hundred_times_what_the_last_one_took(tmp_path, monkeypatch):
    """On a run whose epochs are fast, save_every = 1 writes far less often than every
    epoch: a checkpoint never takes more than 1% of the time."""
    writes = []
    original = checkpoint.Checkpoints.save_last

    def counted(self, epoch, tensors, meta):
        original(self, epoch, tensors, meta)
        self.cost_s = 3600.0  # as if a write took an hour
        writes.append(epoch)

    monkeypatch.setattr(checkpoint.Checkpoints, "save_last", counted)
    monkeypatch.setattr(checkpoint, "COST_FACTOR", 100)
    train(make_config(**CONFIG, save_every=1), tmp_path)
    assert writes == [1]  # the first, then none for 100 hours
