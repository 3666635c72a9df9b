"""Which trials can train together as one population (engine/training/population.py trains them).

Kept apart from the trainer so that the preset list and the run-time estimate can group
trials without importing torch (the first screen paints before torch is loaded).
"""

from __future__ import annotations

from hypertui.engine.core.config import Config, make_configs
from hypertui.engine.core.errors import ConfigError

# Fields in which population members may differ; everything else must be equal.
# Folds train as members too: their rows differ, not their shapes (data/splits.py makes
# the folds equal in size, so every member takes the same steps).
MEMBER_FIELDS = ("lr", "momentum", "weight_decay", "seed", "fold", "activation", "optimizer")


def population_key(config: Config) -> str | None:
    """Trials with the same key can train together; None: this trial trains alone."""
    if config.model not in ("mlp", "cnn") or config.precision != "fp32":
        return None  # the user's own models, and bf16 runs (no gain for tiny MLPs), alone
    if config.model == "cnn" and config.time_budget_s is not None:
        # A population shares one clock. The CNN's work grows with its members (a step for
        # 4 took 0.80-0.93 of 4 single steps on a 2-core CPU), so under a time budget each
        # member would get about 1/K of the steps its own run gets: it trains alone.
        return None
    shared = {k: v for k, v in config.to_dict().items() if k not in MEMBER_FIELDS}
    return repr(sorted(shared.items()))


def check_pbt(configs: list[dict], function: bool = False) -> None:
    """schedule = "pbt" trains inside a population (engine/training/pbt.py): refuse trials
    that would train alone, in one line."""
    if function or not any(c.get("schedule") == "pbt" for c in configs):
        return
    sizes: dict[tuple, int] = {}
    # make_configs builds the configs that differ only by seed once (10^4 trials)
    for config in make_configs([c for c in configs if c.get("schedule") == "pbt"]):
        key = population_key(config)
        if key is None:
            raise ConfigError(
                "schedule = 'pbt' trains members of a population, and these trials train "
                "alone (your own model, bf16, or a CNN under a time budget)"
            )
        kind = (key, config.activation, config.optimizer)
        sizes[kind] = sizes.get(kind, 0) + 1
    alone = [kind for kind, n in sizes.items() if n < 2]
    if alone:
        _, activation, optimizer = alone[0]
        raise ConfigError(
            f"schedule = 'pbt' needs at least 2 members with the same activation and optimizer "
            f"in a population (members copy only from those); {activation} with {optimizer} "
            "has 1: sweep lr or add seeds"
        )
