"""Each row against the best: honest under the null, able to find a real effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hypertui.engine.analysis.compare import compare
from hypertui.engine.analysis.significance import (
    against_best,
    difference,
    holm,
    pair_pvalues,
    versus_best,
)
from hypertui.engine.store.store import Store
from tests.fakes import make_sweep


def simulate(k: int, n: int, effect: float, reps: int, paired: bool, seed: int = 0):
    """Share of simulated sweeps where some row is called worse than the best, and where
    the truly worse group (index 1, `effect` standard deviations worse) is called worse."""
    rng = np.random.default_rng(seed)
    any_call = found = 0
    for _ in range(reps):
        x = rng.normal(size=(k, n))
        if paired:  # a seed shifts every config alike, as a shared initialisation would
            x += rng.normal(size=n) * 2
        x[1] += effect
        order = np.argsort(x.mean(axis=1), kind="stable")  # lower is better: rank like compare
        values = [
            dict(enumerate(x[i])) if paired else dict(enumerate(x[i], 100 * i)) for i in order
        ]
        result = against_best(values)
        calls = [r for r in result[1:] if r.tied is False]
        any_call += bool(calls)
        found += any(r.tied is False for r, i in zip(result, order, strict=True) if i == 1)
    return any_call / reps, found / reps


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 5, 10])
@pytest.mark.parametrize("paired", [False, True])
def test_identical_configs_are_rarely_called_different(n, paired):
    # Eight identical configs; the best is picked from the data (the hard case).
    rate, _ = simulate(k=8, n=n, effect=0.0, reps=600, paired=paired, seed=n)
    assert rate <= 0.05
    rate2, _ = simulate(k=2, n=n, effect=0.0, reps=1500, paired=paired, seed=n)
    assert rate2 <= 0.05


@pytest.mark.slow
@pytest.mark.parametrize("paired", [False, True])
def test_a_known_effect_is_found(paired):
    _, power = simulate(k=3, n=10, effect=2.0, reps=300, paired=paired)
    assert power >= 0.8


def test_difference_matches_scipy_welch_and_paired():
    a = {0: 1.0, 1: 1.2, 2: 0.9, 3: 1.4}
    b = {0: 0.5, 1: 0.8, 2: 0.7, 3: 0.6}
    paired = difference(a, b)
    ref = stats.ttest_rel(list(a.values()), list(b.values()))
    assert paired.test == "paired" and paired.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval()
    assert (paired.low, paired.high) == pytest.approx((ci.low, ci.high))
    welch = difference(a, {10 + k: v for k, v in b.items()})
    ref = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False)
    assert welch.test == "welch" and welch.p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval()
    assert (welch.low, welch.high) == pytest.approx((ci.low, ci.high))


def test_vectorised_pvalues_agree_with_pairwise():
    rng = np.random.default_rng(1)
    values = [dict(enumerate(rng.normal(size=3))) for _ in range(4)]
    values.append({7: 0.1, 8: 0.3})  # other seeds: Welch
    values.append({0: 0.2})  # one run: no test
    p = pair_pvalues(values)
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            d = difference(values[i], values[j])
            assert (math.isnan(p[i, j]) and math.isnan(d.p)) or p[i, j] == pytest.approx(d.p)


def test_holm_by_hand():
    assert list(holm([0.01, 0.04, 0.03, math.nan])[:3]) == pytest.approx([0.03, 0.06, 0.06])


def test_one_run_says_na_and_the_best_row_says_best(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    make_sweep(store)
    runs = store.runs("5eed0001")
    comp = compare(runs, ["lr", "activation"], "house")
    rows = versus_best(comp, runs)
    assert rows[0].marker == "best"
    assert rows[-1] is None  # lr 2.0 diverged: nothing to test
    assert all(r.test == "paired" for r in rows[1:-2])  # same seeds 0 and 1
    one = against_best([{0: 1.0, 1: 1.1}, {0: 2.0}])
    assert one[1].marker == "n/a" and one[1].tied is None and math.isnan(one[1].p)


def test_rows_against_the_best_match_the_pairwise_difference():
    rng = np.random.default_rng(2)
    best = dict(enumerate(rng.normal(size=4)))
    rows = [dict(enumerate(rng.normal(size=4) + 1)), {9: 1.0, 10: 2.0, 11: 1.5}, {0: 1.0}]
    result = against_best([best, *rows])
    for row, r in zip(rows, result[1:], strict=True):
        d = difference(row, best)
        assert r.test == d.test and r.diff == pytest.approx(d.diff)
        assert (math.isnan(r.low) and math.isnan(d.low)) or (r.low, r.high) == pytest.approx(
            (d.low, d.high)
        )
