"""Which trials can train together as one population (engine/population.py trains them).

Kept apart from the trainer so that the preset list and the run-time estimate can group
trials without importing torch (the first screen paints before torch is loaded).
"""

from __future__ import annotations

from engine.config import Config

# Fields in which population members may differ; everything else must be equal.
MEMBER_FIELDS = ("lr", "momentum", "weight_decay", "seed", "activation", "optimizer")


def population_key(config: Config) -> str | None:
    """Trials with the same key can train together; None: this trial trains alone."""
    if config.model != "mlp" or config.precision != "fp32":
        return None  # the CNN, and bf16 runs (no gain for tiny MLPs), train alone
    shared = {k: v for k, v in config.to_dict().items() if k not in MEMBER_FIELDS}
    return repr(sorted(shared.items()))
