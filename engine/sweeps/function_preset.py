"""A preset that sweeps your own training function: its [config] names it with `train`.

    name = "my-cifar-lr"
    description = "lr for my CIFAR script"
    seeds = 3
    [config]
    train = "mytrain:main"   # module:function, imported from the preset's folder first
    metric = "val_acc"       # what ranks the trials (default val_loss); mode = "max" or "min"
    epochs = 30              # any other key: a plain value handed to main(config, run)
    lr = 3e-4
    [sweep]
    lr = [1e-3, 3e-4, 1e-4]  # a grid axis, or { log_uniform = [1e-4, 1e-2] } with trials = N

hypertui calls `main(config, run)` once per trial in a process of its own
(engine/sweeps/function.py) with the [config] values but ours (`train`, `metric`, `mode`,
and `prune = "halving"` with `prune_from` and `prune_eta`, as for our presets),
the trial's swept values and `seed`. The keys are the function's own, so hypertui checks
only that they are plain values: numbers, strings, booleans and lists of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypertui.engine.core.config import MAX_SEED
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.objective import guess_higher
from hypertui.engine.core.own_model import add_import_dir, beside
from hypertui.engine.sweeps.axes import (
    RandomAxis,
    check_count,
    count_trials,
    expand_points,
    random_axis,
)

FUNCTION = "function"  # the problem of a sweep of the user's function
# hypertui's keys in its [config]; the rest is the user's
OURS = ("train", "metric", "mode", "prune", "prune_from", "prune_eta")
SPEC = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
PLAIN = (bool, int, float, str)


@dataclass(frozen=True)
class FunctionPreset:
    """A preset whose configs are the user's plain values (see the module's docstring);
    its fields are a Preset's, so that it is stored and listed as one."""

    name: str
    description: str
    claim: str
    base: dict[str, Any]  # the [config] table as written, `train` included
    axes: dict[str, list[Any] | RandomAxis]
    seeds: int = 1
    trials: int = 1  # random draws (1 when every axis is a grid)
    sweep_seed: int = 0
    full: dict[str, Any] = field(default_factory=dict)
    full_note: str = ""
    source: str = ""
    shipped: bool = False
    checks: tuple[str, ...] = ()
    import_dir: str = ""  # the preset's folder, when the function's module lives there
    # a Preset's fields that a preset of your function leaves empty (its one metric ranks;
    # its trials are fixed up front), so that preset_to_toml and create_sweep read both
    needs_full: str = ""
    objectives: tuple[str, ...] = ()
    search: str = "random"
    batch: int = 0
    jobs: int = 0  # units the local runner trains at once (engine/sweeps/jobs.py)

    @property
    def problem(self) -> str:
        return FUNCTION

    @property
    def swept(self) -> list[str]:
        return list(self.axes)

    @property
    def n_trials(self) -> int:
        if self.search != "random":  # a learned search: `trials` configs in all
            return self.trials * self.seeds
        return count_trials(self.axes, self.trials, self.seeds)

    def check_size(self) -> None:
        check_count(self.n_trials, self.source or self.name)

    @property
    def base_config(self):  # our Config has none of the user's keys
        raise ConfigError(f"{self.name}: a preset of your own function has no hypertui config")

    @property
    def goal(self) -> dict[str, str]:
        """What ranks the trials, for the sweep's options."""
        metric = self.base.get("metric", "val_loss")
        mode = self.base.get("mode") or ("max" if guess_higher(metric) else "min")
        return {"metric": metric, "mode": mode}

    def points(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Each grid point x random draw, with its values: the [config]'s, then the point's."""
        self.check_size()
        for point in expand_points(self.axes, self.trials, self.sweep_seed):
            yield point, {**self.base, **point}

    def seeds_of(self, values: dict[str, Any]) -> range:
        seed = values.get("seed", 0)
        return range(seed, seed + self.seeds)

    def validate(self) -> None:
        self.check_size()

    def with_overrides(
        self, values: dict[str, Any] | None = None, seeds: int | None = None, full: bool = False
    ) -> FunctionPreset:
        """A copy with `[full]` applied, then `values` fixed (a fixed key stops being swept)."""
        source = self.source or self.name
        base, axes = dict(self.base), dict(self.axes)
        changes = {**(self.full if full else {}), **(values or {})}
        for key, value in changes.items():
            if key in ("seeds", "trials"):
                continue
            base[key] = _plain(key, value, lambda m: ConfigError(f"{source}: {m}"))
            axes.pop(key, None)
        extra = {k: v for k, v in (self.full if full else {}).items() if k in ("seeds", "trials")}
        if seeds is not None and seeds < 1:
            raise ConfigError(f"--seeds {seeds}: must be at least 1")
        preset = FunctionPreset(
            **{
                **self.__dict__,
                "base": base,
                "axes": axes,
                "seeds": seeds if seeds is not None else extra.get("seeds", self.seeds),
                "trials": extra.get("trials", self.trials),
            }
        )
        _check_ours(preset.base, lambda m: ConfigError(f"{source}: {m}"))
        preset.check_size()
        return preset


def parse_function_preset(doc: dict, tables: dict, counts: dict, source: str, shipped, fail):
    """The FunctionPreset of a parsed TOML document whose [config] has `train`."""
    config = tables["config"]
    for key, value in config.items():
        config[key] = _plain(key, value, fail, "[config] ")
    _check_ours(config, fail)
    if "checks" in doc:
        raise fail("checks judge our problems' metrics; a preset of your own function has none")
    import_dir = ""
    if Path(source).is_file():
        folder = str(Path(source).resolve().parent)  # the module is imported from there first
        if beside(config["train"], folder):
            import_dir = folder
            add_import_dir(folder)
    axes: dict[str, list[Any] | RandomAxis] = {}
    for key, spec in tables["sweep"].items():
        axes[key] = _axis(key, spec, fail)
    for key, value in tables["full"].items():
        if key not in ("seeds", "trials"):
            _plain(key, value, fail, "[full] ")
    has_random = any(isinstance(a, RandomAxis) for a in axes.values())
    if "trials" in doc and not has_random:
        raise fail("trials counts random draws, but no [sweep] axis is random")
    if has_random and "trials" not in doc:
        raise fail("a random [sweep] axis needs trials = N (how many draws)")
    preset = FunctionPreset(
        name=doc.get("name") or Path(source).stem,
        description=doc["description"].strip(),
        claim=doc.get("claim", "").strip(),
        base=config,
        axes=axes,
        seeds=counts["seeds"],
        trials=counts["trials"],
        sweep_seed=counts["sweep_seed"],
        full=tables["full"],
        full_note=doc.get("full_note", "").strip(),
        source=source,
        shipped=shipped,
        import_dir=import_dir,
    )
    preset.check_size()
    if preset.full:
        preset.with_overrides(full=True)
    return preset


def _check_ours(config: dict, fail) -> None:
    train = config.get("train")
    if not isinstance(train, str) or not SPEC.fullmatch(train):
        raise fail(
            f'train = {train!r}: name your function as "module:function", e.g. "mytrain:main"'
        )
    metric = config.get("metric", "val_loss")
    if not isinstance(metric, str) or not metric.strip():
        raise fail(f"metric = {metric!r}: the name of a metric your function logs, e.g. val_acc")
    if config.get("mode", "min") not in ("min", "max"):
        raise fail(f"mode = {config['mode']!r}: 'min' or 'max' (whether lower or higher is better)")
    if config.get("prune", "none") not in ("none", "halving"):
        raise fail(f"prune = {config['prune']!r}: 'none' or 'halving'")
    for key, low in (("prune_from", 1), ("prune_eta", 2)):
        value = config.get(key, low)
        if type(value) is not int or value < low:
            raise fail(f"{key} = {value!r}: an integer >= {low}")
    seed = config.get("seed", 0)
    if type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise fail(f"seed = {seed!r}: an integer in [0, {MAX_SEED}]")


def _plain(key: str, value: Any, fail, where: str = "") -> Any:
    """A plain value (a number, string or bool, or a list of them), or a ConfigError."""
    if isinstance(value, PLAIN) or (
        isinstance(value, list) and all(isinstance(v, (*PLAIN, list)) for v in value)
    ):
        if isinstance(value, float) and value != value:
            raise fail(f"{where}{key} = nan: not a usable value")
        return value
    raise fail(
        f"{where}{key} = {str(value)[:40]!r}: your function's values are plain (a number,"
        " string, bool, or a list of them)"
    )


def _axis(key: str, spec: Any, fail) -> list[Any] | RandomAxis:
    if key == "seed":
        raise fail("[sweep] seed: use seeds = N at the top level to repeat every point")
    if key == "train":
        raise fail("[sweep] train: one function per preset (make a preset for each)")
    if isinstance(spec, list):
        if not spec:
            raise fail(f"[sweep] {key} = []: an axis needs at least one value")
        return [_plain(key, v, fail, "[sweep] ") for v in spec]
    if isinstance(spec, dict):
        axis = random_axis(key, spec, fail)
        for value in axis.values:  # a choice's values: plain, as a grid's
            _plain(key, value, fail, "[sweep] ")
        return axis
    raise fail(
        f"[sweep] {key} must be a list of values or a random range"
        f" ({{ log_uniform = [low, high] }} or {{ uniform = [low, high] }}), got {spec!r}"
    )


def parse_plain(text: str) -> Any:
    """`--set key=value` text for a function's key: a TOML value, else the bare word."""
    import tomllib

    raw = text.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return raw
