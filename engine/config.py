"""One frozen dataclass describes a run; its field names are public.

Presets, `--set key=value`, the run store and CSV columns all use these names, so renaming
a field is a breaking change. Every value is validated when a `Config` is built, whatever
the route (constructor, `make_config`, `parse_value`), and every refusal is a `ConfigError`
that names the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError, suggest

PROBLEMS = ("house", "mnist")
MODELS = ("mlp", "cnn")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu")
LOSSES = {"house": ("mse", "gaussian_nll"), "mnist": ("cross_entropy", "mse")}
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adamw")
SCHEDULES = ("constant", "onecycle")
PRUNES = ("none", "halving")
PRECISIONS = ("fp32", "bf16")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
DEFAULT_FEATURES = ("Overall Qual", "Gr Liv Area", "Total Bsmt SF")
MAX_CNN_BLOCKS = 4  # 28x28 inputs: 28 -> 14 -> 7 -> 3 -> 1 after four maxpools


@dataclass(frozen=True)
class Config:
    """Everything that decides what a run computes (and where)."""

    problem: str = "house"  # "house" (Ames prices, regression) or "mnist" (digits)
    model: str = "mlp"  # "mlp", or "cnn" (mnist only)
    hidden: tuple[int, ...] = (10, 10, 10, 10)  # MLP hidden widths; () is a linear model
    channels: tuple[int, ...] = (16, 32, 64, 128)  # CNN blocks: conv3x3 -> act -> maxpool2
    activation: str = "relu"  # relu | tanh | sigmoid | gelu | leaky_relu
    loss: str = "mse"  # house: mse | gaussian_nll; mnist: cross_entropy | mse (one-hot)
    optimizer: str = "rmsprop"  # sgd | adam | rmsprop | adamw
    lr: float = 1e-3  # learning rate; the study's house sweep spans 1e-3 .. >1
    momentum: float = 0.0  # sgd and rmsprop only, in [0, 1)
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw), >= 0
    schedule: str = "constant"  # constant | onecycle (warm up to lr, then anneal; planned steps)
    batch_size: int = 10  # examples per step
    epochs: int = 10  # passes over the training set (an upper bound under a time budget)
    time_budget_s: float | None = None  # training seconds, evaluation excluded; None = no budget
    train_samples: int | None = None  # use only the first N training examples; None = all
    seed: int = 0  # initialisation and batch order; same seed, same CPU result bit for bit
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    precision: str = "fp32"  # fp32 | bf16 (bf16 autocast forward; weights and loss stay fp32)
    features: tuple[str, ...] = DEFAULT_FEATURES  # house: input columns of the Ames table
    target_scale: float = 1e5  # house: SalePrice is divided by this, as in the study
    prune: str = "none"  # none | halving: a population keeps its best third at epochs 1, 3, 9...

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        _check_combination(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-ready values (tuples become lists)."""
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        # Shallow (every field is a scalar or a flat tuple): asdict's deep copy cost 0.65 ms
        # a member when a population of 65,536 announces its runs.
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values}

    def replace(self, **changes: Any) -> Config:
        unknown = [k for k in changes if k not in FIELDS]
        if unknown:
            raise ConfigError(_unknown_key_message(unknown[0]))
        return dataclasses.replace(self, **changes)

    @property
    def main_metric(self) -> str:
        """The validation metric that ranks runs of this problem."""
        return "val_acc" if self.problem == "mnist" else "val_mse"


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}

# Defaults that differ by problem: applied by `make_config` when the key is not given.
PROBLEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "house": {},
    "mnist": {
        "model": "cnn",
        "hidden": (128,),
        "loss": "cross_entropy",
        "optimizer": "adam",
        "batch_size": 64,
        "epochs": 1,
    },
}

# What each field accepts, in words, for error messages and the TUI editor.
ALLOWED: dict[str, str] = {
    "problem": " | ".join(PROBLEMS),
    "model": " | ".join(MODELS),
    "hidden": "a list of positive ints, e.g. [10, 10] or 10-10; [] for a linear model",
    "channels": "a non-empty list of positive ints, e.g. [16, 32, 64, 128]",
    "activation": " | ".join(ACTIVATIONS),
    "loss": "house: mse | gaussian_nll; mnist: cross_entropy | mse",
    "optimizer": " | ".join(OPTIMIZERS),
    "lr": "a float > 0",
    "momentum": "a float in [0, 1)",
    "weight_decay": "a float >= 0",
    "schedule": " | ".join(SCHEDULES),
    "batch_size": "an int >= 1",
    "epochs": "an int >= 1",
    "time_budget_s": "a float > 0, or none",
    "train_samples": "an int >= 1, or none",
    "seed": "an int",
    "device": "auto | cpu | cuda | cuda:N | mps",
    "precision": " | ".join(PRECISIONS),
    "features": "a non-empty list of numeric Ames column names",
    "target_scale": "a float > 0",
    "prune": " | ".join(PRUNES),
}

CHOICES: dict[str, tuple[str, ...]] = {
    "problem": PROBLEMS,
    "model": MODELS,
    "activation": ACTIVATIONS,
    "loss": tuple(dict.fromkeys(LOSSES["house"] + LOSSES["mnist"])),
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "precision": PRECISIONS,
    "prune": PRUNES,
}

_INT_LISTS = ("hidden", "channels")
_INTS = ("batch_size", "epochs", "seed", "train_samples")
_FLOATS = ("lr", "momentum", "weight_decay", "time_budget_s", "target_scale")
_OPTIONAL = ("time_budget_s", "train_samples")


def make_config(values: Mapping[str, Any] | None = None, **more: Any) -> Config:
    """Build a Config from user values, filling problem-specific defaults.

    Unknown keys are refused with the nearest valid name.
    """
    merged = {**(values or {}), **more}
    for key in merged:
        if key not in FIELDS:
            raise ConfigError(_unknown_key_message(key))
    problem = merged.get("problem", "house")
    if problem not in PROBLEMS:
        raise ConfigError(_bad("problem", problem))
    return Config(**{**PROBLEM_DEFAULTS[problem], **merged})


def parse_value(key: str, text: str) -> Any:
    """Turn command-line text (`--set key=value`) into the field's type, then validate it."""
    if key not in FIELDS:
        raise ConfigError(_unknown_key_message(key))
    raw = text.strip()
    if key in _OPTIONAL and raw.lower() in ("", "none", "null"):
        return None
    if key in _INT_LISTS:
        if raw in ("", "[]", "-"):
            return ()
        if re.fullmatch(r"\d+(-\d+)*", raw):  # the CSV spelling, 10-10-10
            return _coerce(key, [int(p) for p in raw.split("-")])
    if key == "features" and not raw.startswith("["):
        return _coerce(key, [p.strip() for p in raw.split(",") if p.strip()])
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as relu
    return _coerce(key, value)


def _unknown_key_message(key: str) -> str:
    return f"unknown config key {key!r}{suggest(key, FIELDS)}; valid keys: {', '.join(FIELDS)}"


def _bad(name: str, value: Any, why: str = "") -> str:
    hint = suggest(value, CHOICES.get(name, ())) if isinstance(value, str) else ""
    reason = f" ({why})" if why else ""
    return f"{name} = {value!r} is not allowed{reason}{hint}; allowed: {ALLOWED[name]}"


def _coerce(name: str, value: Any) -> Any:
    """Check one field on its own and return it in canonical form (lists as tuples)."""
    if name in _OPTIONAL and (value is None or value == "none"):  # TOML has no null
        return None
    if name in _INT_LISTS:
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
        ):
            raise ConfigError(_bad(name, value))
        if name == "channels" and not value:
            raise ConfigError(_bad(name, value, "a CNN needs at least one block"))
        return tuple(value)
    if name == "features":
        if (
            not isinstance(value, (list, tuple))
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise ConfigError(_bad(name, value))
        if len(set(value)) != len(value):
            raise ConfigError(_bad(name, value, "a feature is listed twice"))
        return tuple(value)
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(_bad(name, value, "not an integer"))
        if name != "seed" and value < 1:
            raise ConfigError(_bad(name, value))
        return value
    if name in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(_bad(name, value, "not a number"))
        value = float(value)
        ok = math.isfinite(value) and {
            "momentum": 0.0 <= value < 1.0,
            "weight_decay": value >= 0.0,
        }.get(name, value > 0.0)
        if not ok:
            raise ConfigError(_bad(name, value))
        return value
    if not isinstance(value, str):
        raise ConfigError(_bad(name, value, "not a string"))
    if name == "device":
        if not DEVICE_PATTERN.match(value):
            raise ConfigError(_bad(name, value))
    elif value not in CHOICES[name]:
        raise ConfigError(_bad(name, value))
    return value


def _check_combination(c: Config) -> None:
    if c.model == "cnn" and c.problem != "mnist":
        raise ConfigError(f"model = 'cnn' needs problem = 'mnist' (got problem = {c.problem!r})")
    if c.model == "cnn" and len(c.channels) > MAX_CNN_BLOCKS:
        raise ConfigError(
            f"channels = {list(c.channels)} has {len(c.channels)} blocks; a CNN on 28x28 "
            f"images has at most {MAX_CNN_BLOCKS} blocks (each maxpool halves: 28, 14, 7, 3, 1)"
        )
    if c.loss not in LOSSES[c.problem]:
        raise ConfigError(
            f"loss = {c.loss!r} does not fit problem = {c.problem!r}; "
            f"allowed for {c.problem}: {' | '.join(LOSSES[c.problem])}"
        )
    if c.momentum and c.optimizer not in ("sgd", "rmsprop"):
        raise ConfigError(
            f"momentum = {c.momentum} only applies to sgd and rmsprop "
            f"(optimizer = {c.optimizer!r} has its own betas); set momentum = 0"
        )
    if c.problem == "house" and c.features != DEFAULT_FEATURES:
        from engine.data.house import numeric_columns  # reads the bundled table's header

        columns = numeric_columns()
        for name in c.features:
            if name not in columns:
                raise ConfigError(
                    f"features: {name!r} is not a numeric column of the Ames table"
                    f"{suggest(name, columns)}; e.g. {', '.join(sorted(columns)[:6])}, ..."
                )
        if "SalePrice" in c.features:
            raise ConfigError("features: 'SalePrice' is the target, not a feature")


def field_docs() -> dict[str, str]:
    """Each field's one-line comment from this file, for `--help` and the TUI editor."""
    import inspect

    docs: dict[str, str] = {}
    for line in inspect.getsource(Config).splitlines():
        m = re.match(r"\s+(\w+): .*?  # (.*)$", line)
        if m and m.group(1) in FIELDS:
            docs[m.group(1)] = m.group(2)
    return docs


__all__ = [
    "ALLOWED",
    "CHOICES",
    "Config",
    "ConfigError",
    "FIELDS",
    "LOSSES",
    "make_config",
    "parse_value",
    "field_docs",
]
