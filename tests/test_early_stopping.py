"""Early stopping (`patience`, `min_delta`): a run, or one member of a population, stops
once its main metric has not improved for `patience` epochs, finished and tested as it is."""

from __future__ import annotations

import pytest

from hypertui.engine.core.config import make_config
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.engine.training.train import run

PRESET = """
description = "patience"
[config]
problem = "house"
hidden = [8]
batch_size = 64
epochs = 40
patience = 3
min_delta = 0.001
[sweep]
lr = [0.05, 0.002]
"""


def test_a_run_stops_when_its_metric_stops_improving_and_is_tested_as_it_is():
    config = make_config(problem="house", lr=0.05, epochs=60, batch_size=64, patience=3)
    events = list(run(config))
    done = events[-1]
    assert done.status == "finished" and done.reason.startswith("early stopping: val_mse")
    assert done.epochs_done < 60 and done.test  # stopped early, and tested
    curve = [e.metrics["val_mse"] for e in events if hasattr(e, "metrics") and e.end_of_epoch]
    assert len(curve) == done.epochs_done == done.best_epoch + 3  # 3 epochs without a gain
    assert all(v >= min(curve[: done.best_epoch]) for v in curve[done.best_epoch :])
    unstopped = list(run(config.replace(patience=None, epochs=int(done.epochs_done) + 2)))
    assert unstopped[-1].epochs_done == done.epochs_done + 2  # patience off: the full count


def test_a_population_member_stops_where_the_same_trial_alone_stops(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    ends = {}
    for population in (False, True):
        sweep_id = create_sweep(store, parse_preset(PRESET, "p.toml"))
        list(run_sweep(store, sweep_id, population=population))
        ends[population] = [
            (r.status, r.epochs_done, r.best_epoch, r.reason) for r in store.runs(sweep_id)
        ]
    assert ends[True] == ends[False]
    epochs = [e[1] for e in ends[True]]
    assert epochs[0] < 40 and any("early stopping" in e[3] for e in ends[True])
    runs = store.runs(sweep_id)
    assert all(r.test for r in runs)  # a member that left early was tested as it left


def test_test_metrics_are_the_best_epochs_and_the_last_epochs_stay():
    """Restore-best: a run that overfits reports the test score of the weights a user
    would pick. The same seed trained only up to the best epoch ends with those weights:
    its last test score is the longer run's test score, bit for bit on the CPU."""
    config = make_config(problem="house", lr=0.05, epochs=15, batch_size=64, hidden=[8])
    done = list(run(config))[-1]
    assert done.best_epoch < 15 and done.test["test_mse"] != done.test["last_test_mse"]
    shorter = list(run(config.replace(epochs=done.best_epoch)))[-1]
    assert shorter.test["last_test_mse"] == done.test["test_mse"]


def test_patience_and_min_delta_refuse_impossible_values():
    for values in ({"patience": 0}, {"patience": 1.5}, {"min_delta": -0.1}):
        with pytest.raises(ConfigError):
            make_config(**values)
