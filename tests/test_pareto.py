"""Several objectives (engine/analysis/pareto.py): the front over configs, the preset key
`objectives` checked at load, and `hypertui analyze --pareto`. Fake stored runs, no training."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from hypertui.engine.analysis.pareto import (
    corners,
    directions,
    front,
    pareto_mask,
    sweep_objectives,
)
from hypertui.engine.core.config import make_config
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.events import Finished, RunStarted
from hypertui.engine.core.records import RunRow
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset, preset_to_toml
from hypertui.tui.cli.main import main

SWEEP = "9a3e0001"
TOML = """
name = "widths"
description = "widths x lr: error against training time and size"
seeds = 2
objectives = ["val_mse", "train_s", "params"]
[config]
problem = "house"
[sweep]
hidden = [[3], [5], [10], [20], [40]]
lr = [0.01, 0.1]
"""


def run_row(i, point, seed, mse, train_s, params, status="finished", metric="val_mse"):
    final = {} if mse is None else {metric: mse}
    return RunRow(
        f"r{i:04d}", SWEEP, i, seed, {**point, "seed": seed}, point, status, "", None, None,
        params, {}, None, None, None, 1.0, None, None, train_s, train_s, None, final, {}, {}, {},
    )  # fmt: skip


def width_runs() -> list[RunRow]:
    """hidden x lr x 2 seeds: wider is better and slower and bigger; lr 0.1 halves the time
    and costs 0.05 of val_mse. Width 40 at lr 0.1 diverges on seed 1; width 20 at lr 0.1
    ends NaN on seed 1 (no value); one run of width 3 at lr 0.01 failed."""
    runs = []
    for w, lr, seed in itertools.product((3, 5, 10, 20, 40), (0.01, 0.1), (0, 1)):
        point = {"hidden": [w], "lr": lr}
        mse = 0.5 / w + 0.05 * (lr == 0.1) + 0.002 * seed
        seconds = w * (1 if lr == 0.1 else 2) + 0.1 * seed
        params = 13 * w + 1
        i = len(runs)
        if (w, lr, seed) == (40, 0.1, 1):
            runs.append(run_row(i, point, seed, None, seconds, params, "diverged"))
        elif (w, lr, seed) == (20, 0.1, 1):
            runs.append(run_row(i, point, seed, math.nan, seconds, params))
        elif (w, lr, seed) == (3, 0.01, 1):
            runs.append(run_row(i, point, seed, None, None, None, "failed"))
        else:
            runs.append(run_row(i, point, seed, mse, seconds, params))
    return runs


def brute(values, higher):
    v = np.where(higher, -np.asarray(values, float), np.asarray(values, float))
    return [
        not any((v[j] <= v[i]).all() and (v[j] < v[i]).any() for j in range(len(v)))
        for i in range(len(v))
    ]


def test_the_mask_is_every_undominated_row_with_ties_kept_together():
    rng = np.random.default_rng(3)
    for k, _ in itertools.product((1, 2, 3, 4), range(60)):
        values = rng.integers(0, 4, size=(rng.integers(0, 25), k)).astype(float)  # many ties
        higher = rng.random(k) < 0.5
        assert pareto_mask(values, higher).tolist() == brute(values, higher)
    # equal rows are both on the front; equal on one and worse on the other is not
    rows = [[1.0, 5.0], [1.0, 5.0], [1.0, 6.0], [2.0, 4.0], [3.0, 4.0]]
    assert pareto_mask(rows, [False, False]).tolist() == [True, True, False, True, False]
    # a direction per objective: higher accuracy, lower time
    assert pareto_mask([[0.9, 10], [0.8, 5], [0.8, 6]], [True, False]).tolist() == [
        True, True, False
    ]  # fmt: skip


def test_the_front_is_over_config_means_with_what_is_left_out_counted():
    runs = width_runs()
    fr = front(runs, ["hidden", "lr"], ["val_mse", "train_s"], [False, False])
    # 10 configs: width 40 at lr 0.1 left out for its diverged seed
    assert len(fr.configs) == 9 and fr.n_diverged_configs == 1 and fr.n_diverged == 1
    assert fr.n_no_value == 1 and fr.n_other == 1 and fr.n_runs == 20
    assert fr.left_out() == (
        "left out: 1 config with a diverged run (1 run), "
        "1 finished without a finite val_mse or train_s, 1 failed, pruned or unfinished"
    )
    by_point = {(c.point["hidden"][0], c.point["lr"]): c for c in fr.configs}
    # the mean over the seeds that finished with every objective finite
    assert (
        by_point[(5, 0.01)].values == pytest.approx((0.1 + 0.001, 10.05))
        and by_point[(5, 0.01)].n == 2
    )
    assert by_point[(20, 0.1)].n == 1 and by_point[(3, 0.01)].n == 1
    means = [c.values for c in fr.configs]
    assert [c.on_front for c in fr.configs] == brute(means, [False, False])
    # members best first on the first objective: the slowest, most accurate first
    members = fr.members
    assert [m.values[0] for m in members] == sorted(m.values[0] for m in members)
    assert members[0].point == {"hidden": [40], "lr": 0.01}
    assert {"hidden": [3], "lr": 0.1} in [m.point for m in members]  # the fastest
    # width 10 at lr 0.1 ties width 5 at lr 0.01 on both (0.101, 10.05): both on the front;
    # on params too, the smaller one dominates the other
    tied = [c for c in fr.configs if c.values == by_point[(5, 0.01)].values]
    assert len(tied) == 2 and all(c.on_front for c in tied)
    three = front(runs, ["hidden", "lr"], ["val_mse", "train_s", "params"], [False] * 3)
    on3 = [m.point for m in three.members]
    assert {"hidden": [5], "lr": 0.01} in on3 and {"hidden": [10], "lr": 0.1} not in on3


def test_directions_follow_the_metric_and_costs_are_lower_is_better():
    runs = [
        run_row(i, {"lr": lr}, 0, acc, s, 100, metric="val_acc")
        for i, (lr, acc, s) in enumerate([(0.1, 0.9, 10.0), (0.01, 0.95, 20.0), (1.0, 0.8, 30.0)])
    ]
    fr = front(runs, ["lr"], ["val_acc", "train_s"], [True, False])
    assert [m.point["lr"] for m in fr.members] == [0.01, 0.1]  # best accuracy first
    assert directions(["val_acc", "train_s", "params"], "val_acc", True) == [
        "maximize", "minimize", "minimize"
    ]  # fmt: skip
    assert directions(["val_mse", "best_val_mse", "val_loss"], "val_mse", False) == ["minimize"] * 3


def test_nothing_to_put_on_a_front_is_one_line():
    dead = [run_row(0, {"lr": 2.0}, 0, None, 1.0, 10, "diverged")]
    fr = front(dead, ["lr"], ["val_mse", "train_s"], [False, False])
    assert (
        fr.message
        == "no config has a run that finished with a finite val_mse and train_s: no front"
    )
    assert fr.members == [] and fr.left_out().startswith("left out: 1 config with a diverged")
    assert front([], ["lr"], ["val_mse", "train_s"], [False, False]).message == "no runs: no front"


def test_the_staircase_turns_at_the_corner_both_neighbours_dominate():
    assert corners([1, 2], [5, 3], False, False) == ([1, 2, 2], [5, 5, 3])
    assert corners([2, 1], [5, 3], True, False) == ([1, 1, 2], [3, 5, 5])  # x higher is better


def parse(objectives: str, config: str = 'problem = "house"'):
    return parse_preset(
        f'description = "x"\nobjectives = {objectives}\n[config]\n{config}\n', "p.toml"
    )


def test_a_preset_names_its_objectives_and_keeps_them():
    preset = parse('["val_mse", "train_s", "params"]')
    assert preset.objectives == ("val_mse", "train_s", "params")
    again = parse_preset(preset_to_toml(preset), "again.toml")
    assert again.objectives == preset.objectives
    assert sweep_objectives(preset_to_toml(preset), "val_mse") == (list(preset.objectives), True)
    assert sweep_objectives("", "val_mse") == (["val_mse", "train_s"], False)  # the default
    assert parse('["val_acc", "params"]', 'problem = "mnist"').objectives[0] == "val_acc"
    assert parse('["val_mse", "best_val_mse"]').objectives == ("val_mse", "best_val_mse")
    # a classification's other scores; a config's own ranking metric comes first
    mnist = 'problem = "mnist"'
    assert parse('["val_acc", "val_macro_f1"]', mnist).objectives[1] == "val_macro_f1"
    with pytest.raises(ConfigError, match="'val_roc_auc' is not a metric these runs report"):
        parse('["val_acc", "val_roc_auc"]', mnist)  # ten classes: no ROC AUC
    f1 = mnist + '\nmetric = "val_macro_f1"'
    assert parse('["val_macro_f1", "train_s"]', f1).objectives[0] == "val_macro_f1"
    with pytest.raises(ConfigError, match="the first is the metric that ranks the runs, 'val_m"):
        parse('["val_acc", "train_s"]', f1)


@pytest.mark.parametrize(
    ("objectives", "says"),
    [
        ('["val_mse", "trian_s"]', "'trian_s' is not a metric these runs report (did you mean "
         "'train_s'?); they report: val_mse | best_val_mse"),
        ('["val_mse", "val_acc"]', "'val_acc' is not a metric these runs report"),
        ('["val_mse"]', "a front needs 2 or more"),
        ('"val_mse"', "a list of metric names"),
        ('["val_mse", 3]', "a list of metric names"),
        ('["val_mse", "val_mse"]', "'val_mse' named twice"),
        ('["train_s", "val_mse"]', "the first is the metric that ranks the runs, 'val_mse'"),
        ('["val_mse", "test_mse"]', "'test_mse' is a test metric"),
        ('["val_mse", "train_s", "params", "val_loss", "train_loss"]', "at most 4"),
    ],
)  # fmt: skip
def test_bad_objectives_are_one_line_at_load(objectives, says):
    with pytest.raises(ConfigError) as err:
        parse(objectives)
    assert str(err.value).startswith("p.toml: objectives") and says in str(err.value)
    assert "\n" not in str(err.value)


def test_your_own_function_has_no_objectives_yet():
    with pytest.raises(ConfigError, match="objectives name our problems' metrics"):
        parse('["loss", "train_s"]', 'train = "mod:fn"')


def stored(tmp_path: Path, runs=None, toml: str = TOML) -> Path:
    """The runs as a finished sweep of a preset with three objectives."""
    runs = runs if runs is not None else width_runs()
    path = tmp_path / "runs.sqlite"
    store = Store(path)
    trials = [
        (r.id, r.idx, r.seed, make_config(seed=r.seed).to_dict() | r.point, r.point) for r in runs
    ]
    store.create_sweep(SWEEP, "widths", "house", "widths", ["hidden", "lr"], trials,
                       preset_toml=toml)  # fmt: skip
    store.claim_sweep(SWEEP)
    for (run_id, _, _, config, _), r in zip(trials, runs, strict=True):
        store.run_started(RunStarted(run_id, config, "cpu", "CPU", r.n_params or 0, {}))
        store.run_ended(
            Finished(run_id, r.status, epochs_done=1, steps=1, samples=1,
                     elapsed_s=r.elapsed_s or 0.0, wall_s=1.0, final=r.final, best=r.final,
                     best_epoch=1, test={})
        )  # fmt: skip
    store.end_sweep(SWEEP, "done")
    store.close()
    return path


def test_analyze_pareto_prints_the_members_and_json_holds_them(tmp_path, capsys):
    path = stored(tmp_path)
    assert main(["--store", str(path), "analyze", "--pareto"]) == 0
    out = capsys.readouterr().out
    expected = front(width_runs(), ["hidden", "lr"], ["val_mse", "train_s", "params"], [False] * 3)
    assert "Pareto front of val_mse (lower is better), train_s (lower is better), params" in out
    assert f"{len(expected.members)} of 9 configs on the front" in out
    assert "hidden  lr    val_mse  train_s  params  n" in out
    assert "1  40      0.01  0.0135   80.05    521     2" in out  # the best val_mse first
    assert "left out: 1 config with a diverged run (1 run)" in out

    assert main(["--store", str(path), "analyze", "--pareto", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["objectives"] == ["val_mse", "train_s", "params"]
    assert doc["directions"] == ["minimize"] * 3 and doc["n_configs"] == 9
    assert [m["point"] for m in doc["members"]] == [m.point for m in expected.members]
    assert doc["members"][0]["params"] == 521 and doc["n_diverged_configs"] == 1

    assert (
        main(["--store", str(path), "analyze", "--pareto", "--objectives", "val_mse,params"]) == 0
    )
    out = capsys.readouterr().out
    assert "Pareto front of val_mse (lower is better), params (lower is better)" in out


def test_analyze_pareto_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    path = stored(tmp_path)
    for argv in (
        ["analyze", "--pareto", "--objectives", "val_mse,nope"],
        ["analyze", "--pareto", "--objectives", "val_mse"],
        ["analyze", "--objectives", "val_mse,params"],  # without --pareto
        ["analyze", "--pareto", "--metric", "val_loss"],
    ):
        assert main(["--store", str(path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("hypertui: ") for line in err)
    assert "'nope' is not a metric these runs report" in err[0]
