"""Conditional fields of a sweep: momentum means nothing with adam, prune_eta nothing
without halving. `config.applies` is the one definition of what applies where; this module
asks it about every combination of the values a sweep gives the fields it reads.

A random field is drawn only where it means something (axes.expand_points); a grid axis is
crossed with everything, so a grid of a field that means nothing somewhere would repeat the
same runs under different labels: it is refused at load, as is a swept field that means
nothing anywhere in the sweep.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from hypertui.engine.core.config import CHOICES, FIELDS, applies
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.sweeps.axes import Axes, RandomAxis

# `metric` applies when it is set ("" is the problem's own metric): whether it was written,
# not whether it would mean something; it is never greyed or refused for that.
SELF_DECIDED = ("metric",)


class _Reads(Mapping):
    """An empty mapping that records the keys `applies` looks up."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _deciding_fields() -> tuple[str, ...]:
    reads = _Reads()
    for name in FIELDS:
        applies(name, reads)
    return tuple(dict.fromkeys(reads.read))


DECIDING = _deciding_fields()  # the fields whose values decide whether others apply


def _options(key: str, base: Mapping[str, Any], axes: Axes) -> list[Any]:
    """The values a deciding field takes in the sweep: its grid, its choices, the ends of
    its range, or its [config] value."""
    axis = axes.get(key)
    if isinstance(axis, list):
        values = axis
    elif isinstance(axis, RandomAxis):
        values = list(axis.values) if axis.kind == "choice" else [axis.low, axis.high]
    else:
        values = [base.get(key, FIELDS[key].default)]
    return list({repr(v): v for v in values}.values())


def combinations(base: Mapping[str, Any], axes: Axes) -> Iterator[dict[str, Any]]:
    """The [config] values with each combination of the deciding fields' swept values."""
    swept = [k for k in DECIDING if k in axes]
    for combo in itertools.product(*(_options(k, base, axes) for k in swept)):
        yield {**base, **dict(zip(swept, combo, strict=True))}


def why_moot(field: str, values: Mapping[str, Any]) -> str:
    """'momentum means nothing with optimizer = 'adam' (only with optimizer = sgd |
    rmsprop)': the deciding field that rules `field` out for these values."""
    for key in DECIDING:
        if key == field:
            continue
        value = values.get(key, FIELDS[key].default)
        alts = [c for c in CHOICES.get(key, ()) if applies(field, {**values, key: c})]
        if alts:
            return (
                f"{field} means nothing with {key} = {value!r} "
                f"(only with {key} = {' | '.join(alts)})"
            )
        tried = (None, 1) if FIELDS[key].default is None else (1, 2)  # patience; folds
        if any(t != value and applies(field, {**values, key: t}) for t in tried):
            return f"{field} means nothing with {key} = {value!r}"
    return f"{field} means nothing for these values"


def moot_fields(base: Mapping[str, Any], axes: Axes) -> dict[str, str]:
    """Each field that means nothing anywhere in the sweep, and why (for the editor to grey
    it): the [config]'s fields and the swept ones alike."""
    combos = list(combinations(base, axes))
    return {
        name: why_moot(name, combos[0])
        for name in FIELDS
        if name not in SELF_DECIDED and not any(applies(name, c) for c in combos)
    }


def sometimes_moot(base: Mapping[str, Any], axes: Axes) -> dict[str, str]:
    """The random fields that mean nothing for some of the sweep's values (not drawn there),
    and why, for one of those values."""
    combos = list(combinations(base, axes))
    out = {}
    for name, axis in axes.items():
        moot = [c for c in combos if not applies(name, c)]
        if isinstance(axis, RandomAxis) and moot and name not in SELF_DECIDED:
            out[name] = why_moot(name, moot[0])
    return out


def check_conditions(base: Mapping[str, Any], axes: Axes) -> None:
    """Refuse a swept field that means nothing anywhere in the sweep, and a grid axis that
    means nothing for some of the sweep's values (it would repeat runs under other labels)."""
    combos = list(combinations(base, axes))
    for name, axis in axes.items():
        moot = [c for c in combos if not applies(name, c)]
        if name in SELF_DECIDED or not moot:
            continue
        why = why_moot(name, moot[0])
        if len(moot) == len(combos):
            raise ConfigError(f"[sweep] {name} would mean nothing in every trial: {why}")
        if isinstance(axis, list):
            key = _culprit(name, moot[0], axes)
            raise ConfigError(
                f"[sweep] {name} = {_spell(axis)} is a grid, crossed with every {key}, but "
                f"{why}: draw it instead ({name} = {{ choice = {_spell(axis)} }} with "
                f"trials = N; a drawn field is left out where it means nothing), or take "
                f"{moot[0][key]!r} out of {key}"
            )


def _culprit(name: str, values: Mapping[str, Any], axes: Axes) -> str:
    """The swept deciding field whose value rules `name` out."""
    for key in DECIDING:
        if key in axes and any(
            applies(name, {**values, key: v}) for v in _options(key, values, axes)
        ):
            return key
    return next(k for k in DECIDING if k in axes)


def _spell(values: list[Any]) -> str:
    """A grid as TOML spells it: ["adam", "sgd"], [0.0, 0.9], [[10], [10, 10]]."""
    return json.dumps(values)
