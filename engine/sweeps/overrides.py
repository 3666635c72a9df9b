"""What an edited preset changed, spelled as `hypertui run --set` spells it.

A sweep keeps its preset's name and description ("... 200 epochs"); History and `runs`
show these words beside them (the sweep's `overrides` option), so a run with epochs 40
never passes for the preset as shipped.
"""

from __future__ import annotations

from typing import Any

from hypertui.engine.core.config import FIELDS
from hypertui.engine.sweeps.presets import Preset, RandomAxis


def spell(value: Any) -> str:
    """One value as `--set` reads it back: 10-10 for a list, none for None, no spaces."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={spell(v)}" for k, v in value.items()) + "}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def spell_axis(axis: list | RandomAxis) -> str:
    if isinstance(axis, RandomAxis):
        return axis.text(spell, ",")
    return "[" + ",".join(spell(v) for v in axis) + "]"


def overrides(before: Preset, after: Preset, full: bool = False) -> list[str]:
    """The changes that turn `before` (with its [full] table when `full`) into `after`:
    "epochs=40" for a fixed value, "lr=[0.1,0.01]" for an axis, "seeds=3", "--full"."""
    if full:
        before = before.with_overrides(full=True)
    old, new = before.base_config.to_dict(), after.base_config.to_dict()
    changes = []
    for name in FIELDS:
        if name in after.axes:
            if after.axes[name] != before.axes.get(name):
                changes.append(f"{name}={spell_axis(after.axes[name])}")
        elif name in before.axes or new[name] != old[name]:
            changes.append(f"{name}={spell(new[name])}")
    if after.seeds != before.seeds:
        changes.append(f"seeds={after.seeds}")
    drawn = any(isinstance(a, RandomAxis) for a in after.axes.values())
    if drawn and after.trials != before.trials:  # draws mean nothing without a random axis
        changes.append(f"trials={after.trials}")
    return (["--full"] if full else []) + changes
