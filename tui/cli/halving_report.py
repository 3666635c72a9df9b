"""`hypertui replay-halving SWEEP_ID`: what successive halving would have done to a sweep
that ran in full, printed (or as one JSON object)."""

from __future__ import annotations

import json

from rich.console import Console

from hypertui.engine.analysis.export import fmt
from hypertui.engine.core import halving
from hypertui.engine.core.config import make_config
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.grouping import population_key
from hypertui.engine.core.objective import objective
from hypertui.engine.store.store import Store
from hypertui.tui.cli.exits import EXIT_OK
from hypertui.tui.text.report import describe_point


def replay_sweep(
    store: Store,
    sweep_id: str,
    per_replay: int | None,
    first: int = 1,
    eta: int = halving.ETA,
) -> dict:
    """The replay of the whole sweep and, with `per_replay`, of each group of its seeds,
    under the rule with rungs at epochs first, first * eta, ... keeping 1/eta."""
    sweep = store.sweep(sweep_id)
    all_runs = store.runs(sweep.id)
    if any(r.status == "pruned" for r in all_runs):
        raise ConfigError(f"sweep {sweep.id} already ran with halving; replay needs a full sweep")

    def population(config: dict) -> str:
        return population_key(make_config(config)) or repr(config)

    # Populations with a run that did not run in full (a cancelled sweep) are left out.
    incomplete = {
        population(r.config) for r in all_runs if r.status not in ("finished", "diverged")
    }
    runs = [r for r in all_runs if population(r.config) not in incomplete]
    if not runs:
        raise ConfigError(
            f"sweep {sweep.id}: no population ran in full; replay needs a finished sweep"
        )
    epochs = {r.config["epochs"] for r in runs}
    if len(epochs) != 1:
        raise ConfigError(f"sweep {sweep.id} mixes epochs {sorted(epochs)}; replay needs one")
    (n_epochs,) = epochs
    goal = objective(sweep.problem, runs)  # its config's metric, or the problem's own
    higher = goal.higher
    kept = {r.id for r in runs}
    trials = [t for t in halving.trials_from_store(store, sweep.id, population) if t.run_id in kept]
    points = {halving.config_key(r.config): r.point for r in runs}
    groups = [trials] + (halving.split_by_seed(trials, per_replay) if per_replay else [])
    if per_replay and len(groups) == 1:
        raise ConfigError(f"--seeds-per-replay {per_replay}: the sweep has fewer seeds")
    replays = []
    for group in groups:
        r = halving.replay(group, n_epochs, higher, eta, first)
        replays.append(
            {
                "seeds": list(r.seeds),
                "trials": r.n_trials,
                "rungs": list(r.rungs),
                "stopped_per_rung": {
                    str(e): sum(v == e for v in r.stopped_at.values()) for e in r.rungs
                },
                "model_epochs_full": r.model_epochs_full,
                "model_epochs_halving": r.model_epochs_halving,
                "saving": r.saving,
                "best_point": points[r.best_config],
                "best_score": r.best_score,
                "best_survived": r.best_survived,
                "survivor_score": r.survivor_score,
            }
        )
    return {
        "sweep": sweep.id,
        "preset": sweep.preset,
        "metric": goal.main,
        "eta": eta,
        "populations": len({t.population for t in trials}),
        "populations_left_out": len(incomplete),
        "all_seeds": replays[0],
        "per_seed_group": replays[1:],
    }


def cmd_replay_halving(args, store: Store) -> int:
    result = replay_sweep(
        store, args.sweep_id, args.seeds_per_replay, args.prune_from, args.prune_eta
    )
    if args.json:
        print(json.dumps(result))
        return EXIT_OK
    console = Console(highlight=False)
    whole = result["all_seeds"]
    console.print(
        f"sweep {result['sweep']} ({result['preset']}): {whole['trials']} trials in "
        f"{result['populations']} population(s); halving at epochs "
        f"{', '.join(map(str, whole['rungs'])) or '(none before the last epoch)'}, keeping the "
        f"best 1/{result['eta']} of configs by mean {result['metric']} over seeds"
    )
    if result["populations_left_out"]:
        console.print(
            f"[yellow]{result['populations_left_out']} population(s) left out: "
            "they did not run in full[/]"
        )
    for replay in [whole, *result["per_seed_group"]]:
        stopped = ", ".join(f"{n} at epoch {e}" for e, n in replay["stopped_per_rung"].items())
        verdict = "[green]survives[/]" if replay["best_survived"] else "[red]would be STOPPED[/]"
        console.print(
            f"seeds {replay['seeds']}: stopped {stopped or 'none'}; model-epochs "
            f"{fmt(replay['model_epochs_full'])} -> {fmt(replay['model_epochs_halving'])} "
            f"({replay['saving']:.1f}x fewer); best config "
            f"{describe_point(replay['best_point'])} ({result['metric']} "
            f"{fmt(replay['best_score'])}) {verdict}; the best config halving keeps "
            f"scores {fmt(replay['survivor_score'])}"
        )
    groups = result["per_seed_group"]
    if groups:
        kept = sum(r["best_survived"] for r in groups)
        console.print(f"best config survived in {kept} of {len(groups)} per-seed replays")
    return EXIT_OK
