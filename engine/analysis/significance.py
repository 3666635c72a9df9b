"""Is a difference real? Each group of a comparison against the best, with honest p-values.

Two groups are compared by a t-test: paired by seed when both ran exactly the same seeds
(two or more), since a seed fixes the initial weights and the batch order and so removes
noise the two share; Welch's unequal-variance test otherwise. n = 1 on either side gives
no test ("n/a"), never a p-value.

The best row is chosen after looking at the data, so testing the others against it with a
correction over the k - 1 rows alone is not enough: with 8 identical configs and 5 seeds,
simulation called a row "worse than the best" in about 9% of sweeps instead of 5%. Holm's
correction is therefore applied over every pair of groups, which bounds the chance of any
false call at alpha whichever row turns out best (tests/test_significance.py checks it).
The t distribution comes from scipy.stats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from hypertui.engine.analysis.compare import Comparison, run_metrics
from hypertui.engine.core.records import RunRow

ALPHA = 0.05


@dataclass(frozen=True)
class Difference:
    """One group's mean minus another's, with the test that judged it."""

    test: str  # "paired" | "welch" | "n/a"
    n: int  # pairs for a paired test, else the smaller group's size
    diff: float  # mean(a) - mean(b)
    low: float  # confidence interval of diff (NaN when n/a)
    high: float
    p: float  # two-sided, uncorrected (NaN when n/a)


@dataclass(frozen=True)
class VersusBest:
    test: str  # "best" for the best row itself, else as in Difference
    n: int
    diff: float  # this row minus the best, in the metric's units
    low: float
    high: float
    p: float  # Holm-adjusted over all pairs of groups
    tied: bool | None  # not distinguishable from the best; None when n/a

    @property
    def marker(self) -> str:
        """A short cell for tables: best, "=" tied with it, worse with its p, or n/a."""
        if self.test == "best":
            return "best"
        if self.tied is None:
            return "n/a"
        return "=" if self.tied else f"p {self.p:.1g}"


def difference(a: dict, b: dict, confidence: float = 0.95) -> Difference:
    """mean(a) - mean(b); a and b map a pairing key (a seed, or seed and point) to a value."""
    va, vb = np.array(list(a.values()), float), np.array(list(b.values()), float)
    if len(va) == 0 or len(vb) == 0:
        return Difference("n/a", 0, math.nan, math.nan, math.nan, math.nan)
    diff = float(va.mean() - vb.mean())
    if set(a) == set(b) and len(a) >= 2:
        d = np.array([a[k] - b[k] for k in a], float)
        se = d.std(ddof=1) / math.sqrt(len(d))
        return _t(d.mean(), se, len(d) - 1, "paired", len(d), confidence)
    if len(va) < 2 or len(vb) < 2:
        return Difference("n/a", min(len(va), len(vb)), diff, math.nan, math.nan, math.nan)
    se, df = _welch(va.var(ddof=1), len(va), vb.var(ddof=1), len(vb))
    return _t(diff, se, df, "welch", min(len(va), len(vb)), confidence)


def _welch(var_a: float, n_a: int, var_b: float, n_b: int) -> tuple[float, float]:
    """Standard error and Welch-Satterthwaite degrees of freedom."""
    qa, qb = var_a / n_a, var_b / n_b
    se2 = qa + qb
    if se2 == 0:
        return 0.0, float(n_a + n_b - 2)
    return math.sqrt(se2), se2**2 / (qa**2 / (n_a - 1) + qb**2 / (n_b - 1))


def _t(diff, se, df, test, n, confidence: float = 0.95) -> Difference:
    if se == 0:  # identical values on both sides: certain, or no difference at all
        return Difference(test, n, float(diff), diff, diff, 1.0 if diff == 0 else 0.0)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    p = 2 * stats.t.sf(abs(diff) / se, df)
    return Difference(test, n, float(diff), diff - half, diff + half, float(p))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment (NaN entries stay NaN and do not count)."""
    p = np.asarray(pvalues, float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled) if m else scaled
    return adjusted


def pair_pvalues(values: list[dict[int, float]]) -> np.ndarray:
    """Two-sided p of every pair (i < j) as a k x k matrix, NaN where no test applies.

    The same tests as `difference`, vectorised: a 324-group grid has 52,326 pairs.
    """
    k = len(values)
    n = np.array([len(v) for v in values], float)
    arrays = [np.array(list(v.values()), float) for v in values]
    mean = np.array([a.mean() if len(a) else np.nan for a in arrays])
    var = np.array([a.var(ddof=1) if len(a) > 1 else np.nan for a in arrays])
    with np.errstate(divide="ignore", invalid="ignore"):
        q = var / n
        se2 = q[:, None] + q[None, :]
        df = se2**2 / ((q**2 / (n - 1))[:, None] + (q**2 / (n - 1))[None, :])
        df = np.where(se2 == 0, n[:, None] + n[None, :] - 2, df)
        diff = mean[:, None] - mean[None, :]
        p = _p(diff, np.sqrt(se2), df)
        # Groups that ran exactly the same seeds (two or more) are compared pair by pair.
        classes: dict[tuple, list[int]] = {}
        for i, v in enumerate(values):
            if len(v) >= 2:
                classes.setdefault(tuple(sorted(v)), []).append(i)
        for seeds, members in classes.items():
            x = np.array([[values[i][s] for s in seeds] for i in members])
            d = x[:, None, :] - x[None, :, :]
            se = d.std(axis=2, ddof=1) / math.sqrt(len(seeds))
            idx = np.ix_(members, members)
            p[idx] = _p(d.mean(axis=2), se, np.full(se.shape, len(seeds) - 1.0))
    p[np.tril_indices(k)] = np.nan
    return p


def _p(diff: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    t = np.abs(diff) / se
    p = 2 * stats.t.sf(t, df)
    # Zero spread on both sides: certain when the means differ, no difference otherwise.
    return np.where(se == 0, np.where(diff == 0, 1.0, 0.0), p)


def seed_values(runs: list[RunRow], run_ids, metric: str) -> dict[int, float]:
    """A group's finished values of `metric` by seed (diverged and failed runs have none)."""
    ids = set(run_ids)
    return _values_by_seed([r for r in runs if r.id in ids], metric)


def _values_by_seed(runs: list[RunRow], metric: str) -> dict[int, float]:
    values = {}
    for run in runs:
        if run.status == "finished":
            v = run_metrics(run).get(metric)
            if v is not None and math.isfinite(v):
                values[run.seed] = v
    return values


def versus_best(
    comp: Comparison, runs: list[RunRow], metric: str | None = None, alpha: float = ALPHA
) -> list[VersusBest | None]:
    """One entry per group of `comp` (same order): the test against the best group.

    The best is the comparison's first group (ranked by the main metric); None for groups
    with no finished run.
    """
    metric = metric or comp.main
    by_id = {r.id: r for r in runs}
    return against_best(
        [_values_by_seed([by_id[i] for i in g.run_ids], metric) for g in comp.groups], alpha
    )


def against_best(values: list[dict[int, float]], alpha: float = ALPHA) -> list[VersusBest | None]:
    """The same, from each group's values by seed; the first group is the best."""
    if not values or not values[0]:
        return [None] * len(values)
    k = len(values)
    p = pair_pvalues(values)
    upper = np.triu_indices(k, 1)
    adjusted = np.full((k, k), np.nan)
    adjusted[upper] = holm(p[upper])
    intervals = _intervals_against(values[0], values[1:])
    out: list[VersusBest | None] = [
        VersusBest("best", len(values[0]), 0.0, 0.0, 0.0, math.nan, True)
    ]
    for i, (vals, (test, n, diff, low, high)) in enumerate(
        zip(values[1:], intervals, strict=True), 1
    ):
        if not vals:
            out.append(None)
            continue
        p_adj = float(adjusted[0, i])
        tied = None if test == "n/a" else bool(p_adj >= alpha)
        out.append(VersusBest(test, n, diff, low, high, p_adj, tied))
    return out


def _intervals_against(best: dict, rows: list[dict], confidence: float = 0.95) -> list[tuple]:
    """Each row minus the best: (test, n, diff, low, high), as `difference` computes them,
    with one vectorised t quantile for all rows (a 324-group grid has 323 rows)."""
    b = np.array(list(best.values()), float)
    parts = []
    for row in rows:
        x = np.array(list(row.values()), float)
        if len(x) == 0:
            parts.append(("n/a", 0, math.nan, 0.0, 1.0))
        elif set(row) == set(best) and len(row) >= 2:
            d = np.array([row[s] - best[s] for s in best])
            parts.append(
                ("paired", len(d), d.mean(), d.std(ddof=1) / math.sqrt(len(d)), len(d) - 1)
            )
        elif len(x) < 2 or len(b) < 2:
            parts.append(("n/a", min(len(x), len(b)), x.mean() - b.mean(), 0.0, 1.0))
        else:
            se, df = _welch(x.var(ddof=1), len(x), b.var(ddof=1), len(b))
            parts.append(("welch", min(len(x), len(b)), x.mean() - b.mean(), se, df))
    if not parts:
        return []
    df = np.array([p[4] for p in parts], float)
    half = stats.t.ppf(0.5 + confidence / 2, df) * np.array([p[3] for p in parts], float)
    return [
        (t, n, float(d), math.nan, math.nan) if t == "n/a" else (t, n, float(d), d - h, d + h)
        for (t, n, d, _, _), h in zip(parts, half, strict=True)
    ]
