"""Importance, slices, pivots and top configs on synthetic sweeps with known effects."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from hypertui.engine.analysis.importance import analyze, pivot
from hypertui.engine.store.store import RunRow


def fake_run(
    i: int, point: dict, seed: int, value: float | None, status: str = "finished",
    metric: str = "val_mse",
):  # fmt: skip
    final = {} if value is None else {metric: value}
    return RunRow(
        f"r{i:04d}", "s", i, seed, {**point, "seed": seed}, point, status, "", None, None,
        None, {}, None, None, None, 1.0, None, None, None, 1.0, None, final, {}, {}, {},
    )  # fmt: skip


def grid_runs(effects_a, effects_b, interaction, noise, seeds=2):
    runs, raw = [], []
    rng = np.random.default_rng(0)
    for (i, a), (j, b) in itertools.product(enumerate(effects_a), enumerate(effects_b)):
        for s in range(seeds):
            y = 1.0 + a + b + interaction[i][j] + noise * rng.normal()
            raw.append((i, j, y))
            point = {"lr": [0.1, 0.01, 0.001][i], "activation": ["relu", "tanh"][j]}
            runs.append(fake_run(len(runs), point, s, y))
    return runs, raw


def anova_by_hand(raw):
    """Two-way ANOVA with replication, the textbook sums of squares, from loops."""
    ys = [y for _, _, y in raw]
    grand = sum(ys) / len(ys)
    ss_t = sum((y - grand) ** 2 for y in ys)

    def mean_where(pred):
        sel = [y for i, j, y in raw if pred(i, j)]
        return sum(sel) / len(sel), len(sel)

    ss_a = sum(
        n * (m - grand) ** 2 for m, n in (mean_where(lambda i, j, a=a: i == a) for a in range(3))
    )
    ss_b = sum(
        n * (m - grand) ** 2 for m, n in (mean_where(lambda i, j, b=b: j == b) for b in range(2))
    )
    ss_e = 0.0
    for a, b in itertools.product(range(3), range(2)):
        m, _ = mean_where(lambda i, j, a=a, b=b: (i, j) == (a, b))
        ss_e += sum((y - m) ** 2 for i, j, y in raw if (i, j) == (a, b))
    ss_ab = ss_t - ss_a - ss_b - ss_e
    return {
        "lr": ss_a / ss_t,
        "activation": ss_b / ss_t,
        "inter": ss_ab / ss_t,
        "seeds": ss_e / ss_t,
    }


def test_grid_decomposition_agrees_with_an_anova_by_hand():
    runs, raw = grid_runs([0.0, 0.3, 0.9], [0.0, 0.1], [[0, 0.05], [0, -0.05], [0.1, 0]], 0.05)
    result = analyze(runs, ["lr", "activation"], "house")
    ref = anova_by_hand(raw)
    assert result.method == "grid"
    shares = {s.name: s.share for s in result.importance}
    assert shares["lr"] == pytest.approx(ref["lr"])
    assert shares["activation"] == pytest.approx(ref["activation"])
    assert shares["lr × activation"] == pytest.approx(ref["inter"])
    assert shares["seeds"] == pytest.approx(ref["seeds"])
    assert sum(shares.values()) == pytest.approx(1.0)
    assert [s.name for s in result.importance][:2] == ["lr", "activation"]  # known order
    assert "6 cells, 12 runs" in result.method_text


def test_a_field_without_effect_gets_almost_nothing():
    runs, _ = grid_runs([0.0, 0.0, 0.0], [0.0, 0.5], [[0, 0]] * 3, 0.01)
    shares = {s.name: s.share for s in analyze(runs, ["lr", "activation"], "house").importance}
    assert shares["activation"] > 0.95 and shares["lr"] < 0.01


def test_same_numbers_every_time():
    runs, _ = grid_runs([0.0, 0.3, 0.9], [0.0, 0.1], [[0, 0]] * 3, 0.05)
    a = analyze(runs, ["lr", "activation"], "house").to_dict()
    b = analyze(list(reversed(runs)), ["lr", "activation"], "house").to_dict()
    assert a["importance"] == b["importance"]


def test_diverged_runs_count_at_the_worst_value():
    runs, _ = grid_runs([0.0, 0.1, 0.2], [0.0, 0.0], [[0, 0]] * 3, 0.01)
    runs = [
        fake_run(r.idx, r.point, r.seed, None, "diverged") if r.point["lr"] == 0.1 else r
        for r in runs
    ]
    result = analyze(runs, ["lr", "activation"], "house")
    assert result.method == "grid" and result.n_diverged == 4
    lr = {p.label: p.mean for p in result.slices["lr"].points}
    assert lr["0.1"] == pytest.approx(max(lr.values()))  # the worst, although 0.2 trains worse
    assert "4 diverged counted at the worst value" in result.method_text


def test_slices_marginalise_and_give_an_interval_over_seeds():
    runs, raw = grid_runs([0.0, 0.3, 0.9], [0.0, 0.1], [[0, 0]] * 3, 0.05, seeds=3)
    s = analyze(runs, ["lr", "activation"], "house").slices["lr"]
    assert s.log_x and s.ci_over == "seeds"
    assert [p.label for p in s.points] == ["0.001", "0.01", "0.1"]  # ascending
    p = s.points[2]  # lr 0.1 is effect 0.0
    by_hand = np.mean([y for i, _, y in raw if i == 0])
    assert p.mean == pytest.approx(by_hand) and p.n == 3 and p.low < p.mean < p.high


def test_random_sweep_uses_ped_anova_and_finds_the_field_that_matters():
    rng = np.random.default_rng(3)
    runs = []
    for i in range(40):
        lr = float(10 ** rng.uniform(-4, -0.5))
        wd = float(10 ** rng.uniform(-6, -2))
        runs.append(fake_run(i, {"lr": lr, "weight_decay": wd}, 0, (math.log10(lr) + 2) ** 2))
    result = analyze(runs, ["lr", "weight_decay"], "house")
    assert result.method == "ped-anova" and "40 points" in result.method_text
    assert result.importance[0].name == "lr" and result.importance[0].share > 0.6
    assert result.slices["lr"].log_x and len(result.slices["lr"].points) >= 3


def test_pivot_and_top_k():
    runs, _ = grid_runs([0.0, 0.3, 0.9], [0.0, 0.1], [[0, 0]] * 3, 0.0)
    result = analyze(runs, ["lr", "activation"], "house", top_k=2)
    table = pivot(result, "lr", "activation")
    assert table.rows == ["0.001", "0.01", "0.1"] and table.cols == ["relu", "tanh"]
    assert table.values[2] == pytest.approx([1.0, 1.1])  # lr 0.1: effect 0
    assert [t.point for t in result.top] == [
        {"lr": 0.1, "activation": "relu"},
        {"lr": 0.1, "activation": "tanh"},
    ]


def test_sweeps_with_nothing_to_rank_still_analyse():
    one = [fake_run(i, {}, i, 0.1 + 0.01 * i) for i in range(3)]
    result = analyze(one, [], "house")
    assert result.method == "none" and result.importance == [] and result.slices == {}
    assert result.top[0].mean == pytest.approx(0.11)
    pending = [fake_run(i, {"lr": lr}, 0, None, "pending") for i, lr in enumerate([0.1, 0.01])]
    result = analyze(pending, ["lr"], "house")
    assert result.method == "none" and result.n_runs == 0 and result.top == []
    single = [fake_run(i, {"lr": lr}, s, lr + s * 0.01) for i, (lr, s) in
              enumerate(itertools.product([0.1, 0.01], [0, 1]))]  # fmt: skip
    result = analyze(single, ["lr"], "house")
    assert [s.name for s in result.importance] == ["lr", "seeds"]


def two_ended_search(higher: bool, n: int = 60):
    """A random search whose two ends are made by different fields: the best points all
    have lr near 3e-3, the worst all have weight_decay above 3e-3 (lr spread)."""
    rng = np.random.default_rng(7)
    runs = []
    for i in range(n):
        lr, wd = float(10 ** rng.uniform(-4, -1)), float(10 ** rng.uniform(-6, -2))
        loss = 0.1 - 0.05 * (abs(math.log10(lr) + 2.5) < 0.25) + 0.5 * (wd > 10**-2.5)
        loss += 0.001 * rng.uniform()
        value, metric = (1 - loss, "val_acc") if higher else (loss, "val_mse")
        runs.append(fake_run(i, {"lr": lr, "weight_decay": wd}, 0, value, metric=metric))
    return runs


def pearson_divergence_by_hand(frame, fields, higher):
    """PED-ANOVA from its definition, with loops: the best 10% (at least 3) of the points
    against all of them, per field, normalised to shares. A field is scored among the
    points that drew it (one run per point here)."""
    scores = {}
    for f in fields:
        drawn = frame[frame[f].notna()]
        rows = sorted(zip(drawn["value"], drawn[f].astype(str), strict=True),
                      key=lambda r: -r[0] if higher else r[0])  # fmt: skip
        n_top = max(3, math.ceil(0.1 * len(rows)))
        labels = [label for _, label in rows]
        top = labels[:n_top]
        scores[f] = 0.0
        for x in set(labels):
            p_all, p_top = labels.count(x) / len(rows), top.count(x) / n_top
            scores[f] += p_all * (p_top / p_all - 1) ** 2
    total = sum(scores.values())
    return {f: s / total for f, s in scores.items()}


@pytest.mark.parametrize("problem, higher", [("house", False), ("mnist", True)])
def test_ped_anova_scores_the_best_points_not_the_worst(problem, higher):
    # The field that makes the best runs is the one to tune; the one that only makes bad
    # runs worse ranks second. Scoring the wrong end swaps them.
    result = analyze(two_ended_search(higher), ["lr", "weight_decay"], problem)
    assert result.method == "ped-anova" and result.higher_is_better is higher
    assert result.importance[0].name == "lr" and result.importance[0].share > 0.6
    shares = {s.name: s.share for s in result.importance}
    by_hand = pearson_divergence_by_hand(result.frame, ["lr", "weight_decay"], higher)
    assert shares == pytest.approx(by_hand, rel=1e-9)


def t_interval_95(values):
    mean = float(np.mean(values))
    return stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))


def test_slice_intervals_are_95_percent_t_intervals_over_seeds_or_points():
    runs, _ = grid_runs([0.0, 0.3, 0.9], [0.0, 0.1], [[0, 0.05], [0, -0.05], [0.1, 0]], 0.05, 4)
    s = analyze(runs, ["lr", "activation"], "house").slices["lr"]
    assert s.ci_over == "seeds"
    for p in s.points:  # each seed's mean over activations is one observation
        lr = float(p.label)
        obs = [np.mean([r.final["val_mse"] for r in runs if r.point["lr"] == lr and r.seed == k])
               for k in range(4)]  # fmt: skip
        low, high = t_interval_95(obs)
        assert p.n == 4 and p.mean == pytest.approx(np.mean(obs), rel=1e-9)
        assert (p.low, p.high) == pytest.approx((low, high), rel=1e-9)
    one_seed = [r for r in runs if r.seed == 0]
    s = analyze(one_seed, ["lr", "activation"], "house").slices["activation"]
    assert s.ci_over == "points"
    for p in s.points:  # one seed: each run at that value is one observation
        obs = [r.final["val_mse"] for r in one_seed if r.point["activation"] == p.label]
        assert p.n == 3
        assert (p.low, p.high) == pytest.approx(t_interval_95(obs), rel=1e-9)


def test_a_conditional_field_is_judged_where_it_was_drawn():
    """Momentum is drawn for sgd only (adam's points lack it). Adam wins every time, and
    momentum does nothing: scoring its missing cells as a level would credit momentum with
    the optimizer's effect. Among the sgd points it was drawn for it is noise."""
    rng = np.random.default_rng(5)
    runs = []
    for i in range(80):
        point = {"optimizer": "adam" if i % 2 else "sgd", "lr": float(10 ** rng.uniform(-4, -1))}
        if point["optimizer"] == "sgd":
            point["momentum"] = float(rng.uniform(0, 0.95))
        loss = (0.1 if point["optimizer"] == "adam" else 0.5) + 0.01 * rng.uniform()
        runs.append(fake_run(i, point, 0, loss))
    fields = ["optimizer", "lr", "momentum"]
    result = analyze(runs, fields, "house")
    shares = {s.name: s.share for s in result.importance}
    assert result.method == "ped-anova" and result.importance[0].name == "optimizer"
    assert shares == pytest.approx(pearson_divergence_by_hand(result.frame, fields, False))
    assert shares["momentum"] != pytest.approx(shares["optimizer"])  # not adam's mirror
    slice_ = result.slices["momentum"]  # the sgd runs only, no 'None' level
    assert sum(p.n for p in slice_.points) == 40 and all(p.mean > 0.45 for p in slice_.points)
    assert len(result.top) == 5 and all(t.point["optimizer"] == "adam" for t in result.top)
