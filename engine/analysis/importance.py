"""Which swept fields matter for a metric: importance, slices, pivots and the top configs.

Importance has two methods, chosen by the shape of the sweep, and says which it used:

- A complete grid (every combination of the swept values has a run) gets an exact
  variance decomposition of its cell means, the functional ANOVA of a balanced design:
  each field's main effect, the largest two-way interaction, the remaining interactions,
  and the share due to seeds (the mean within-cell variance). The parts add up to the
  variance of the runs around the grand mean exactly when every cell has the same number
  of seeds.
- Anything else (random search, an incomplete grid) gets a PED-ANOVA-style score
  (Watanabe et al., 2023, Optuna's default importance since 5.0) with histograms in place
  of Parzen estimators: how far the distribution of a field's values among the best 10%
  of points (at least 3) is from its distribution among all points (Pearson divergence).
  It works from a few dozen trials; the result states n.

The metric is read on a scale (engine/analysis/scale.py): linear, log or rank, log by
default when the values span more than two orders of magnitude (a few finite blow-ups
would otherwise decide every mean); the result says which. Slice means, intervals, pivot
cells and the top configs' means are shown in the metric's units (geometric means on the
log scale) or as ranks, and a linear interval never leaves the metric's range.

Diverged runs count at the worst finite value of the sweep: they are the worst outcome,
and leaving them out would hide the field that caused them. A point with a diverged run
ranks after every point without one among the top configs, as in halving
(engine/core/ranking.py). Failed runs are left out.
Everything is deterministic: the same store gives the same numbers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from hypertui.engine.analysis import scale as scales
from hypertui.engine.analysis.compare import run_metrics
from hypertui.engine.analysis.export import cell
from hypertui.engine.core.objective import Objective, guess_higher, objective
from hypertui.engine.core.ranking import ranked, with_worst
from hypertui.engine.core.records import RunRow

TOP_SHARE = 0.1  # PED-ANOVA's gamma: the best 10% of points
MIN_TOP = 3
MAX_LEVELS = 8  # a numeric field with more distinct values is binned


@dataclass(frozen=True)
class Share:
    name: str  # a field, "a × b" for an interaction, "seeds", "other interactions"
    kind: str  # main | interaction | seeds | other
    share: float  # fraction of the total, 0..1


@dataclass(frozen=True)
class SlicePoint:
    label: str  # the field's value (or bin) as shown
    x: float | None  # numeric position for charts, None for categories
    mean: float
    low: float  # confidence interval of the mean (NaN with one value)
    high: float
    n: int  # values the interval rests on


@dataclass(frozen=True)
class Slice:
    field: str
    points: list[SlicePoint]
    log_x: bool  # the field's values are log-spaced
    ci_over: str  # "seeds" or "points"


@dataclass(frozen=True)
class TopConfig:
    point: dict[str, Any]
    mean: float
    n: int


@dataclass(frozen=True)
class Analysis:
    metric: str
    higher_is_better: bool
    swept: list[str]
    method: str  # "grid" | "ped-anova" | "none"
    method_text: str  # one line: which method, on how many runs or points
    n_runs: int  # runs that entered (finished, plus diverged at the worst value)
    n_diverged: int
    importance: list[Share]
    slices: dict[str, Slice]
    top: list[TopConfig]
    frame: pd.DataFrame = field(repr=False)  # one row per run: levels, seed, value (scaled)
    scale: str = "linear"  # linear | log | rank: what `frame`'s values are
    scale_text: str = ""  # one line: the scale, why, and what the numbers shown are
    limits: tuple[float, float] = (-math.inf, math.inf)  # the metric's range (clipping)
    scales: tuple[str, ...] = ("linear", "rank")  # the scales these values allow, in order

    @property
    def value_name(self) -> str:
        """What a mean shown is: "val_mse", "val_mse geo. mean" or "val_mse mean rank"."""
        return self.metric + {"log": " geo. mean", "rank": " mean rank"}.get(self.scale, "")

    def shown(self, mean: float, low: float = math.nan, high: float = math.nan):
        """A mean (and interval) of scaled values as shown: (mean, low, high)."""
        return scales.interval(mean, low, high, self.scale, self.limits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "method": self.method,
            "method_text": self.method_text,
            "scale": self.scale,
            "scale_text": self.scale_text,
            "n_runs": self.n_runs,
            "n_diverged": self.n_diverged,
            "importance": [s.__dict__ for s in self.importance],
            "slices": {
                f: {
                    "log_x": s.log_x,
                    "ci_over": s.ci_over,
                    "points": [_nan_none(p.__dict__) for p in s.points],
                }
                for f, s in self.slices.items()
            },
            "top": [t.__dict__ for t in self.top],
        }


def _nan_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _levels(values: list[Any]) -> tuple[list[str], dict[str, float | None], bool]:
    """Labels in display order (numbers ascending, else first seen), x positions, log flag.

    A numeric field with more than MAX_LEVELS distinct values (a random axis) is cut into
    equal-width bins, in log space when its values are log-spaced.
    """
    distinct = list(dict.fromkeys(_cells(values)))
    numeric = all(_is_number(v) for v in values)
    if not numeric:
        return [str(d) for d in distinct], {str(d): None for d in distinct}, False
    lo, hi = min(values), max(values)
    log = lo > 0 and hi / lo >= 10
    if len(distinct) <= MAX_LEVELS:
        ordered = sorted(set(values))
        return [str(cell(v)) for v in ordered], {str(cell(v)): float(v) for v in ordered}, log
    edges = _edges(lo, hi, log, len(values))
    labels = [f"{edges[i]:.2g}–{edges[i + 1]:.2g}" for i in range(len(edges) - 1)]
    xs = [math.sqrt(a * b) if log else (a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    return labels, dict(zip(labels, xs, strict=True)), log


def _edges(lo: float, hi: float, log: bool, n: int) -> np.ndarray:
    bins = int(min(MAX_LEVELS, max(3, round(math.sqrt(n)))))
    if log:
        return np.exp(np.linspace(math.log(lo), math.log(hi), bins + 1))
    return np.linspace(lo, hi, bins + 1)


def _label_of(values: list[Any], labels: list[str], log: bool) -> list[str]:
    if len(labels) and "–" in labels[0] and all(_is_number(v) for v in values):
        edges = _edges(min(values), max(values), log, len(values))
        idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(labels) - 1)
        return [labels[i] for i in idx]
    return _cells(values)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _cells(values: list[Any]) -> list[str]:
    """Each value's table text; a grid repeats few values, so each is formatted once."""
    cache: dict[Any, str] = {}
    out = []
    for v in values:
        key = (type(v), _hashable(v))
        if key not in cache:
            cache[key] = str(cell(v))
        out.append(cache[key])
    return out


def build_frame(
    runs: list[RunRow], swept: list[str], metric: str, higher_is_better: bool
) -> tuple[pd.DataFrame, dict[str, tuple[list[str], dict, bool]], int]:
    """One row per usable run: each swept field's level label, the seed and the value."""
    usable = []
    for run in sorted(runs, key=lambda r: r.idx):  # one order, so one rounding, every time
        value = run_metrics(run).get(metric) if run.status == "finished" else None
        if run.status == "finished" and value is not None and math.isfinite(value):
            usable.append((run, value))
        elif run.status == "diverged":
            usable.append((run, None))
    values = with_worst([v for _, v in usable], higher_is_better)
    n_diverged = sum(v is None for _, v in usable)
    levels = {}
    columns: dict[str, list[Any]] = {}
    for f in swept:
        raw = [r.point.get(f) for r, _ in usable]
        # a field a run's point lacks was not drawn there (momentum beside adam): no level
        # of it, a missing cell, so that it is judged where it was drawn and nowhere else
        drawn = [v for v in raw if v is not None]
        labels, xs, log = _levels(drawn) if drawn else ([], {}, False)
        levels[f] = (labels, xs, log)
        labelled = iter(_label_of(drawn, labels, log))
        columns[f] = [next(labelled) if v is not None else None for v in raw]
    keys = [tuple(_hashable(r.point.get(f)) for f in swept) for r, _ in usable]
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    columns["point"] = [ids[k] for k in keys]  # one id per distinct swept point
    # what repeats a config: its seed, and its fold under cross-validation
    columns["seed"] = [r.replicate if r.folds > 1 else r.seed for r, _ in usable]
    columns["run"] = [r.id for r, _ in usable]
    columns["finished"] = [v is not None for _, v in usable]
    columns["value"] = values
    frame = pd.DataFrame(columns)
    for f in swept:  # categorical: groupby keeps the display order and empty cells
        frame[f] = pd.Categorical(frame[f], categories=levels[f][0])
    return frame, levels, n_diverged


def analyze(
    runs: list[RunRow],
    swept: list[str],
    goal: str | Objective,
    metric: str | None = None,
    top_k: int = 5,
    scale: str | None = None,
) -> Analysis:
    """`goal`: the sweep's problem (one of ours) or its Objective; `scale`: linear, log or
    rank; None picks one (scale.choose) and says why."""
    goal = objective(goal, runs)
    main, higher = goal.main, goal.higher
    metric = metric or main
    if metric != main:  # losses, MSE and times: lower is better; accuracies: higher
        higher = guess_higher(metric)
    swept = [f for f in swept if len({cell(r.point.get(f)) for r in runs}) > 1] or []
    frame, levels, n_diverged = build_frame(runs, swept, metric, higher)
    values = frame["value"].tolist()
    scale, scale_text = scales.choose(values, metric, scale)
    allowed = tuple(s for s in scales.SCALES if s != "log" or scales.log_possible(values))
    frame["value"] = scales.to_scale(frame["value"].to_numpy(float), scale)
    losses = sorted({str(r.config.get("loss", "")) for r in runs})
    limits = scales.bounds(metric, losses)
    n = len(frame)
    if not swept or n < 2:
        method, text, importance = "none", "nothing varies, or fewer than 2 runs", []
    elif not frame["finished"].any():  # every value is the worst of none: NaN
        method, text, importance = "none", f"no run finished with a finite {metric}", []
    elif _complete(frame, swept, levels):
        method = "grid"
        importance = grid_decomposition(frame, swept)
        cells = math.prod(len(levels[f][0]) for f in swept)
        text = f"exact variance decomposition of a complete grid: {cells} cells, {n} runs"
    else:
        method = "ped-anova"
        importance, points = ped_anova(frame, swept, higher)
        text = (
            f"PED-ANOVA (histograms; top {TOP_SHARE:.0%}, at least {MIN_TOP}, vs all): "
            f"{points} points, {n} runs"
        )
    if n_diverged and frame["finished"].any():  # else there is no worst value
        text += f"; {n_diverged} diverged counted at the worst value"
    shown = functools.partial(scales.interval, scale=scale, limits=limits)
    slices = {f: slice_of(frame, f, levels[f], shown) for f in swept}
    top = top_configs(runs, frame, swept, higher, top_k, lambda v: shown(v, v, v)[0])
    return Analysis(
        metric, higher, swept, method, text, n, n_diverged, importance, slices, top, frame,
        scale, scale_text, limits, allowed,
    )  # fmt: skip


def top_configs(
    runs, frame: pd.DataFrame, swept, higher: bool, k: int, shown=lambda v: v
) -> list[TopConfig]:
    """The k best points by mean over finished runs; a point with a diverged run ranks after
    every point without one (engine/core/ranking.py: halving's policy too). `shown`: a
    mean of the frame's (scaled) values as shown."""
    if frame.empty:
        return []
    scores = {
        pid: [v if ok else math.nan for v, ok in zip(g["value"], g["finished"], strict=True)]
        for pid, g in frame.groupby("point", sort=False)
    }
    first = frame.groupby("point")["run"].first()
    by_id = {r.id: r for r in runs}
    out = []
    for pid in ranked(scores, higher):
        finished = [v for v in scores[pid] if math.isfinite(v)]
        if finished and len(out) < k:  # a point whose every run diverged has no mean
            point = {f: by_id[first[pid]].point.get(f) for f in swept}
            out.append(TopConfig(point, shown(sum(finished) / len(finished)), len(finished)))
    return out


def _complete(frame: pd.DataFrame, swept: list[str], levels) -> bool:
    if any("–" in (levels[f][0] or [""])[0] for f in swept):
        return False  # binned: a random axis
    if frame[swept].isna().any().any():
        return False  # a field some runs did not draw: not a grid
    cells = frame.groupby(swept, observed=True).size()
    return len(cells) == math.prod(len(levels[f][0]) for f in swept)


def grid_decomposition(frame: pd.DataFrame, swept: list[str]) -> list[Share]:
    """Main effects, the largest two-way interaction, other interactions and seeds.

    The cell means form an array Y with one axis per field. A field's main effect is the
    variance of its marginal means, an interaction a × b the variance of the two-way
    marginal left after both main effects; with equal weight per cell these parts sum to
    the variance of Y (Sobol/ANOVA decomposition of a balanced grid). Seeds are the mean
    within-cell variance (ddof 0), so the total is the runs' variance around the mean.
    """
    shape = [len(frame[f].cat.categories) for f in swept]
    cell_index = np.ravel_multi_index([frame[f].cat.codes.to_numpy() for f in swept], shape)
    values = frame["value"].to_numpy(float)
    size = math.prod(shape)
    y_flat = _means(cell_index, values, size)
    within = _means(cell_index, (values - y_flat[cell_index]) ** 2, size)  # ddof 0
    y = y_flat.reshape(shape)
    mu = y.mean()
    total_between = float(((y - mu) ** 2).mean())
    seeds = float(np.nanmean(within))
    total = total_between + seeds
    if total <= 0:
        return [Share(f, "main", 0.0) for f in swept]
    k = len(swept)
    axes = range(k)
    marg = {i: y.mean(axis=tuple(a for a in axes if a != i)) - mu for i in axes}
    mains = {swept[i]: float((marg[i] ** 2).mean()) for i in axes}
    inter = {}
    for i in axes:
        for j in range(i + 1, k):
            m = y.mean(axis=tuple(a for a in axes if a not in (i, j))) - mu
            resid = m - marg[i][:, None] - marg[j][None, :]
            inter[f"{swept[i]} × {swept[j]}"] = float((resid**2).mean())
    shares = sorted((Share(f, "main", v / total) for f, v in mains.items()), key=lambda s: -s.share)
    if inter:
        name, value = max(inter.items(), key=lambda kv: kv[1])
        shares.append(Share(name, "interaction", value / total))
        rest = total_between - sum(mains.values()) - value
        if k > 2 or len(inter) > 1:
            shares.append(Share("other interactions", "other", max(0.0, rest) / total))
    shares.append(Share("seeds", "seeds", seeds / total))
    return shares


def ped_anova(frame: pd.DataFrame, swept: list[str], higher: bool) -> tuple[list[Share], int]:
    """Pearson divergence between each field's level distribution among the best points
    and among all points, normalised to sum to 1. Points are seed means. A conditional
    field is scored among the points that drew it (NaN where fewer than 2 x MIN_TOP did)."""
    points = frame.groupby("point").agg({**{f: "first" for f in swept}, "value": "mean"})
    n = len(points)
    if n < 2 * MIN_TOP:
        return [Share(f, "main", math.nan) for f in swept], n
    scores = {}
    for f in swept:
        drawn = points[points[f].notna()]  # a conditional field: the points that drew it
        if len(drawn) < 2 * MIN_TOP:
            scores[f] = math.nan
            continue
        n_top = max(MIN_TOP, math.ceil(TOP_SHARE * len(drawn)))
        top = drawn[drawn["value"].rank(method="first", ascending=not higher) <= n_top]
        p_all = drawn[f].value_counts(normalize=True, sort=False)
        p_top = top[f].value_counts(normalize=True, sort=False).reindex(p_all.index, fill_value=0)
        keep = p_all > 0
        scores[f] = float((p_all[keep] * (p_top[keep] / p_all[keep] - 1) ** 2).sum())
    total = sum(v for v in scores.values() if not math.isnan(v))
    shares = [Share(f, "main", s / total if total > 0 else 0.0) for f, s in scores.items()]
    return sorted(shares, key=lambda s: (math.isnan(s.share), -s.share)), n


def slice_of(
    frame: pd.DataFrame, name: str, level: tuple[list[str], dict, bool], shown=None
) -> Slice:
    """The metric against one field's values, the other fields averaged over.

    With two or more seeds the interval is over seeds: each seed's mean at that value is
    one observation. With one seed it is over the points at that value. `shown` maps a
    mean and interval of the frame's (scaled) values to what is shown (scale.interval).
    """
    labels, xs, log = level
    frame = frame[frame[name].notna()]  # the runs that drew it (a conditional field)
    codes = frame[name].cat.codes.to_numpy()
    seed_codes, seed_values = pd.factorize(frame["seed"])
    values = frame["value"].to_numpy(float)
    n_levels, n_seeds = len(labels), len(seed_values)
    if n_seeds > 1:  # one observation per seed: its mean over the other fields
        obs = _means(codes * n_seeds + seed_codes, values, n_levels * n_seeds)
        obs = obs.reshape(n_levels, n_seeds)
    else:  # one observation per run
        obs = np.full((n_levels, len(values)), np.nan)
        obs[codes, np.arange(len(values))] = values
    n = (~np.isnan(obs)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(np.nan_to_num(obs), axis=1) / np.maximum(n, 1), np.nan)
        dev = np.where(np.isnan(obs), 0.0, obs - mean[:, None])
        sem = np.sqrt((dev**2).sum(axis=1) / np.maximum(n - 1, 1) / np.maximum(n, 1))
        half = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sem, np.nan)
    shown = shown or (lambda m, lo, hi: (m, lo, hi))
    out = [
        SlicePoint(labels[i], xs.get(labels[i]),
                   *map(float, shown(mean[i], mean[i] - half[i], mean[i] + half[i])), int(n[i]))
        for i in range(n_levels) if n[i]
    ]  # fmt: skip
    return Slice(name, out, log, "seeds" if n_seeds > 1 else "points")


def _means(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Mean of `values` per index (NaN where an index has none), by bincount."""
    sums = np.bincount(index, weights=values, minlength=size)
    counts = np.bincount(index, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


@dataclass(frozen=True)
class Pivot:
    rows_field: str
    cols_field: str
    rows: list[str]
    cols: list[str]
    values: list[list[float]]  # cell means, NaN where no run


def pivot(analysis: Analysis, rows_field: str, cols_field: str) -> Pivot:
    """Mean of the metric for each pair of values of two fields (others averaged over)."""
    frame = analysis.frame
    table = frame.pivot_table(
        index=rows_field, columns=cols_field, values="value", aggfunc="mean", observed=False
    )
    rows = [str(r) for r in frame[rows_field].cat.categories]
    cols = [str(c) for c in frame[cols_field].cat.categories]
    table = table.reindex(index=rows, columns=cols)
    values = [[analysis.shown(v)[0] for v in row] for row in table.to_numpy(dtype=float).tolist()]
    return Pivot(rows_field, cols_field, rows, cols, values)
