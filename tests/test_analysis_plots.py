"""What the Analysis plots show (engine/analysis/plots.py): the metric against a numeric
field, a point per run and a mark per config's mean; the top configs across every field."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hypertui.engine.analysis.importance import analyze
from hypertui.engine.analysis.plots import (
    left_out,
    numeric_fields,
    parallel,
    random_kinds,
    scatter,
)
from tests.test_analysis import fake_run

RANDOM_TOML = """
name = "rs"
seeds = 2
trials = 12

[config]
problem = "house"

[sweep]
optimizer = ["sgd", "adam"]
lr = { log_uniform = [1e-4, 0.3] }
dropout = { uniform = [0.0, 0.5] }
"""


def random_runs(trials: int = 12, seeds: int = 2):
    """A random sweep: optimizer x log-uniform lr x uniform dropout, `seeds` per config.
    val_mse is least at lr = 0.01 and grows with dropout; adam is 0.02 better; seeds shift
    every config alike; the one config with lr above 0.2 diverges on seed 1."""
    rng = np.random.default_rng(7)
    runs = []
    for opt in ("sgd", "adam"):
        for _ in range(trials):
            lr = float(f"{10 ** rng.uniform(-4, math.log10(0.3)):.4g}")
            dropout = float(f"{rng.uniform(0.0, 0.5):.4g}")
            for seed in range(seeds):
                value = 0.1 + 0.05 * (math.log10(lr) + 2) ** 2 + 0.2 * dropout
                value += 0.01 * seed - 0.02 * (opt == "adam")
                point = {"optimizer": opt, "lr": lr, "dropout": dropout}
                if lr > 0.2 and seed == 1:
                    runs.append(fake_run(len(runs), point, seed, None, "diverged"))
                else:
                    runs.append(fake_run(len(runs), point, seed, value))
    return runs


SWEPT = ["optimizer", "lr", "dropout"]


def test_random_kinds_come_from_the_stored_preset():
    assert random_kinds(RANDOM_TOML) == {"lr": "log_uniform", "dropout": "uniform"}
    assert random_kinds("") == {} and random_kinds("not [toml") == {}
    assert random_kinds('[sweep]\nlr = [0.1, 0.01]\nact = "relu"') == {}  # a grid


def test_scatter_has_a_point_per_run_and_a_mark_per_config_mean():
    runs = random_runs()
    result = analyze(runs, SWEPT, "house")
    assert numeric_fields(result, runs) == ["lr", "dropout"]  # not the optimizer
    sc = scatter(result, runs, "lr", random_kinds(RANDOM_TOML))
    diverged = sum(r.status == "diverged" for r in runs)
    assert diverged >= 1 and result.n_diverged == diverged
    assert len(sc.xs) == len(runs) - diverged  # every finished run, none invented
    assert sc.log_x and sc.x_why == "drawn log-uniform" and sc.runs_per_config == 2
    finished = {r.id: r for r in runs if r.status == "finished"}
    assert sorted(sc.ys) == pytest.approx(sorted(r.final["val_mse"] for r in finished.values()))
    # a config with both seeds has its mean marked at its lr; one with a diverged seed has not
    assert len(sc.mean_xs) == len(runs) // 2 - diverged
    i = sc.mean_xs.index(runs[0].point["lr"])
    assert sc.mean_ys[i] == pytest.approx((runs[0].final["val_mse"] + runs[1].final["val_mse"]) / 2)
    assert left_out(result, runs) == f"not plotted: {diverged} diverged"


def test_the_x_axis_is_log_where_drawn_log_uniform_or_spanning_decades():
    runs = random_runs()
    result = analyze(runs, SWEPT, "house")
    kinds = random_kinds(RANDOM_TOML)
    dropout = scatter(result, runs, "dropout", kinds)
    assert not dropout.log_x and dropout.x_why == "drawn uniform"
    # without the preset (a script's runs): lr spans 3 decades, so log as its slice reads it
    assert scatter(result, runs, "lr", {}).log_x
    grid = [fake_run(i, {"lr": lr}, 0, lr) for i, lr in enumerate([0.2, 0.3, 0.4])]
    assert not scatter(analyze(grid, ["lr"], "house"), grid, "lr").log_x  # 2x: linear


def test_the_log_scale_keeps_the_metrics_units_on_a_log_y_axis():
    runs = random_runs()
    result = analyze(runs, SWEPT, "house", scale="log")
    sc = scatter(result, runs, "lr", {})
    assert sc.log_y
    assert min(sc.ys) == pytest.approx(min(r.final["val_mse"] for r in runs if r.final))
    geo = math.sqrt(runs[0].final["val_mse"] * runs[1].final["val_mse"])
    assert sc.mean_ys[sc.mean_xs.index(runs[0].point["lr"])] == pytest.approx(geo)


def test_parallel_coordinates_of_the_top_configs():
    runs = random_runs()
    result = analyze(runs, SWEPT, "house")
    pc = parallel(result, runs, k=5, kinds=random_kinds(RANDOM_TOML))
    assert [a.name for a in pc.axes] == [*SWEPT, "val_mse"]
    assert [a.kind for a in pc.axes] == ["category", "numeric", "numeric", "metric"]
    assert pc.axes[0].levels == ["sgd", "adam"] and pc.axes[1].log and not pc.axes[2].log
    assert pc.n_configs == len(runs) // 2 and len(pc.lines) == 5
    means = [line.mean for line in pc.lines]
    assert means == sorted(means) and [line.rank for line in pc.lines] == [1, 2, 3, 4, 5]
    by_hand: dict[tuple, list[float]] = {}
    for r in runs:
        by_hand.setdefault(tuple(r.point.values()), []).append(r.final.get("val_mse", math.nan))
    complete = {k: sum(v) / 2 for k, v in by_hand.items() if not math.isnan(sum(v))}
    first = min(complete, key=complete.get)
    assert tuple(pc.lines[0].point.values()) == first and means[0] == complete[first]
    best = pc.lines[0]
    assert best.ys[0] == ["sgd", "adam"].index(best.point["optimizer"])  # levels: 0 and 1
    assert best.ys[-1] == 1.0 and pc.lines[-1].ys[-1] == 0.0
    # lr on a log axis spanning every run's lr: the best config's lr sits at its log position
    lrs = [r.point["lr"] for r in runs]
    where = math.log10(best.point["lr"] / min(lrs)) / math.log10(max(lrs) / min(lrs))
    assert best.ys[1] == pytest.approx(where)
    drop = [r.point["dropout"] for r in runs]  # linear: drawn uniform
    assert best.ys[2] == pytest.approx((best.point["dropout"] - min(drop)) / np.ptp(drop))
    assert pc.axes[-1].top == f"{best.mean:.3g}"  # the best at the top


def test_higher_is_better_puts_the_highest_at_the_top():
    runs = [
        fake_run(i, {"lr": lr}, 0, acc, metric="val_acc")
        for i, (lr, acc) in enumerate([(0.1, 0.9), (0.01, 0.95), (0.001, 0.8)])
    ]
    result = analyze(runs, ["lr"], "mnist")
    pc = parallel(result, runs)
    assert [line.point["lr"] for line in pc.lines] == [0.01, 0.1, 0.001]
    assert [line.ys[-1] for line in pc.lines] == pytest.approx([1.0, 0.2 / 0.3 * 0.5 * 2, 0.0])


def test_bad_input_says_why_in_one_line():
    # nothing numeric: no scatter field, but parallel coordinates still draw
    cat = [
        fake_run(i, {"activation": a}, 0, v)
        for i, (a, v) in enumerate([("relu", 0.1), ("tanh", 0.2)])
    ]
    result = analyze(cat, ["activation"], "house")
    assert numeric_fields(result, cat) == []
    assert len(parallel(result, cat).lines) == 2
    # a single run: nothing varies
    one = [fake_run(0, {"lr": 0.1}, 0, 0.1)]
    result = analyze(one, ["lr"], "house")
    assert numeric_fields(result, one) == []
    assert parallel(result, one).message == "no swept field varies: nothing to draw"
    # every run diverged
    dead = [fake_run(i, {"lr": lr}, 0, None, "diverged") for i, lr in enumerate([1.0, 2.0])]
    result = analyze(dead, ["lr"], "house")
    assert scatter(result, dead, "lr").message == "all 2 runs diverged: no val_mse to plot"
    assert "all 2 runs diverged" in parallel(result, dead).message
    assert left_out(result, dead) == "not plotted: 2 diverged"
    # NaN metrics on finished runs, a failed and a pending run: counted, never plotted
    mixed = [
        fake_run(0, {"lr": 0.1}, 0, 0.1),
        fake_run(1, {"lr": 0.01}, 0, 0.2),
        fake_run(2, {"lr": 0.001}, 0, math.nan),
        fake_run(3, {"lr": 0.3}, 0, None, "failed"),
        fake_run(4, {"lr": 0.03}, 0, None, "pending"),
    ]
    result = analyze(mixed, ["lr"], "house")
    sc = scatter(result, mixed, "lr")
    assert sc.xs == [0.1, 0.01] and not sc.mean_xs and sc.runs_per_config == 1
    assert left_out(result, mixed) == (
        "not plotted: 1 finished without a finite val_mse, 2 failed or unfinished"
    )
    nan = [fake_run(i, {"lr": lr}, 0, math.nan) for i, lr in enumerate([0.1, 0.01])]
    result = analyze(nan, ["lr"], "house")
    assert parallel(result, nan).message == "no run has a finite val_mse: nothing to draw"
    assert scatter(result, nan, "lr").message == "no run has a finite val_mse: nothing to plot"
