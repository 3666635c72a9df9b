"""Successive halving inside a population, and its replay on a stored full sweep.

With `prune = "halving"`, a population (engine/training/population.py) ranks its configs at rungs
(the ends of epochs 1, 3, 9, ..., η = 3) by the mean over their seeds of the validation
metric and keeps the best third (rounded up, at least one); the members of the other
configs stop there with status `pruned`, their curves kept, and leave the stacked model.
A config is kept or stopped whole, all its seeds together, so a lucky or unlucky seed
cannot split it; one whose seed diverged ranks as diverged (engine/core/ranking.py).

`replay` applies the same rule to a sweep that ran in full and reports what halving would
have stopped, the model-epochs it would have saved, and whether the best config of the
full run would have survived.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hypertui.engine.core.ranking import ranked

ETA = 3  # keep 1/ETA of the configs at each rung; rungs at epochs 1, ETA, ETA^2, ...


def rungs(epochs: int, eta: int = ETA, first: int = 1) -> list[int]:
    """The epochs after which a population is cut: first, first * eta, ... below its last
    epoch (1, 3, 9, ... by default)."""
    out, epoch = [], first
    while epoch < epochs:
        out.append(epoch)
        epoch *= eta
    return out


def config_key(config: dict[str, Any]) -> str:
    """What identifies a config across its seeds and folds: every field but those."""
    return repr(sorted((k, v) for k, v in config.items() if k not in ("seed", "fold")))


def mean_score(values: Iterable[float]) -> float | None:
    """Mean over seeds of finite scores; None when no seed has one (all diverged)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def survivors(scores: dict[str, list[float]], higher: bool, eta: int = ETA) -> set[str]:
    """The configs that go on: the best ceil(n / eta) by mean over seeds. A config with a
    diverged seed ranks after every config without one (engine/core/ranking.py, the
    analysis's policy too); ties keep the earlier config."""
    return set(ranked(scores, higher)[: max(1, math.ceil(len(scores) / eta))])


def asha_keeps(value: float, earlier: list[float], higher: bool, eta: int = ETA) -> bool:
    """The asynchronous rule (ASHA; Optuna's SuccessiveHalvingPruner): a trial reaching a
    rung goes on when its value is within the best 1/eta of the values every trial that
    reached the rung before it had there, its own included (the best one when fewer than
    eta did). A value that is not finite (diverged) never goes on."""
    if not math.isfinite(value):
        return False
    worst = -math.inf if higher else math.inf
    competing = sorted(
        [v if math.isfinite(v) else worst for v in earlier] + [value], reverse=higher
    )
    bar = competing[max(len(competing) // eta - 1, 0)]
    return value >= bar if higher else value <= bar


@dataclass(frozen=True)
class Trial:
    """What a replay needs of one stored run of a full sweep."""

    run_id: str
    population: str  # trials with the same value trained (or would train) together
    config: str  # config_key: the same for every seed of a config
    seed: int
    epochs_done: float
    scores: dict[int, float]  # epoch -> validation metric at the end of that epoch


@dataclass(frozen=True)
class Replay:
    seeds: tuple[int, ...]  # the seeds whose trials this replay used
    n_trials: int
    rungs: tuple[int, ...]
    stopped_at: dict[str, int]  # run id -> the rung epoch after which halving stops it
    model_epochs_full: float  # epochs trained by the full sweep, summed over trials
    model_epochs_halving: float  # the same had halving stopped what it would have
    best_config: str  # config_key of the full run's best config (mean over seeds)
    best_score: float
    best_survived: bool
    survivor_score: float | None  # the full run's score of the best config halving keeps

    @property
    def saving(self) -> float:
        """How many times fewer model-epochs halving trains."""
        return self.model_epochs_full / self.model_epochs_halving


def replay(
    trials: list[Trial], epochs: int, higher: bool, eta: int = ETA, first: int = 1
) -> Replay:
    """Apply halving to trials that all ran in full (or until they diverged)."""
    cut = rungs(epochs, eta, first)
    stopped: dict[str, int] = {}
    by_population: dict[str, list[Trial]] = {}
    for t in trials:
        by_population.setdefault(t.population, []).append(t)
    for members in by_population.values():
        alive = members
        for rung in cut:
            scores: dict[str, list[float]] = {}
            for t in alive:
                scores.setdefault(t.config, []).append(t.scores.get(rung, math.nan))
            keep = survivors(scores, higher, eta)
            for t in alive:
                if t.config not in keep:
                    stopped[t.run_id] = rung
            alive = [t for t in alive if t.config in keep]

    def final_score(t: Trial) -> float:
        # The full run's verdict: the trial's last end-of-epoch score if it finished.
        return t.scores.get(epochs, math.nan) if t.epochs_done >= epochs else math.nan

    by_config: dict[str, list[float]] = {}
    for t in trials:
        by_config.setdefault(t.config, []).append(final_score(t))
    # The full run's best config and halving's best survivor, ranked by the same policy.
    scored = [c for c in ranked(by_config, higher) if mean_score(by_config[c]) is not None]
    best = scored[0]
    kept = [c for c in scored if not any(stopped.get(t.run_id) for t in trials if t.config == c)]
    survivor = mean_score(by_config[kept[0]]) if kept else None
    full = sum(t.epochs_done for t in trials)
    halved = sum(min(t.epochs_done, stopped.get(t.run_id, epochs)) for t in trials)
    return Replay(
        seeds=tuple(sorted({t.seed for t in trials})),
        n_trials=len(trials),
        rungs=tuple(cut),
        stopped_at=stopped,
        model_epochs_full=full,
        model_epochs_halving=halved,
        best_config=best,
        best_score=mean_score(by_config[best]),
        survivor_score=survivor,
        best_survived=not any(stopped.get(t.run_id) for t in trials if t.config == best),
    )


def split_by_seed(trials: list[Trial], per_replay: int) -> list[list[Trial]]:
    """The sweep's seeds in consecutive groups of `per_replay`, each group's trials apart:
    a sweep of 10 seeds gives 10 one-seed replays, or 5 replays of 2 seeds."""
    seeds = sorted({t.seed for t in trials})
    groups = [seeds[i : i + per_replay] for i in range(0, len(seeds), per_replay)]
    return [[t for t in trials if t.seed in set(g)] for g in groups if len(g) == per_replay]


def trials_from_store(store, sweep_id: str, population_of: Callable[[dict], str]) -> list[Trial]:
    """A stored sweep's trials with their end-of-epoch validation scores."""
    from hypertui.engine.core.config import main_metric

    sweep = store.sweep(sweep_id)
    runs = store.runs(sweep_id)
    first = runs[0].config if runs else {}  # one task and ranking metric per sweep
    main, _ = main_metric(sweep.problem, first.get("task", ""), first.get("metric", ""))
    out = []
    for run in runs:
        scores = {
            p["epoch"]: p[main]
            for p in store.points(run.id)
            if p["end_of_epoch"] and p.get(main) is not None
        }
        out.append(
            Trial(
                run_id=run.id,
                population=population_of(run.config),
                config=config_key(run.config),
                seed=run.seed,
                epochs_done=run.epochs_done or 0.0,
                scores=scores,
            )
        )
    return out
