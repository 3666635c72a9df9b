"""Search that learns: a sweep whose trials are asked of Optuna's samplers a batch at a time.

    search = "tpe"     # or "gp" (every axis a numeric range)
    trials = 64        # trials in all (each trains `seeds` runs)
    batch = 16         # asked at once, trained as one population (default: see batch_size)

A `search = "tpe"` sweep stores no trials up front. The runner asks a batch, records its
runs in the store, trains them as any sweep's (units, populations, halving), reads their
results back from the store, and asks the next. Every batch is asked of a fresh in-memory
study that replays the sweep's stored trials (their values and the mean of their seeds'
metric), with a sampler seeded by the sweep's seed and the batch's number: the store is the
only record, and a sweep killed and resumed asks the same next batch as one never stopped.

Optuna is an optional extra (`pip install "hypertui[tpe]"`), imported only here, only for
these sweeps; its defaults are set explicitly below, so a new Optuna minor changes nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from hypertui.engine.core.errors import ConfigError, HypertuiError
from hypertui.engine.core.records import RunRow

SEARCHES = ("random", "tpe", "gp")  # random: grid lists x random draws, all stored up front
LEARNED = ("tpe", "gp")
INSTALL = 'pip install "hypertui[tpe]"'  # the extra pins Optuna to one major (pyproject)
DEFAULT_BATCH = 16  # trials per batch when the preset names none (one population)
N_STARTUP = 10  # random trials before TPE models anything (Optuna's default, set here)
N_EI_CANDIDATES = 24  # TPE's candidates per ask (Optuna's default, set here)


def optuna():
    """Optuna, or a one-line refusal with the install command."""
    try:
        import optuna as module
    except ImportError:
        raise HypertuiError(f"search = 'tpe' and 'gp' need Optuna: {INSTALL}") from None
    module.logging.set_verbosity(module.logging.WARNING)  # no line per trial on stderr
    return module


def check_search(search: str, axes: dict, objectives: tuple, where: str) -> None:
    """Refuse an unknown method, and gp over a space that is not all numeric ranges."""
    from hypertui.engine.core.errors import suggest
    from hypertui.engine.sweeps.axes import RandomAxis

    if search not in SEARCHES:
        raise ConfigError(
            f"{where}: search = {search!r}{suggest(search, SEARCHES)}; one of {', '.join(SEARCHES)}"
        )
    if search == "gp":
        other = [
            k for k, a in axes.items() if not (isinstance(a, RandomAxis) and a.kind != "choice")
        ]
        if other:
            raise ConfigError(
                f"{where}: search = 'gp' needs every [sweep] axis a numeric range "
                f"(uniform, log_uniform, int_uniform); {', '.join(other)} is not: use 'tpe'"
            )
    if search in LEARNED and not axes:
        raise ConfigError(f"{where}: search = {search!r} needs [sweep] axes to search")


def own_function(preset) -> bool:
    """A preset of your own training function (engine/sweeps/function_preset.py)."""
    return preset.problem == "function"


def batch_size(preset) -> int:
    """The batch a learned search asks at once: the preset's `batch`, else DEFAULT_BATCH
    trials where its trials train as one population, else 1 (each trains alone anyway)."""
    from hypertui.engine.core.grouping import population_key

    if preset.batch:
        return min(preset.batch, preset.trials)
    if own_function(preset):  # each trial trains alone, in a process of its own
        return 1
    grouped = population_key(preset.base_config) is not None
    return min(DEFAULT_BATCH, preset.trials) if grouped else 1


# -- the space ------------------------------------------------------------------------------


def _choice(value: Any) -> Any:
    """A categorical choice as Optuna holds it (None, bool, int, float or str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)  # a list (hidden = [10, 10]): its JSON text


def _value(choice: Any, values: list) -> Any:
    """The field's value for an Optuna choice (back from _choice)."""
    for v in values:
        if _choice(v) == choice:
            return v
    raise KeyError(choice)


def distributions(axes: dict) -> dict[str, Any]:
    """Each axis as Optuna's distribution: ranges as Float/Int, lists and choices categorical."""
    from hypertui.engine.sweeps.axes import RandomAxis

    dists = optuna().distributions
    out = {}
    for key, axis in axes.items():
        if isinstance(axis, RandomAxis) and axis.kind in ("uniform", "log_uniform"):
            out[key] = dists.FloatDistribution(axis.low, axis.high, log=axis.kind == "log_uniform")
        elif isinstance(axis, RandomAxis) and axis.kind == "int_uniform":
            out[key] = dists.IntDistribution(int(axis.low), int(axis.high))
        else:
            values = list(axis.values) if isinstance(axis, RandomAxis) else list(axis)
            out[key] = dists.CategoricalDistribution([_choice(v) for v in values])
    return out


def sampler(search: str, seed: int, n_objectives: int):
    """A seeded sampler, its defaults spelled out (a new Optuna minor keeps them)."""
    import warnings

    samplers = optuna().samplers
    warnings.filterwarnings("ignore", category=optuna().exceptions.ExperimentalWarning)
    if search == "gp":
        return samplers.GPSampler(
            seed=seed, n_startup_trials=N_STARTUP, deterministic_objective=False
        )
    return samplers.TPESampler(
        seed=seed,
        n_startup_trials=N_STARTUP,
        n_ei_candidates=N_EI_CANDIDATES,
        multivariate=True,  # a model of the joint space: lr with optimizer
        group=False,
        constant_liar=True,  # a batch's members spread out, not all on one peak
    )


# -- the loop -------------------------------------------------------------------------------


def trial_values(runs: list[RunRow], objectives: list[str]) -> tuple[str, list[float] | None]:
    """A trial's state and values from its runs (its seeds and folds): the mean of each
    objective over runs that finished; pruned when halving stopped one; failed (never
    modelled) when one diverged, failed or has no finite value."""
    from hypertui.engine.analysis.pareto import objective_value

    if any(r.status == "pruned" for r in runs):
        return "pruned", None
    if any(r.status != "finished" for r in runs):
        return "fail", None
    values = []
    for name in objectives:
        got = [objective_value(r, name) for r in runs]
        if any(v is None or not math.isfinite(v) for v in got):
            return "fail", None
        values.append(sum(got) / len(got))
    return "complete", values


def goal(preset) -> tuple[list[str], list[str]]:
    """The objectives a search optimises and Optuna's direction of each."""
    from hypertui.engine.analysis.pareto import directions
    from hypertui.engine.core.config import main_metric

    if own_function(preset):  # the metric its preset names, the way it names
        metric, mode = preset.goal["metric"], preset.goal["mode"]
        return [metric], ["maximize" if mode == "max" else "minimize"]

    c = preset.base_config
    main, higher = main_metric(c.problem, c.task, c.metric)
    names = list(preset.objectives) or [main]
    return names, directions(names, main, higher)


def replay(study, preset, dists: dict, runs: list[RunRow], names: list[str]) -> int:
    """Add the sweep's stored trials (runs grouped by trial) to `study`; return how many."""
    ot = optuna()
    states = {
        "complete": ot.trial.TrialState.COMPLETE,
        "pruned": ot.trial.TrialState.PRUNED,
        "fail": ot.trial.TrialState.FAIL,
    }
    for key, members in _trials(runs, runs_per_trial(preset)):
        state, values = trial_values(members, names)
        if any(r.status in ("pending", "running", "cancelled") for r in members):
            continue  # not told yet (run again first)
        params = {k: _param(v, dists[k]) for k, v in key.items() if k in dists}
        study.add_trial(
            ot.trial.create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                values=values if state == "complete" else None,
                state=states[state],
            )
        )
    return len(_trials(runs, runs_per_trial(preset)))


def _param(value: Any, dist) -> Any:
    if type(dist).__name__ == "CategoricalDistribution":
        return _choice(value)
    return value


def runs_per_trial(preset) -> int:
    """Each trial's runs: its seeds x folds, recorded side by side."""
    if own_function(preset):  # its folds are its own business
        return preset.seeds
    folds = preset.base.get("folds", 1)
    return preset.seeds * max(1, folds if isinstance(folds, int) else 1)


def _trials(runs: list[RunRow], per_trial: int) -> list[tuple[dict, list[RunRow]]]:
    """The sweep's trials in order, each (its point, its runs)."""
    by: dict[int, tuple[dict, list[RunRow]]] = {}
    for r in sorted(runs, key=lambda r: r.idx):
        by.setdefault(r.idx // per_trial, (r.point, []))[1].append(r)
    return [by[t] for t in sorted(by)]


def ask_batch(preset, runs: list[RunRow], k: int) -> list[dict[str, Any]]:
    """The next `k` trials' points, asked of a fresh study that replays `runs`.

    The sampler's seed is the sweep's seed and the batch's number, so that the next batch
    depends only on what the store holds: resumed or not, the same."""
    from hypertui.engine.sweeps.axes import RandomAxis

    ot = optuna()
    names, dirs = goal(preset)
    dists = distributions(preset.axes)
    n_done = len(_trials(runs, runs_per_trial(preset)))
    seed = preset.sweep_seed * 100_003 + n_done  # one stream per batch
    study = ot.create_study(
        directions=dirs, sampler=sampler(preset.search, seed, len(names))
    )  # in memory: the store is the record
    replay(study, preset, dists, runs, names)
    points = []
    for _ in range(k):
        trial = study.ask(dists)
        point = {}
        for key, axis in preset.axes.items():
            v = trial.params[key]
            if isinstance(dists[key], ot.distributions.CategoricalDistribution):
                values = list(axis.values) if isinstance(axis, RandomAxis) else list(axis)
                v = _value(v, values)
            elif isinstance(v, float):
                v = float(f"{v:.4g}")  # readable, as random draws are
            point[key] = v
        points.append(point)
    return points


def learned_batches(store, sweep_id: str, pending: list[RunRow], preset) -> Iterator[list[RunRow]]:
    """The runs to train, a batch at a time: first the unfinished ones a stop left, then each
    new batch asked and recorded in the store (`preset`: the sweep's, as stored). run_sweep
    trains each before asking on."""
    optuna()  # refuse before anything trains
    if pending:
        yield pending
    k = batch_size(preset)
    while True:
        runs = store.runs(sweep_id, analysis=False)
        n = len(_trials(runs, runs_per_trial(preset)))
        if n >= preset.trials:
            return
        points = ask_batch(preset, runs, min(k, preset.trials - n))
        rows = add_trials(store, sweep_id, preset, points, runs)
        yield rows


def add_trials(store, sweep_id: str, preset, points: list[dict], runs) -> list[RunRow]:
    """Record the points' runs (every seed and fold) as pending; return them."""
    from hypertui.engine.core.config import applies
    from hypertui.engine.data.sources import checked_config
    from hypertui.engine.training.train import new_run_id

    idx = max((r.idx for r in runs), default=-1) + 1
    trials = []
    if own_function(preset):  # plain values, as create_sweep records them
        for point in points:
            values = {**preset.base, **point, **preset.goal}
            for seed in preset.seeds_of(values):
                trials.append((new_run_id(), idx, seed, {**values, "seed": seed}, point))
                idx += 1
        points = []
    else:
        base = preset.base_config.to_dict()
    for point in points:
        # a field that means nothing beside the others (momentum with adam) is left out of
        # the trial, as in a random sweep: its [config] value trains, its point lacks it,
        # and the replay tells the sampler the trial without it (a conditional parameter)
        kept = {k: v for k, v in point.items() if applies(k, {**base, **point})}
        config = checked_config({**base, **kept})  # valid: the preset's ranges are
        for seed, fold in preset.replicates_of(config):
            values = {**config.to_dict(), "seed": seed, "fold": fold}
            trials.append((new_run_id(), idx, seed, values, kept))
            idx += 1
    store.add_runs(sweep_id, trials)
    ids = {t[0] for t in trials}
    return [r for r in store.runs(sweep_id, analysis=False) if r.id in ids]
