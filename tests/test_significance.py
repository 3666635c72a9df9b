"""Each row against the best: honest under the null, able to find a real effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hypertui.engine.analysis.compare import compare
from hypertui.engine.analysis.significance import against_best, difference, versus_best
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


def near_alpha(rate: float, reps: int) -> bool:
    """The test is exact under the null: its false-call rate is alpha, within 3 standard
    errors of the simulation."""
    return abs(rate - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / reps)


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3, 5, 10])
@pytest.mark.parametrize("paired", [False, True])
def test_identical_configs_are_called_different_at_the_expected_rate(n, paired):
    # Eight identical configs; the best is picked from the data (the hard case).
    rate, _ = simulate(k=8, n=n, effect=0.0, reps=600, paired=paired, seed=n)
    assert near_alpha(rate, 600)
    rate2, _ = simulate(k=2, n=n, effect=0.0, reps=1500, paired=paired, seed=n)
    assert near_alpha(rate2, 1500)


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


def test_the_best_row_says_best_and_a_group_with_nothing_finished_has_no_test(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    make_sweep(store)
    runs = store.runs("5eed0001")
    comp = compare(runs, ["lr", "activation"], "house")
    rows = versus_best(comp, runs)
    assert rows[0].marker == "best"
    assert rows[-1] is None  # lr 2.0 diverged: nothing to test
    # Every group ran seeds 0 and 1: seeds are blocks of one pooled error term.
    assert all(r.test == "tukey, seed blocks" for r in rows[1:-2])


def test_rows_against_the_best_match_scipy_tukey_hsd():
    rng = np.random.default_rng(2)
    groups = [rng.normal(size=4), rng.normal(size=4) + 1, [1.0, 2.0, 1.5], [0.5, 0.9]]
    values = [dict(enumerate(g, 10 * i)) for i, g in enumerate(groups)]  # no shared seeds
    result = against_best(values)
    ref = stats.tukey_hsd(*groups)
    ci = ref.confidence_interval()
    for i, r in enumerate(result[1:], 1):
        assert r.test == "tukey" and r.p == pytest.approx(ref.pvalue[i, 0], abs=1e-6)
        assert (r.low, r.high) == pytest.approx((ci.low[i, 0], ci.high[i, 0]), abs=1e-6)


def grid(k: int, seeds: int, means, rng, seed_sd: float = 0.0):
    """k groups ranked best first, `seeds` runs each: group means plus unit noise (and a
    shift per seed shared by every group, as a shared initialisation would give)."""
    shift = rng.normal(size=seeds) * seed_sd
    x = np.asarray(means, float)[:, None] + rng.normal(size=(k, seeds)) + shift
    order = np.argsort(x.mean(axis=1), kind="stable")
    return [dict(enumerate(x[i])) for i in order], np.asarray(means, float)[order]


@pytest.mark.parametrize("seed_sd", [0.0, 2.0])
def test_two_seeds_tell_groups_ten_noise_sd_apart(seed_sd):
    # The study grid's shape: 324 groups of 2 seeds. A third of the groups sit at the best
    # mean, the others 10 or 20 noise-sd worse: those must be called different (each pair
    # alone has df = 1, and Holm over 52,326 pairs called none of them).
    rng = np.random.default_rng(3)
    means = 10.0 * (np.arange(324) % 3)
    values, true = grid(324, 2, means, rng, seed_sd)
    result = against_best(values)
    worse = [r for r, m in zip(result[1:], true[1:], strict=True) if m > 0]
    assert sum(r.tied is False for r in worse) / len(worse) >= 0.95
    same = [r for r, m in zip(result[1:], true[1:], strict=True) if m == 0]
    assert all(r.tied is True for r in same)


def test_a_comparison_without_an_error_term_says_too_few_seeds():
    one_each = against_best([{0: 1.0}, {0: 1.5}, {0: 3.0}])  # no group has two runs
    assert [r.marker for r in one_each[1:]] == ["too few seeds"] * 2
    assert all(r.tied is None for r in one_each[1:])


@pytest.mark.parametrize(
    "k, seeds, spread",  # 324 rows: a 7 s simulation, in the slow tier (make test < 4 min)
    [pytest.param(324, 2, 10.0, marks=pytest.mark.slow), (60, 3, 2.0), (60, 2, 300.0)],
)
def test_many_rows_p_values_are_close_to_the_exact_ones(k, seeds, spread):
    from hypertui.engine.analysis.significance import pooled_error

    rng = np.random.default_rng(k)
    values, _ = grid(k, seeds, spread * rng.random(k), rng)
    result = against_best(values)
    mse, df, _ = pooled_error(values)
    q = np.array([abs(r.diff) / math.sqrt(mse * 2 / seeds) * math.sqrt(2) for r in result[1:]])
    exact = stats.studentized_range.sf(q, k, df)
    shown = np.array([r.p for r in result[1:]])
    some = exact > 1e-12
    assert np.max(np.abs(shown[some] / exact[some] - 1)) < 0.02
    assert all((r.p < 0.05) == (r.tied is False) for r in result[1:])
