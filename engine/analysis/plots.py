"""What the Analysis screen plots, as numbers: the metric against one numeric swept field
(a point per run, so the spread over seeds shows, and a mark per config's mean) and the top
configs across every swept field (parallel coordinates). Pure functions of an Analysis (its
frame, on its scale) and the runs it read; the screen only draws them.

A field's x axis is logarithmic where the preset drew it log-uniform (the sweep's stored
TOML says so), linear where it drew it uniform, and otherwise as its slice reads it: log when
every value is above 0 and they span a decade or more (importance._levels), so a grid of
learning rates or batch sizes is evenly spread as it was chosen.

Runs left out are counted, never silently dropped: diverged runs have no value to place
(the importance counts them at the worst value; a plot would show an invented point), nor
do finished runs without a finite metric, failed or unfinished runs.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from typing import Any

from hypertui.engine.analysis.export import cell
from hypertui.engine.analysis.importance import Analysis, top_configs
from hypertui.engine.core.records import RunRow

RANDOM_KINDS = ("log_uniform", "uniform")  # engine/sweeps/axes.py's (analysis sits below it)
TOP_LINES = 10  # configs drawn in parallel coordinates: more lines blur at 80 columns


def random_kinds(preset_toml: str) -> dict[str, str]:
    """{field: "log_uniform" | "uniform"} for each random axis of a sweep's stored preset
    ({} for a grid, a script's runs or text that does not parse)."""
    try:
        table = tomllib.loads(preset_toml).get("sweep", {})
    except tomllib.TOMLDecodeError:
        return {}
    if not isinstance(table, dict):
        return {}
    return {
        name: next(iter(spec))
        for name, spec in table.items()
        if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANDOM_KINDS
    }


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def numeric_fields(analysis: Analysis, runs: list[RunRow]) -> list[str]:
    """The swept fields whose every value (over the runs analysed) is a finite number."""
    by_id = {r.id: r for r in runs}
    ids = analysis.frame["run"].tolist() if not analysis.frame.empty else []
    return [
        f for f in analysis.swept if ids and all(_is_number(by_id[i].point.get(f)) for i in ids)
    ]


def left_out(analysis: Analysis, runs: list[RunRow]) -> str:
    """One line naming the runs no plot shows ("" when every run is plotted)."""
    finished = {r.id for r in runs if r.status == "finished"}
    in_frame = set(analysis.frame["run"]) if not analysis.frame.empty else set()
    no_value = len(finished - in_frame)
    others = len(runs) - len(finished) - analysis.n_diverged
    parts = [
        f"{analysis.n_diverged} diverged" if analysis.n_diverged else "",
        f"{no_value} finished without a finite {analysis.metric}" if no_value else "",
        f"{others} failed or unfinished" if others else "",
    ]
    parts = [p for p in parts if p]
    return "not plotted: " + ", ".join(parts) if parts else ""


def log_axis(analysis: Analysis, field: str, values: list[float], kinds: dict[str, str]):
    """(log x?, why) for a numeric field: its random kind, else its slice's reading."""
    positive = bool(values) and min(values) > 0
    kind = kinds.get(field)
    if kind == "log_uniform" and positive:
        return True, "drawn log-uniform"
    if kind == "uniform":
        return False, "drawn uniform"
    if positive and analysis.slices[field].log_x:
        return True, "values span a decade or more"
    return False, ""


@dataclass(frozen=True)
class Scatter:
    field: str
    log_x: bool
    x_why: str  # why the x axis is log or linear: "drawn log-uniform", ...; "" by default
    log_y: bool  # the metric is read on the log scale (values shown in its units)
    xs: list[float]  # one per finished run with a finite metric
    ys: list[float]  # its value on the analysis's scale, as shown (exp'd for log)
    mean_xs: list[float]  # one per config with two or more such runs
    mean_ys: list[float]
    runs_per_config: int  # the most runs one config has here (1: no means to mark)
    message: str  # why there is nothing to plot; "" when there is


def scatter(
    analysis: Analysis, runs: list[RunRow], field: str, kinds: dict[str, str] | None = None
) -> Scatter:
    """The metric against `field`, a point per run and the mean of each config's runs.
    `kinds`: random_kinds of the sweep's preset."""

    def empty(message: str) -> Scatter:
        return Scatter(field, False, "", False, [], [], [], [], 0, message)

    frame = analysis.frame
    if frame.empty:
        return empty(f"no run has a finite {analysis.metric}: nothing to plot")
    if field not in analysis.swept:
        return empty(f"{field}: not a swept field that varies over the runs analysed")
    by_id = {r.id: r for r in runs}
    done = frame[frame["finished"]]
    if done.empty:
        return empty(f"all {len(frame)} runs diverged: no {analysis.metric} to plot")
    xs = [float(by_id[i].point[field]) for i in done["run"]]
    values = done["value"].astype(float).tolist()
    shown = [analysis.shown(v)[0] for v in values]
    log_x, why = log_axis(analysis, field, xs, kinds or {})
    mean_xs, mean_ys, most = [], [], 0
    for _, group in done.groupby("point", sort=False):
        most = max(most, len(group))
        if len(group) > 1:  # a single run is its own mean: no second mark
            mean_xs.append(float(by_id[group["run"].iloc[0]].point[field]))
            mean_ys.append(analysis.shown(float(group["value"].mean()))[0])
    return Scatter(
        field, log_x, why, analysis.scale == "log", xs, shown, mean_xs, mean_ys, most, ""
    )


@dataclass(frozen=True)
class Axis:
    name: str
    kind: str  # numeric | category | metric
    log: bool  # positions on log10 of the values
    top: str  # the label at the top of the axis (numeric and metric)
    bottom: str  # and at its bottom
    levels: list[str]  # a category's values, bottom to top, evenly spaced


@dataclass(frozen=True)
class Polyline:
    rank: int  # 1 = the best config
    point: dict[str, Any]  # its swept values
    mean: float  # its mean metric, as shown
    n: int  # finished runs the mean rests on
    ys: list[float]  # its height on each axis, 0 (bottom) .. 1 (top), metric last


@dataclass(frozen=True)
class Parallel:
    axes: list[Axis]  # each swept field, then the metric (best at the top)
    lines: list[Polyline]  # best first
    n_configs: int  # configs with a mean, of which the best len(lines) are drawn
    message: str  # why there is nothing to draw; "" when there is


def parallel(analysis: Analysis, runs: list[RunRow], k: int = TOP_LINES, kinds=None) -> Parallel:
    """The best `k` configs by mean (diverged seeds rank last, as everywhere) across every
    swept field. A field's axis spans the values of all runs analysed, so where the top
    configs sit within what was tried shows; the metric's axis spans the lines' means, the
    best at the top."""
    frame = analysis.frame
    if frame.empty:
        return Parallel([], [], 0, f"no run has a finite {analysis.metric}: nothing to draw")
    if not analysis.swept:
        return Parallel([], [], 0, "no swept field varies: nothing to draw")
    done = frame[frame["finished"]]
    if done.empty:
        return Parallel([], [], 0, f"all {len(frame)} runs diverged: no config has a mean")
    by_id = {r.id: r for r in runs}
    top = top_configs(runs, frame, analysis.swept, analysis.higher_is_better, k)  # scaled
    means = done.groupby("point")["value"].mean().astype(float)
    axes, position = [], []
    for f in analysis.swept:
        raw = [by_id[i].point.get(f) for i in frame["run"]]
        if all(_is_number(v) for v in raw):
            axis, pos = _numeric_axis(analysis, f, [float(v) for v in raw], kinds or {})
        else:
            levels = [p.label for p in analysis.slices[f].points]
            levels = list(dict.fromkeys(levels + [str(cell(v)) for v in raw]))
            axis = Axis(f, "category", False, "", "", levels)
            pos = _level_position(levels)
        axes.append(axis)
        position.append(pos)
    # The metric's axis spans the lines drawn, best at the top: spanning every config's
    # mean squeezed the top ten into its top row when a few configs blew up.
    drawn = [c.mean for c in top]  # a config with a diverged seed ranks last, mean or not
    best, worst = (
        (max(drawn), min(drawn)) if analysis.higher_is_better else (min(drawn), max(drawn))
    )
    axes.append(
        Axis(analysis.metric, "metric", False, _fmt(analysis.shown(best)[0]),
             _fmt(analysis.shown(worst)[0]), [])
    )  # fmt: skip
    lines = []
    for rank, config in enumerate(top, 1):
        ys = [pos(config.point.get(f)) for f, pos in zip(analysis.swept, position, strict=True)]
        ys.append(0.5 if best == worst else (config.mean - worst) / (best - worst))
        lines.append(Polyline(rank, config.point, analysis.shown(config.mean)[0], config.n, ys))
    return Parallel(axes, lines, len(means), "")


def _numeric_axis(analysis: Analysis, field: str, values: list[float], kinds):
    log, _ = log_axis(analysis, field, values, kinds)
    lo, hi = min(values), max(values)
    a, b = (math.log10(lo), math.log10(hi)) if log else (lo, hi)

    def pos(v) -> float:
        x = math.log10(v) if log else float(v)
        return 0.5 if b == a else (x - a) / (b - a)

    return Axis(field, "numeric", log, _fmt(hi), _fmt(lo), []), pos


def _level_position(levels: list[str]):
    def pos(v) -> float:
        label = str(cell(v))
        i = levels.index(label) if label in levels else 0
        return 0.5 if len(levels) == 1 else i / (len(levels) - 1)

    return pos


def _fmt(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else str(v)
