"""Grouped comparison of a sweep's runs: mean, std, n, min, max per group of swept values.

Runs are grouped by the swept fields (seed excluded). Only `finished` runs enter the
statistics; diverged, pruned (halving) and failed runs are counted per group and shown,
never averaged in.
Groups are ranked by the problem's main metric (validation MSE or accuracy), a group with
a diverged run after every group without one (engine/core/ranking.py, as in halving).
std is the sample standard deviation (ddof=1), empty for a single run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.objective import Objective, objective
from hypertui.engine.core.ranking import finite, ranked
from hypertui.engine.core.records import UNFINISHED, RunRow, SweepRow


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float  # NaN when n < 2
    n: int
    min: float
    max: float


@dataclass(frozen=True)
class Group:
    point: dict[str, Any]  # the swept values shared by the group's runs
    run_ids: tuple[str, ...]
    n_runs: int
    n_finished: int
    n_diverged: int
    n_failed: int
    n_unfinished: int  # pending, running or cancelled
    stats: dict[str, Stat]  # metric -> Stat over finished runs
    n_pruned: int = 0  # stopped early by halving: shown apart, never averaged in


@dataclass(frozen=True)
class Comparison:
    swept: list[str]
    metrics: list[str]  # in display order; the first is the main metric
    main: str
    higher_is_better: bool
    groups: list[Group]  # ranked best first; groups with nothing finished last
    own_loop: bool = False  # runs of a script's own loop: its metrics, its seeds
    folds: int = 1  # cross-validation folds: each group's runs are its seeds x folds
    seeds: int = 1  # the most seeds a group ran


def run_metrics(run: RunRow) -> dict[str, float]:
    """A run's flat metrics: final values, best_* at the best epoch, test, duration."""
    values: dict[str, float] = dict(run.final)
    values |= {f"best_{k}": v for k, v in run.best.items()}
    values |= run.test
    if run.wall_s is not None:
        values["duration_s"] = run.wall_s
    if run.epochs_done is not None:
        values["epochs_done"] = run.epochs_done
    return values


def stat(values: list[float]) -> Stat | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Stat(mean, std, n, min(values), max(values))


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def compare(runs: list[RunRow], swept: list[str], goal: str | Objective) -> Comparison:
    """`goal`: the sweep's problem (one of ours: its fixed metrics) or its Objective."""
    goal = objective(goal, runs)
    metrics, main, higher = list(goal.metrics), goal.main, goal.higher
    buckets: dict[tuple, list[RunRow]] = {}
    for run in runs:
        buckets.setdefault(tuple(_key(run.point.get(f)) for f in swept), []).append(run)

    groups = []
    for members in buckets.values():
        finished = [run_metrics(r) for r in members if r.status == "finished"]
        stats = {m: s for m in metrics if (s := stat([f.get(m) for f in finished]))}
        statuses = [r.status for r in members]
        groups.append(
            Group(
                point={f: members[0].point.get(f) for f in swept},
                run_ids=tuple(r.id for r in members),
                n_runs=len(members),
                n_finished=len(finished),
                n_diverged=statuses.count("diverged"),
                n_failed=statuses.count("failed"),
                n_unfinished=sum(s in UNFINISHED for s in statuses),
                stats=stats,
                n_pruned=statuses.count("pruned"),
            )
        )

    # Diverged runs rank as diverged, as in halving (engine/core/ranking.py); a group with
    # nothing finished or diverged (failed, unfinished) comes last.
    by_id = {r.id: r for r in runs}
    scores = {i: _scores(g, by_id, main) for i, g in enumerate(groups)}
    order = ranked({i: v for i, v in scores.items() if any(map(finite, v))}, higher)
    ranked_set = set(order)
    groups = [groups[i] for i in order] + [g for i, g in enumerate(groups) if i not in ranked_set]
    folds = max((r.folds for r in runs), default=1)
    seeds = max((len({by_id[i].seed for i in g.run_ids}) for g in groups), default=1)
    return Comparison(swept, metrics, main, higher, groups, goal.own_loop, folds, seeds)


def spread_note(comp: Comparison) -> str:
    """What a group's mean ± std is over, in words."""
    if comp.own_loop:
        return "mean ± std over seeds"
    seeds = f"{comp.seeds} seed{'s' if comp.seeds != 1 else ''}"
    if comp.folds > 1:
        return (
            f"mean ± std over {seeds} x {comp.folds} folds: the split's variance included; "
            "significance pairs runs by seed and fold"
        )
    return "mean ± std over init and batch-order seeds with a fixed data split"


def compare_sweep(sweep: SweepRow, runs: list[RunRow]) -> Comparison:
    """A stored sweep's runs compared by its swept fields and objective."""
    return compare(runs, sweep.swept, objective(sweep.problem, runs, sweep.options))


def compare_sweeps(sweeps: list[tuple[SweepRow, list[RunRow]]]) -> tuple[Comparison, list]:
    """Several sweeps as one comparison: `sweep` (its name, or its id where two share a
    name) is a swept field before theirs; refused when they rank by different metrics.
    Returns the comparison and the runs it holds (their points carry `sweep`)."""
    goals = [objective(s.problem, runs, s.options) for s, runs in sweeps]
    ranked = {(g.main, g.higher) for g in goals}
    if len(ranked) > 1:
        said = ", ".join(f"{s.id}: {g.main}" for (s, _), g in zip(sweeps, goals, strict=True))
        raise HypertuiError(f"these sweeps rank by different metrics ({said}): not comparable")
    titles = [s.title for s, _ in sweeps]
    label = {s.id: s.title if titles.count(s.title) == 1 else s.id for s, _ in sweeps}
    merged = [
        dataclasses.replace(r, point={"sweep": label[s.id], **r.point})
        for s, runs in sweeps
        for r in runs
    ]
    swept = ["sweep", *dict.fromkeys(f for s, _ in sweeps for f in s.swept)]
    goal = dataclasses.replace(
        goals[0], metrics=tuple(dict.fromkeys(m for g in goals for m in g.metrics))
    )
    return compare(merged, swept, goal), merged


def _scores(group: Group, by_id: dict[str, RunRow], main: str) -> list[float | None]:
    """The main metric of a group's finished runs, None for each diverged one."""
    runs = [by_id[i] for i in group.run_ids]
    return [
        run_metrics(r).get(main) if r.status == "finished" else None
        for r in runs
        if r.status in ("finished", "diverged")
    ]
