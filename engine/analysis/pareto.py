"""Pareto fronts: the configs that no other config beats on every objective at once.

A preset may name several objectives, `objectives = ["val_mse", "train_s"]`: the metric
that ranks the runs first, then what it trades against, each with its direction. Lower is
better for losses, errors, `train_s` (training seconds, a run's elapsed_s: pauses and
evaluation-free) and `params` (the model's parameter count); higher for accuracies, F1
and AUCs (objective.guess_higher, as everywhere else).

The front is over configs, not runs: a config's value on each objective is the mean over
its seeds (and folds) that finished with every objective finite, which is what a user
picks from; a lucky seed is not a trade-off on offer. What is left out is counted, never
dropped in silence: a config with a diverged run (it ranks last everywhere, as in
halving), runs without a finite value, failed, pruned or unfinished runs.

One config dominates another when it is at least as good on every objective and better
on one. Equal configs dominate neither, so ties are all on the front. Two objectives:
a sort and a running minimum, O(n log n); more: a vectorised comparison of every pair.
The sweep without objectives gets its ranking metric against `train_s`, the trade-off
every sweep records.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypertui.engine.analysis.compare import run_metrics
from hypertui.engine.core.errors import ConfigError, suggest
from hypertui.engine.core.objective import guess_higher, metric_names
from hypertui.engine.core.records import RunRow

# Objectives that are no metric a run logs, with what they read (lower is better for both)
COSTS = {"train_s": "training seconds (elapsed_s)", "params": "parameters (n_params)"}
MAX_OBJECTIVES = 4  # beyond this nearly every config is on the front, and 80 columns fill
CHUNK = 512  # rows compared at once for three or more objectives (memory: CHUNK x n x k)


def objective_value(run: RunRow, name: str) -> float | None:
    """A run's value on one objective: a metric of run_metrics, train_s or params."""
    if name == "train_s":
        return run.elapsed_s
    if name == "params":
        return None if run.n_params is None else float(run.n_params)
    return run_metrics(run).get(name)


def higher_is_better(name: str, main: str, main_higher: bool) -> bool:
    """The direction of one objective; `main` ranks the sweep, `main_higher` its own."""
    if name in (main, f"best_{main}"):
        return main_higher
    return False if name in COSTS else guess_higher(name)


def directions(names: Sequence[str], main: str, main_higher: bool) -> list[str]:
    """Optuna's spelling of each objective's direction ("minimize" | "maximize"): the hook
    for a multi-objective search (its directions= argument)."""
    return ["maximize" if higher_is_better(n, main, main_higher) else "minimize" for n in names]


def objective_choices(problem: str, task: str, loss: str, main: str) -> list[str]:
    """What `objectives` may name for a sweep of one of our problems: its validation
    metrics (last and best report), the training loss and times, train_s and params.
    A table whose task is still to be inferred may name either task's."""
    from hypertui.engine.core.config import ranking_metrics  # not for a tracked script

    gaussian = loss == "gaussian_nll"
    tasks = ("regression", "classification") if problem == "table" and not task else (task,)
    names = [main, f"best_{main}"] if main else []  # the config's `metric`, wherever it is
    for t in tasks:
        names += metric_names(problem, gaussian, t)
        classes = 10 if problem == "mnist" else 0  # 0: not known before the data loads
        scores = ranking_metrics(problem, t, loss, classes)  # F1, AUCs: what `metric` may name
        names += [n for m in scores for n in (m, f"best_{m}")]
    names = [n for n in names if not n.startswith(("test_", "last_test_"))]
    return list(dict.fromkeys([*names, *COSTS]))


def check_objectives(
    value: Any, problem: str, task: str, loss: str, main: str, allowed: Sequence[str] = ()
) -> tuple:
    """`objectives` as a preset gives it, checked: a list of 2 to MAX_OBJECTIVES distinct
    names the runs report (`allowed`, or objective_choices of the problem), the ranking
    metric first. Raises ConfigError (one line)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f'objectives = {value!r}: a list of metric names, e.g. ["{main}", "train_s"]'
        )
    if len(value) < 2:
        raise ConfigError(
            f"objectives = {value!r}: a front needs 2 or more "
            f'(one metric already ranks the runs), e.g. ["{main}", "train_s"]'
        )
    if len(value) > MAX_OBJECTIVES:
        raise ConfigError(
            f"objectives: {len(value)} named, at most {MAX_OBJECTIVES} "
            "(with more, nearly every config is on the front)"
        )
    twice = [v for v in dict.fromkeys(value) if value.count(v) > 1]
    if twice:
        raise ConfigError(f"objectives: {twice[0]!r} named twice")
    allowed = list(allowed) or objective_choices(problem, task, loss, main)
    for name in value:
        if name.startswith(("test_", "last_test_")):
            raise ConfigError(
                f"objectives: {name!r} is a test metric: configs chosen on the test set "
                "overfit it; name a validation metric"
            )
        if name not in allowed:
            raise ConfigError(
                f"objectives: {name!r} is not a metric these runs report"
                f"{suggest(name, allowed)}; they report: {' | '.join(allowed)}"
            )
    if value[0] != main and main in allowed:
        raise ConfigError(
            f"objectives: the first is the metric that ranks the runs, {main!r} "
            f"(Results, halving and patience rank by it): put it first, not {value[0]!r}"
        )
    return tuple(value)


def sweep_objectives(preset_toml: str, main: str) -> tuple[list[str], bool]:
    """(the objectives, whether the preset named them) of a stored sweep: the preset's
    `objectives`, else [main, "train_s"]. Text that does not parse gets the default."""
    try:
        named = tomllib.loads(preset_toml).get("objectives")
    except tomllib.TOMLDecodeError:
        named = None
    if isinstance(named, list) and len(named) >= 2 and all(isinstance(n, str) for n in named):
        return list(dict.fromkeys(named)), True
    return [main, "train_s"], False


def pareto_mask(values: np.ndarray, higher: Sequence[bool]) -> np.ndarray:
    """Which rows of `values` (n x k, finite) no other row dominates; `higher[j]`: whether
    objective j is better higher. Equal rows are all kept or all dominated together."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] != len(higher):
        raise ValueError(f"values of shape {v.shape} for {len(higher)} objectives")
    if len(v) == 0:
        return np.zeros(0, dtype=bool)
    v = np.where(np.asarray(higher, dtype=bool), -v, v)  # every objective minimised
    rows, inverse = np.unique(v, axis=0, return_inverse=True)  # ties: one row
    inverse = inverse.reshape(-1)
    if v.shape[1] == 1:
        on = rows[:, 0] == rows[:, 0].min()
    elif v.shape[1] == 2:
        order = np.lexsort((rows[:, 1], rows[:, 0]))  # by the first, then the second
        second = rows[order, 1]
        before = np.concatenate(([np.inf], np.minimum.accumulate(second)[:-1]))
        on = np.empty(len(rows), dtype=bool)
        on[order] = second < before  # better on the second than every row before it
    else:
        on = np.empty(len(rows), dtype=bool)
        for start in range(0, len(rows), CHUNK):
            block = rows[start : start + CHUNK, None, :]  # (b, 1, k) against (1, n, k)
            weakly = (rows[None] <= block).all(axis=2)
            strictly = (rows[None] < block).any(axis=2)
            on[start : start + CHUNK] = ~(weakly & strictly).any(axis=1)
    return on[inverse]


@dataclass(frozen=True)
class ConfigPoint:
    point: dict[str, Any]  # the swept values
    values: tuple[float, ...]  # the mean of each objective over its runs
    n: int  # runs the means rest on
    run_ids: tuple[str, ...]
    on_front: bool


@dataclass(frozen=True)
class Front:
    objectives: list[str]
    higher: list[bool]  # per objective
    configs: list[ConfigPoint]  # every config with means, best first on the first objective
    n_runs: int
    n_diverged: int  # runs
    n_no_value: int  # finished runs without a finite value on some objective
    n_other: int  # failed, pruned or unfinished runs
    n_diverged_configs: int  # configs left out for a diverged run
    message: str  # why there is no front; "" when there is

    @property
    def members(self) -> list[ConfigPoint]:
        """The front, best first on the first objective."""
        return [c for c in self.configs if c.on_front]

    def left_out(self) -> str:
        """One line naming what the front leaves out ("" when nothing)."""
        parts = [
            f"{self.n_diverged_configs} config{'s' * (self.n_diverged_configs != 1)} with a "
            f"diverged run ({self.n_diverged} run{'s' * (self.n_diverged != 1)})"
            if self.n_diverged_configs
            else "",
            f"{self.n_no_value} finished without a finite {' or '.join(self.objectives)}"
            if self.n_no_value
            else "",
            f"{self.n_other} failed, pruned or unfinished" if self.n_other else "",
        ]
        parts = [p for p in parts if p]
        return "left out: " + ", ".join(parts) if parts else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "objectives": self.objectives,
            "directions": ["maximize" if h else "minimize" for h in self.higher],
            "over": "configs (the mean over each config's seeds and folds)",
            "n_configs": len(self.configs),
            "members": [
                {"point": c.point, **dict(zip(self.objectives, c.values, strict=True)), "n": c.n}
                for c in self.members
            ],
            "n_runs": self.n_runs,
            "n_diverged": self.n_diverged,
            "n_diverged_configs": self.n_diverged_configs,
            "n_no_value": self.n_no_value,
            "n_other": self.n_other,
            "message": self.message,
        }


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def front(
    runs: Sequence[RunRow], swept: Sequence[str], objectives: Sequence[str], higher: Sequence[bool]
) -> Front:
    """The Pareto front of the configs of `runs` (grouped by their `swept` values)."""
    objectives, higher = list(objectives), list(higher)
    groups: dict[tuple, list[RunRow]] = {}
    for run in runs:
        groups.setdefault(tuple(_key(run.point.get(f)) for f in swept), []).append(run)
    n_diverged = n_no_value = n_other = n_div_configs = 0
    points, rows = [], []
    for members in groups.values():
        diverged = sum(r.status == "diverged" for r in members)
        n_diverged += diverged
        n_other += sum(r.status not in ("finished", "diverged") for r in members)
        if diverged:
            n_div_configs += 1
            continue
        kept, values = [], []
        for r in members:
            if r.status != "finished":
                continue
            row = [objective_value(r, name) for name in objectives]
            if all(v is not None and math.isfinite(v) for v in row):
                kept.append(r)
                values.append(row)
            else:
                n_no_value += 1
        if kept:
            points.append((members[0], kept))
            rows.append(np.mean(np.asarray(values, dtype=float), axis=0))
    message = ""
    if not rows:
        what = " and ".join(objectives)
        message = (
            f"no config has a run that finished with a finite {what}: no front"
            if runs
            else "no runs: no front"
        )
    table = np.asarray(rows, dtype=float).reshape(len(rows), len(objectives))
    on = pareto_mask(table, higher) if rows else np.zeros(0, dtype=bool)
    signed = np.where(np.asarray(higher, dtype=bool), -table, table)  # lower is better
    order = np.lexsort(signed.T[::-1]) if rows else []  # by the first, ties by the next
    configs = [
        ConfigPoint(
            {f: points[i][0].point.get(f) for f in swept},
            tuple(float(x) for x in table[i]),
            len(points[i][1]),
            tuple(r.id for r in points[i][1]),
            bool(on[i]),
        )
        for i in order
    ]
    return Front(
        objectives, higher, configs, len(runs), n_diverged, n_no_value, n_other,
        n_div_configs, message,
    )  # fmt: skip


def spans_decades(values: Sequence[float]) -> bool:
    """Whether an axis of these values reads better on a log scale: all above 0 and a
    decade or more apart (parameter counts of an architecture sweep, say)."""
    values = [v for v in values if math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) >= 10 * min(values)


def value_text(name: str, value: float) -> str:
    """An objective's value as tables show it: a parameter count whole, the rest to 4
    significant digits."""
    if name == "params" and math.isfinite(value):
        return str(round(value))
    return f"{value:.4g}"


def corners(xs: Sequence[float], ys: Sequence[float], x_higher: bool, y_higher: bool):
    """The staircase through a 2-objective front's members (x and y in the front's order
    or any): between two neighbours on x, the corner that both of them dominate, so the
    line bounds what the front dominates and never suggests a config between them."""
    pts = sorted(zip(xs, ys, strict=True))
    worse_x = min if x_higher else max
    worse_y = min if y_higher else max
    out_x, out_y = [], []
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        out_x += [x0, worse_x(x0, x1)]
        out_y += [y0, worse_y(y0, y1)]
    if pts:
        out_x.append(pts[-1][0])
        out_y.append(pts[-1][1])
    return out_x, out_y
