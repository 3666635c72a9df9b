"""The scale a metric is read on: linear, log or rank, and which one a sweep gets by default.

A sweep with a few finite blow-ups (most runs near 0.2, a few at 1e3) read on the linear
scale is read on the blow-ups: a mean over a level is pulled to tens by one run, its
interval spans most of the range, and a claim like "rmsprop < sgd" is decided by which
side had the blow-ups. On the log scale a blow-up is one large value among others (means
are geometric, intervals are multiplicative and stay above 0); on the rank scale it is
simply the worst run. The default is log when every value is positive and they span more
than LOG_SPAN (two orders of magnitude), linear otherwise; the text always says which.

Values are read on the scale (`to_scale`) and shown back in the metric's units where that
means something (`shown`: exp for log, a geometric mean); ranks are shown as ranks, 0 for
the sweep's lowest value and 1 for its highest. An interval on the linear scale is clipped
to the metric's range (`bounds`): an MSE's mean is never below 0, an accuracy's never above 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hypertui.engine.analysis.export import fmt
from hypertui.engine.core.errors import ConfigError

SCALES = ("linear", "log", "rank")
LOG_SPAN = 100.0  # max / min beyond which the default is the log scale


def bounds(metric: str, losses: Sequence[str] = ()) -> tuple[float, float]:
    """The range a metric's values can take, for clipping intervals.

    `losses`: the sweep's loss functions; a Gaussian NLL (val_nll, and the loss itself)
    goes below 0, every other loss here does not."""
    name = metric.removeprefix("best_")
    if name.endswith("acc"):
        return 0.0, 1.0
    if name.endswith(("mse", "_var")) or name in ("duration_s", "epochs_done"):
        return 0.0, math.inf
    if name.endswith("loss") and "gaussian_nll" not in losses:
        return 0.0, math.inf
    return -math.inf, math.inf


def log_possible(values: Sequence[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0


def choose(values: Sequence[float], metric: str, asked: str | None = None) -> tuple[str, str]:
    """(scale, the line that says which and why). `asked`: the user's choice, or None for
    the default. Log on values at or below 0 is a ConfigError naming the smallest."""
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (math.nan, math.nan)
    if asked is not None and asked not in SCALES:
        raise ConfigError(f"scale {asked!r}: one of {', '.join(SCALES)}")
    if asked == "log" and not log_possible(finite):
        raise ConfigError(
            f"scale log: {metric} has values at or below 0 (smallest {fmt(lo)}); use linear or rank"
        )
    span = hi / lo if finite and lo > 0 else math.nan
    if asked is None:
        scale = "log" if span > LOG_SPAN else "linear"
        why = (
            f"{metric} spans {fmt(lo, 3)} to {fmt(hi, 3)}, {math.log10(span):.1f} orders of "
            "magnitude"
            if scale == "log"
            else "the default"
        )
    else:
        scale, why = asked, "asked"
    return scale, f"scale: {scale} ({why}): {MEANING[scale].format(metric=metric)}"


MEANING = {
    "linear": "means in {metric}'s units",
    "log": "geometric means, intervals on the log scale",
    "rank": "mean ranks, 0 = the sweep's lowest {metric}, 1 = its highest",
}


def to_scale(values: Sequence[float], scale: str) -> np.ndarray:
    """Values on the scale; NaN stays NaN (and out of the ranks)."""
    x = np.asarray(values, float)
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)
    if scale == "rank":
        from scipy import stats  # not at import: claims load with every preset

        out = np.full(len(x), math.nan)
        ok = np.isfinite(x)
        n = int(ok.sum())
        if n:
            out[ok] = (stats.rankdata(x[ok]) - 1) / max(n - 1, 1)
        return out
    return x


def shown(value: float, scale: str) -> float:
    """A value on the scale back in what the table shows (the metric's units for log)."""
    return math.exp(value) if scale == "log" and math.isfinite(value) else value


def interval(
    mean: float, low: float, high: float, scale: str, limits: tuple[float, float]
) -> tuple[float, float, float]:
    """A mean and its interval on the scale, as shown: exp'd for log, clipped to the metric's
    range for linear (a mean of values that cannot go below 0 does not either)."""
    if scale == "log":
        return shown(mean, scale), shown(low, scale), shown(high, scale)
    if scale == "rank":
        limits = (0.0, 1.0)
    lo, hi = limits
    return mean, _clip(low, lo, hi), _clip(high, lo, hi)


def _clip(value: float, lo: float, hi: float) -> float:
    return value if math.isnan(value) else min(hi, max(lo, value))
