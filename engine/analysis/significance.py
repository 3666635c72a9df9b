"""Is a difference real? Each group of a comparison against the best, with honest p-values.

Against the best ("vs best"), every group shares one error term: the residual variance
pooled over all groups, with seeds as blocks when every group ran the same seeds (a seed
fixes the initial weights and the batch order, noise every config shares). Each pair alone
at 2 seeds has one degree of freedom, and seven of eleven seeded presets run 2 seeds: on a
grid of the study's shape (324 groups, 2 seeds), pairwise t-tests with Holm over all pairs
called none of the 216 rows 10 or 20 noise-sd worse than the best different from it.
Pooled, that grid has 323 degrees of freedom. The price is an assumption: groups share one
noise level.

The best row is chosen after looking at the data, so Dunnett's many-to-one test (a control
fixed in advance) is not enough: scipy.stats.dunnett against the best of 8 identical
configs (5 seeds) called some row different in 14% of 400 simulated sweeps, not 5%. The
largest difference from the best of identical groups is their range, which Tukey's
studentized range over all k groups bounds: each row is tested against the best at Tukey's
critical value (Tukey-Kramer for unequal sizes), which bounds the chance of any false call
at alpha whichever row turns out best (tests/test_significance.py checks it), with k - 1
tests instead of k(k - 1)/2. The interval of "row minus best" is Tukey's simultaneous
interval. A row not called different when the error term has fewer than MIN_DF degrees of
freedom is "too few seeds", not a tie.

`difference` (a paired or Welch t-test of two groups alone) serves the claim checks
(claims.py). The distributions come from scipy.stats.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from hypertui.engine.analysis.compare import Comparison, run_metrics
from hypertui.engine.core.records import RunRow

ALPHA = 0.05
# Fewer residual degrees of freedom cannot call a tie: Tukey's 95% critical value for 2
# groups is 1.6x its large-sample value at df 3, 2.2x at df 2 and 6.5x at df 1.
MIN_DF = 3
TOO_FEW = "too few seeds"


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
    test: str  # "best" for the best row itself, "tukey", "tukey, seed blocks" or TOO_FEW
    n: int  # this row's runs
    diff: float  # this row minus the best, in the metric's units
    low: float  # Tukey's simultaneous 95% interval of diff (NaN without an error term)
    high: float
    p: float  # Tukey's adjusted p over the k groups (NaN without an error term)
    tied: bool | None  # not distinguishable from the best; None: too few seeds to say
    df: int = 0  # degrees of freedom of the pooled error term

    @property
    def marker(self) -> str:
        """A short cell for tables: best, "=" tied with it, worse with its p, or too few
        seeds to tell."""
        if self.test == "best":
            return "best"
        if self.tied is None:
            return TOO_FEW
        if self.tied:
            return "="
        return "p<.001" if self.p < 0.001 else f"p {self.p:.1g}"  # never "p 0"


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


def seed_values(runs: list[RunRow], run_ids, metric: str) -> dict[tuple, float]:
    """A group's finished values of `metric` by replicate, (seed, fold): runs of two
    groups with one replicate pair (diverged and failed runs have none)."""
    ids = set(run_ids)
    return _values_by_seed([r for r in runs if r.id in ids], metric)


def _values_by_seed(runs: list[RunRow], metric: str) -> dict[tuple, float]:
    values = {}
    for run in runs:
        if run.status == "finished":
            v = run_metrics(run).get(metric)
            if v is not None and math.isfinite(v):
                values[run.replicate] = v
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


def against_best(values: list[dict], alpha: float = ALPHA) -> list[VersusBest | None]:
    """The same, from each group's values by seed; the first group is the best."""
    if not values or not values[0]:
        return [None] * len(values)
    k = sum(bool(v) for v in values)  # the groups the best was picked from
    mse, df, test = pooled_error(values)
    best = np.array(list(values[0].values()), float)
    rows = [i for i, v in enumerate(values[1:], 1) if v]
    n = np.array([len(values[i]) for i in rows], float)
    diff = np.array([np.mean(list(values[i].values())) for i in rows]) - best.mean()
    se = np.sqrt(mse * (1 / n + 1 / len(best)))
    if df >= 1 and rows:
        crit = tukey_critical(1 - alpha, k, df) / math.sqrt(2)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.abs(diff) / se  # over sqrt(2): the studentized range's scale
            # No spread at all: certain when the means differ, no difference otherwise.
            q = np.where(se == 0, np.where(diff == 0, 0.0, np.inf), q)
        p = tukey_sf(q * math.sqrt(2), k, df, crit * math.sqrt(2))
    else:
        crit, q, p = math.nan, np.full(len(rows), math.nan), np.full(len(rows), math.nan)
    out: list[VersusBest | None] = [None] * len(values)
    out[0] = VersusBest("best", len(best), 0.0, 0.0, 0.0, math.nan, True, df)
    for j, i in enumerate(rows):
        # Decided by the exact critical value, so the call and the interval always agree.
        tied = bool(q[j] <= crit) if df >= 1 else None
        if tied is not False and df < MIN_DF:
            tied = None  # not different, but the error term is too weak to call it a tie
        half = crit * se[j]
        out[i] = VersusBest(
            test if tied is not None else TOO_FEW,
            int(n[j]),
            float(diff[j]),
            float(diff[j] - half),
            float(diff[j] + half),
            float(p[j]),
            tied,
            df,
        )
    return out


@functools.lru_cache(maxsize=256)
def tukey_critical(level: float, k: int, df: int) -> float:
    """The studentized range's `level` point: a root-finding over numerical integrals
    (0.1-0.2 s), and a sweep's tables and simulations ask for the same few again."""
    return float(stats.studentized_range.ppf(level, k, df))


EXACT_SF = 48  # more distinct statistics than this are interpolated


def tukey_sf(q: np.ndarray, k: int, df: int, crit: float) -> np.ndarray:
    """The studentized range's survival function at each q (crit: its 95% point).

    scipy integrates it numerically, 2-18 ms a value on this machine's CPUs, 1-2 s for a
    324-group grid's rows. Those share k and df, the call is made on q against `crit`
    exactly, and p shows to one digit: beyond EXACT_SF distinct values, p is interpolated
    on the normal quantile scale (where the curve is near straight) between exact values
    at nodes dense up to 3 x crit and geometric beyond (1.1% at most relative error on a
    324-group grid; tests/test_significance.py bounds it).
    """
    finite = np.isfinite(q)
    out = np.where(finite, 1.0, 0.0)  # q is infinite only for a certain difference
    values = q[finite]
    if len(np.unique(values)) <= EXACT_SF:
        out[finite] = stats.studentized_range.sf(values, k, df)
        return out
    low, high = values.min(), values.max()
    nodes = np.linspace(low, min(high, 3 * crit), EXACT_SF)
    if high > 3 * crit:
        nodes = np.concatenate([nodes, np.geomspace(3 * crit, high, 17)[1:]])
    z = stats.norm.isf(np.clip(stats.studentized_range.sf(nodes, k, df), 1e-300, 1 - 1e-16))
    out[finite] = stats.norm.sf(np.interp(values, nodes, z))
    return out


def pooled_error(values: list[dict]) -> tuple[float, int, str]:
    """One residual variance over all groups: (mean square, its df, the design's name).

    When every group ran the same seeds (two or more), seeds are blocks: the residual of
    group + seed removes the noise a seed gives every config alike (initial weights, batch
    order). Otherwise the within-group variance, pooled. df = 0: no error term at all.
    """
    present = [v for v in values if v]
    seed_sets = {tuple(sorted(v)) for v in present}
    if len(present) >= 2 and len(seed_sets) == 1 and len(seeds := seed_sets.pop()) >= 2:
        x = np.array([[v[s] for s in seeds] for v in present], float)
        resid = x - x.mean(1, keepdims=True) - x.mean(0, keepdims=True) + x.mean()
        df = (x.shape[0] - 1) * (x.shape[1] - 1)
        return float((resid**2).sum() / df), df, "tukey, seed blocks"
    groups = [np.array(list(v.values()), float) for v in present]
    df = sum(len(g) - 1 for g in groups)
    if df == 0:
        return math.nan, 0, TOO_FEW
    return float(sum(((g - g.mean()) ** 2).sum() for g in groups) / df), df, "tukey"
