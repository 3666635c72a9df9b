"""Sweeps end to end on a tiny house config: store, grouping, export, cancel, resume."""

import io
import json
import os
import threading
import types

import numpy as np
import pandas as pd
import pytest

from hypertui.engine.analysis.compare import compare
from hypertui.engine.analysis.export import (
    cell,
    grouped_csv,
    grouped_markdown,
    runs_csv,
    write_atomic,
)
from hypertui.engine.core import ids
from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.store.schema import SCHEMA_VERSION
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from tests.fakes import finish_trial, start_trial, stored_epochs, train_epochs

TINY = """
description = "tiny sweep with one diverging learning rate"
seeds = 3
[config]
problem = "house"
hidden = [4]
batch_size = 128
epochs = 3
optimizer = "sgd"
[sweep]
lr = [1e6, 0.05]
activation = ["relu", "tanh"]
"""


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "runs.sqlite")


@pytest.fixture
def done(store):
    sweep_id = create_sweep(store, parse_preset(TINY, "tiny.toml"))
    events = list(run_sweep(store, sweep_id))
    return sweep_id, events


def test_store_records_every_trial_with_its_curve(store, done):
    sweep_id, events = done
    sweep = store.sweep(sweep_id)
    assert sweep.status == "done" and sweep.swept == ["lr", "activation"]
    assert sweep.counts == {"finished": 6, "diverged": 6}
    runs = store.runs(sweep_id)
    assert [r.idx for r in runs] == list(range(12))
    assert {r.seed for r in runs} == {0, 1, 2}
    for r in runs:
        assert r.device == "cpu" and r.env["torch"] and r.started_at <= r.ended_at
        points = store.points(r.id)
        if r.status == "finished":
            assert stored_epochs(store, r.id) == [1, 2, 3]
            assert r.final["val_mse"] == points[-1]["val_mse"] and r.test
        else:
            assert r.point["lr"] == 1e6 and r.test == {}
    assert {e.event.run_id for e in events} == {r.id for r in runs}
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_grouping_maths_matches_numpy_and_diverged_runs_are_not_averaged(store, done):
    sweep_id, _ = done
    runs = store.runs(sweep_id)
    comp = compare(runs, ["lr", "activation"], "house")
    assert len(comp.groups) == 4
    good = [g for g in comp.groups if g.point["lr"] == 0.05]
    bad = [g for g in comp.groups if g.point["lr"] == 1e6]
    assert comp.groups[:2] == sorted(good, key=lambda g: g.stats["val_mse"].mean)
    for g in good:
        values = np.array([r.final["val_mse"] for r in runs if r.id in g.run_ids])
        s = g.stats["val_mse"]
        assert s.n == 3 and s.mean == pytest.approx(values.mean())
        assert s.std == pytest.approx(values.std(ddof=1))
        assert (s.min, s.max) == (values.min(), values.max())
    for g in bad:
        assert g.n_diverged == 3 and g.n_finished == 0 and "val_mse" not in g.stats


def test_ids_never_read_back_as_numbers(monkeypatch):
    # "94937635" came back from pandas as an int and failed CI once; "1e234567" is a float.
    drawn = iter(["94937635" + "0" * 24, "1e234567" + "0" * 24, "0badcafe" + "0" * 24])
    monkeypatch.setattr(ids.uuid, "uuid4", lambda: types.SimpleNamespace(hex=next(drawn)))
    assert ids.new_id(8) == "0badcafe"
    df = pd.read_csv(io.StringIO("sweep_id\n0badcafe\n"))
    assert df.sweep_id.tolist() == ["0badcafe"]


def test_runs_csv_has_the_config_fields_that_apply_and_the_result_columns(store, done, tmp_path):
    sweep_id, _ = done
    path = write_atomic(tmp_path / "out" / "runs.csv", runs_csv(store.runs(sweep_id)))
    df = pd.read_csv(path)
    expected = [
        "problem",
        "model",
        "hidden",
        "activation",
        "loss",
        "optimizer",
        "lr",
        "momentum",
        "weight_decay",
        "batch_size",
        "epochs",
        "time_budget_s",
        "seed",
        "device",
        "features",
        "target_scale",
        "sweep_id",
        "run_id",
        "status",
        "epochs_done",
        "samples_seen",
        "duration_s",
        "best_epoch",
        "train_loss",
        "val_loss",
        "val_mse",
        "test_mse",
    ]
    assert set(expected) <= set(df.columns)
    assert not {"channels", "image_size", "path", "target", "task"} & set(df.columns)  # house MLP
    assert len(df) == 12 and set(df.sweep_id) == {sweep_id}
    assert df.hidden.astype(str).unique().tolist() == ["4"]
    assert df.features.iloc[0] == "Overall Qual-Gr Liv Area-Total Bsmt SF"
    finished = df[df.status == "finished"]
    assert finished.epochs_done.eq(3).all() and finished.samples_seen.eq(3 * 2050).all()
    run = store.run(finished.run_id.iloc[0])
    assert finished.val_mse.iloc[0] == pytest.approx(run.final["val_mse"])


def test_grouped_exports(store, done, tmp_path):
    sweep_id, _ = done
    comp = compare(store.runs(sweep_id), ["lr", "activation"], "house")
    df = pd.read_csv(io.StringIO(grouped_csv(comp)))
    assert {
        "lr",
        "activation",
        "n",
        "diverged",
        "val_mse_mean",
        "val_mse_std",
        "val_mse_min",
        "val_mse_max",
        "duration_s_mean",
    } <= set(df.columns)
    assert df.diverged.tolist() == [0, 0, 3, 3] and df.n.tolist() == [3, 3, 0, 0]
    md = grouped_markdown(comp)
    assert md.splitlines()[0].startswith("| rank | lr | activation | n | diverged |")
    assert len([line for line in md.splitlines() if line.startswith("| ")]) == 5


def test_gaussian_runs_export_nll_and_variance(store):
    text = (
        TINY.replace('optimizer = "sgd"', 'optimizer = "adam"\nloss = "gaussian_nll"')
        .replace("seeds = 3", "seeds = 1")
        .replace("lr = [1e6, 0.05]", "lr = [0.01]")
    )
    sweep_id = create_sweep(store, parse_preset(text, "g.toml"))
    list(run_sweep(store, sweep_id))
    df = pd.read_csv(io.StringIO(runs_csv(store.runs(sweep_id))))
    assert df.val_var.gt(0).all() and df.val_nll.notna().all()


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx"])
def test_formula_cells_are_neutralised(text):
    assert cell(text) == "'" + text
    assert cell(-2.5) == -2.5 and cell([10, 10]) == "10-10" and cell("relu") == "relu"


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "results.csv"
    target.write_text("old contents")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(HypertuiError, match="No space left on device"):
        write_atomic(target, "new contents")
    assert target.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_cancel_stops_the_running_trial_and_leaves_the_rest_pending(store):
    sweep_id = create_sweep(
        store, parse_preset(TINY.replace("epochs = 3", "epochs = 50"), "t.toml")
    )
    controls = Controls()
    seen = []
    for item in run_sweep(store, sweep_id, controls, population=False):
        seen.append(item)
        if item.trial == 6 and type(item.event).__name__ == "Progress":  # first lr=0.05 trial
            controls.stop.set()
    statuses = [r.status for r in store.runs(sweep_id)]
    assert statuses[:6] == ["diverged"] * 6 and statuses[6] == "cancelled"
    assert statuses[7:] == ["pending"] * 5
    assert seen[-1].event.status == "cancelled" and seen[-1].event.epochs_done < 2
    assert store.sweep(sweep_id).status == "cancelled" and store.sweep(sweep_id).resumable


def test_resume_runs_only_unfinished_trials(store):
    sweep_id = create_sweep(store, parse_preset(TINY, "t.toml"))
    controls = Controls()
    for item in run_sweep(store, sweep_id, controls, population=False):
        if item.trial == 4 and type(item.event).__name__ == "Progress":
            controls.stop.set()
    first = {r.id: r for r in store.runs(sweep_id)}
    resumed = {item.event.run_id for item in run_sweep(store, sweep_id)}
    runs = store.runs(sweep_id)
    assert resumed == {r.id for r in first.values() if r.status in ("cancelled", "pending")}
    assert all(r.status in ("finished", "diverged") for r in runs)
    for r in runs:
        if r.id not in resumed:
            assert r.ended_at == first[r.id].ended_at  # untouched
        points = store.points(r.id)
        assert [p["seq"] for p in points] == list(range(len(points)))


def test_resume_after_a_killed_runner_stores_each_reset_trial_once(store):
    """A runner killed mid-trial (SIGKILL, OOM) leaves that trial `running` with part of
    its curve, and a trial it skipped before is `cancelled` with its own part. A resume
    trains both again from the start: each curve must read epochs 1..E once, never the
    old attempt's epochs followed by the new ones."""
    text = TINY.replace("seeds = 3", "seeds = 1").replace("lr = [1e6, 0.05]", "lr = [0.05]")
    sweep_id = create_sweep(store, parse_preset(text, "t.toml"))
    skipped, killed = (row.id for row in store.claim_sweep(sweep_id))
    start_trial(store, skipped)  # skipped after two epochs
    train_epochs(store, skipped, [1, 2])
    finish_trial(store, skipped, 2, status="cancelled")
    start_trial(store, killed)  # killed during its second epoch
    train_epochs(store, killed, [1])
    store.db.execute("UPDATE sweeps SET heartbeat = heartbeat - 600")  # it beats no more
    assert store.sweep(sweep_id).status == "interrupted"
    assert [r.status for r in store.runs(sweep_id)] == ["cancelled", "running"]

    resumed = list(run_sweep(store, sweep_id, population=False))
    assert {item.event.run_id for item in resumed} == {skipped, killed}
    for run in store.runs(sweep_id):
        points = store.points(run.id)
        assert run.status == "finished"
        assert stored_epochs(store, run.id) == [1, 2, 3]
        assert points[-1]["val_mse"] == run.final["val_mse"]  # the curve of the stored result


def test_a_data_error_stops_the_sweep_and_keeps_the_trial_pending(store, tmp_path):
    text = TINY.replace(
        'problem = "house"\nhidden = [4]', 'problem = "mnist"\nmodel = "mlp"\nhidden = [4]'
    )
    text = text.replace("lr = [1e6, 0.05]\nactivation", "activation")
    sweep_id = create_sweep(store, parse_preset(text, "m.toml"))
    with pytest.raises(HypertuiError, match="MNIST is not available"):
        list(run_sweep(store, sweep_id, data_dir=tmp_path / "empty"))
    assert {r.status for r in store.runs(sweep_id)} == {"pending"}
    sweep = store.sweep(sweep_id)  # it says why, and a resume after the fix trains it
    assert sweep.status == "failed" and "MNIST is not available" in sweep.error
    assert sweep.resumable


def test_a_second_reader_sees_consistent_data_while_a_sweep_writes(store, tmp_path):
    sweep_id = create_sweep(store, parse_preset(TINY, "t.toml"))
    reader = Store(tmp_path / "runs.sqlite")
    for _ in run_sweep(store, sweep_id):
        runs = reader.runs(sweep_id)
        assert len(runs) == 12
        for r in runs:
            if r.status in ("finished", "diverged"):
                assert r.final and r.ended_at
    assert reader.sweep(sweep_id).status == "done"


def test_runs_stored_before_a_config_field_existed_read_back_with_its_default(store):
    sweep_id = create_sweep(store, parse_preset(TINY, "tiny.toml"))
    for row in store.runs(sweep_id):  # as hypertui wrote them before schedule and precision
        old = {k: v for k, v in row.config.items() if k not in ("schedule", "precision")}
        store.db.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(old), row.id))
    runs = store.runs(sweep_id)
    assert {(r.config["schedule"], r.config["precision"]) for r in runs} == {("constant", "fp32")}
    assert list(run_sweep(store, sweep_id))  # an old pending sweep still resumes
    assert {r.status for r in store.runs(sweep_id)} == {"finished", "diverged"}


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.db.execute("PRAGMA user_version=99")
    store.close()
    with pytest.raises(HypertuiError, match="newer hypertui"):
        Store(tmp_path / "s.sqlite")


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path):
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(HypertuiError, match="not a hypertui run store"):
        Store(tmp_path / "junk.sqlite")


def test_skip_ends_only_the_current_trial(store):
    sweep_id = create_sweep(
        store, parse_preset(TINY.replace("epochs = 3", "epochs = 40"), "t.toml")
    )
    controls = Controls()
    for item in run_sweep(store, sweep_id, controls, population=False):
        if item.trial == 7 and type(item.event).__name__ == "Progress":
            controls.skip.set()
    runs = store.runs(sweep_id)
    assert runs[7].status == "cancelled" and runs[7].reason == "skipped"
    assert [r.status for r in runs[8:]] == ["finished"] * 4
    sweep = store.sweep(sweep_id)
    assert sweep.status == "incomplete" and sweep.resumable  # the skipped trial is left


def test_pause_holds_training_without_charging_the_time_budget(monkeypatch):
    import time

    from hypertui.engine.core.config import make_config
    from hypertui.engine.core.events import Finished, Progress
    from hypertui.engine.training.train import run

    monkeypatch.setattr(
        "hypertui.engine.training.clock.REPORT_EVERY_S", 0.1
    )  # a report well inside the budget
    pause = threading.Event()
    config = make_config(hidden=[4], batch_size=1, epochs=1000, time_budget_s=0.6)
    wall0 = time.perf_counter()
    paused_once = False
    for event in run(config, should_pause=pause.is_set):
        if isinstance(event, Progress) and not paused_once:
            assert event.elapsed_s < 0.5
            paused_once = True
            pause.set()
            threading.Timer(1.0, pause.clear).start()
        if isinstance(event, Finished):
            done = event
    assert paused_once and done.status == "finished"
    assert 0.6 <= done.elapsed_s <= 0.6 + 5 * done.elapsed_s / done.steps  # a few steps over
    assert time.perf_counter() - wall0 >= 1.6  # the second of pause came on top of the budget


def test_a_diverged_member_does_not_hold_back_the_others_points(store, monkeypatch):
    # A frozen member never reports again: if it still counted as running, its unit's
    # points would wait for a report that never comes and reach the store all at the end.
    monkeypatch.setattr("hypertui.engine.training.clock.REPORT_EVERY_S", 3600.0)
    text = TINY.replace("epochs = 3", "epochs = 5").replace("seeds = 3", "seeds = 1")
    text = text.replace('activation = ["relu", "tanh"]', "")
    writes: list[list[str]] = []
    add_points = store.add_points
    monkeypatch.setattr(
        store,
        "add_points",
        lambda points: (writes.append([p.run_id for p in points]), add_points(points))[1],
    )
    sweep_id = create_sweep(store, parse_preset(text, "tiny.toml"))
    list(run_sweep(store, sweep_id))
    assert sorted(r.status for r in store.runs(sweep_id)) == ["diverged", "finished"]
    # each report (one an epoch) reaches the store in a write of its own
    assert all(len(w) == len(set(w)) for w in writes), writes
    assert sum(len(w) for w in writes) == 6 and len(writes) >= 5
