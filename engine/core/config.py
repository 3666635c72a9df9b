"""One frozen dataclass describes a run; its field names are public.

Presets, `--set key=value`, the run store and CSV columns all use these names, so renaming
a field is a breaking change. Every value is validated when a `Config` is built, whatever
the route (constructor, `make_config`, `parse_value`), and every refusal is a `ConfigError`
that names the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypertui.engine.core.errors import ConfigError, suggest
from hypertui.engine.core.memory import too_big
from hypertui.engine.core.own_model import check_builder_spec
from hypertui.engine.core.paths import expand_user

PROBLEMS = ("house", "mnist", "table", "images")
MODELS = ("mlp", "cnn")
TASKS = ("regression", "classification")
# your own model: "package.module:callable", imported (never eval'd) when the config is built
MODEL_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu")
LOSSES = {
    "house": ("mse", "gaussian_nll"),
    "mnist": ("cross_entropy", "mse"),
    "images": ("cross_entropy", "mse"),
    "table": ("mse", "gaussian_nll", "cross_entropy"),  # by task, see _check_combination
}
TASK_LOSSES = {"regression": ("mse", "gaussian_nll"), "classification": ("cross_entropy", "mse")}
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adamw")
SCHEDULES = ("constant", "onecycle", "pbt")
PBT_FIELDS = ("lr", "momentum", "weight_decay")  # what PBT's explore may perturb
PRUNES = ("none", "halving")
PRECISIONS = ("fp32", "bf16")
KEEPS = ("best", "best+last", "none")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
DEFAULT_FEATURES = ("Overall Qual", "Gr Liv Area", "Total Bsmt SF")
MAX_LR = 1e6  # above this every optimizer overflows at once; the study's sweep stops near 10
MAX_SEED = 2**32 - 1  # torch's CPU generator keeps 32 bits of a seed (0 and 2**32 are one run)
MAX_FOLDS = 100  # cross-validation folds; each is a run (or a population member)
MAX_CNN_BLOCKS = 4  # 28x28 inputs: 28 -> 14 -> 7 -> 3 -> 1 after four maxpools
MAX_JOBS = 64  # units the local runner trains at once (--jobs, engine/sweeps/jobs.py)
# The validation metrics a run may rank by (`metric`), by task; higher is better for those
# in HIGHER_METRICS. ROC AUC and PR AUC (average precision) need exactly two classes.
CLASS_METRICS = ("val_acc", "val_macro_f1", "val_balanced_acc", "val_roc_auc", "val_pr_auc")
BINARY_METRICS = ("val_roc_auc", "val_pr_auc")
REGRESSION_METRICS = ("val_mse", "val_nll")  # val_nll: gaussian_nll only
HIGHER_METRICS = CLASS_METRICS


@dataclass(frozen=True)
class Config:
    """Everything that decides what a run computes (and where)."""

    problem: str = "house"  # house | mnist | table (a CSV) | images (a folder)
    model: str = "mlp"  # "mlp", or "cnn" (mnist and images only)
    hidden: tuple[int, ...] = (10, 10, 10, 10)  # MLP hidden widths; [] is a linear model
    channels: tuple[int, ...] = (16, 32, 64, 128)  # CNN blocks: conv3x3 -> act -> maxpool2
    activation: str = "relu"  # relu | tanh | sigmoid | gelu | leaky_relu
    loss: str = "mse"  # house: mse | gaussian_nll; mnist: cross_entropy | mse (one-hot)
    optimizer: str = "rmsprop"  # sgd | adam | rmsprop | adamw
    lr: float = 1e-3  # learning rate; the study's house sweep spans 1e-3 .. >1
    momentum: float = 0.0  # sgd and rmsprop only, in [0, 1)
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw), >= 0
    schedule: str = "constant"  # constant | onecycle (warm up to lr, then anneal; planned steps)
    # | pbt: population based training inside a population (engine/training/pbt.py)
    pbt_interval: int = 4  # pbt: every N epochs the bottom quantile copies a top member
    pbt_quantile: float = 0.25  # pbt: the share of members at the bottom (and at the top)
    pbt_fields: tuple[str, ...] = PBT_FIELDS  # pbt: what explore perturbs (momentum: sgd, rmsprop)
    batch_size: int = 10  # examples per step
    epochs: int = 10  # passes over the training set (an upper bound under a time budget)
    time_budget_s: float | None = None  # training seconds, evaluation excluded; None = no budget
    train_samples: int | None = None  # use only the first N training examples; None = all
    seed: int = 0  # initialisation and batch order; same seed, same CPU result bit for bit
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps
    precision: str = "fp32"  # fp32 | bf16 (bf16 autocast forward; weights and loss stay fp32)
    features: tuple[str, ...] = DEFAULT_FEATURES  # house: Ames columns; table: () = all
    target_scale: float = 1e5  # house: SalePrice is divided by this, as in the study
    path: str = ""  # table: a .csv/.parquet file; images: a folder (made absolute when set)
    target: str = ""  # table: the column to predict, e.g. "SalePrice"
    task: str = ""  # table: regression | classification; "" = inferred from the target
    image_size: int = 28  # images: side in pixels every image is resized to, e.g. 28 or 32
    model_args: tuple = ()  # your own model: extra keyword arguments, a TOML table of values
    prune: str = "none"  # none | halving: a population keeps its best configs at rungs (below)
    prune_from: int = 1  # halving's first rung: the epoch of the first cut (then x prune_eta)
    prune_eta: int = 3  # halving keeps the best 1/prune_eta of the configs at each rung
    metric: str = ""  # what ranks runs: "" (val_acc or val_mse), val_macro_f1, val_roc_auc, ...
    patience: int | None = None  # early stopping: epochs without improvement; None = never
    min_delta: float = 0.0  # what counts as improvement for patience: more than this, >= 0
    keep: str = "best"  # weights a run keeps when it ends: best | best+last | none
    save_every: int = 10  # a checkpoint to resume from every N epochs, or ...
    save_minutes: float = 5.0  # ... every M minutes of training, whichever comes first
    disk_budget_mb: float = 2048.0  # disk for a sweep's checkpoints, all its runs together
    split_seed: int = 0  # the seed of the random 70/15/15 train/val/test split (and the folds)
    folds: int = 1  # house, table: K-fold cross-validation, each fold a run as each seed is
    fold: int = 0  # which fold validates, 0 .. folds - 1 (a sweep runs every fold)
    split_column: str = ""  # table: a column saying train, val or test for each row
    val_path: str = ""  # table: validation rows in a file of their own, with the same columns
    test_path: str = ""  # table: test rows in a file of their own, with the same columns

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name)))
        _check_own_data(self)  # what needs the data itself: data/sources.py:checked_config
        _check_combination(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-ready values (tuples become lists)."""
        # Fields are flat values and tuples: no deep copy needed (asdict costs 0.25 ms a call,
        # which a 10^4-trial sweep pays several times over, and a 65,536-member population).
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}
        out["model_args"] = {k: _plain(v) for k, v in self.model_args}
        return out

    def with_seed(self, seed: int) -> Config:
        """This config with another seed, only the seed checked: the rest is valid already
        (validating every field of 10^4 trials took seconds before a sweep started)."""
        twin = object.__new__(Config)  # copy.copy's reduce protocol: 7x slower
        twin.__dict__.update(self.__dict__, seed=_coerce("seed", seed))
        return twin

    def replace(self, **changes: Any) -> Config:
        unknown = [k for k in changes if k not in FIELDS]
        if unknown:
            raise ConfigError(_unknown_key_message(unknown[0]))
        return dataclasses.replace(self, **changes)

    @property
    def classifies(self) -> bool:
        """True when the model predicts a class (mnist, images, classification tables)."""
        return is_classification(self.problem, self.task)

    @property
    def main_metric(self) -> str:
        """The validation metric that ranks runs: `metric`, or the problem's own."""
        return main_metric(self.problem, self.task, self.metric)[0]


def check_jobs(jobs: object, where: str = "--jobs") -> int:
    """A count of units at once (`--jobs N`, a preset's `jobs = N`), or a one-line refusal."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise ConfigError(f"{where} {jobs!r}: a whole number of units at once, 1 to {MAX_JOBS}")
    return jobs


def applies(name: str, values: Mapping[str, Any]) -> bool:
    """Whether field `name` changes what a run with these config values computes: a table
    MLP has no `channels`, `target_scale` or `image_size`. Run detail, `show` and the runs
    CSV list only these (a Config keeps every field, defaults included)."""

    def get(key: str) -> Any:
        return values.get(key, FIELDS[key].default)

    problem, model = get("problem"), get("model")
    return {
        "hidden": model != "cnn",  # an MLP's, and your own model may read it
        "channels": model != "mlp",
        "momentum": get("optimizer") in ("sgd", "rmsprop"),
        "features": problem in ("house", "table"),
        "target_scale": problem == "house",
        "path": problem in ("table", "images"),
        "target": problem == "table",
        "task": problem == "table",
        "image_size": problem == "images",
        "split_seed": problem != "mnist",  # mnist's validation rows are fixed
        "folds": problem in ("house", "table"),
        "fold": problem in ("house", "table") and get("folds") > 1,
        "split_column": problem == "table",
        "val_path": problem == "table",
        "test_path": problem == "table",
        "model_args": model not in MODELS,
        "prune_from": get("prune") != "none",
        "prune_eta": get("prune") != "none",
        "min_delta": get("patience") is not None,
        "metric": bool(get("metric")),  # the problem's own metric goes without saying
        "pbt_interval": get("schedule") == "pbt",
        "pbt_quantile": get("schedule") == "pbt",
        "pbt_fields": get("schedule") == "pbt",
    }.get(name, True)


def applying(values: Mapping[str, Any]) -> dict[str, Any]:
    """The config values that apply to the run (see `applies`), in their order."""
    return {k: v for k, v in values.items() if applies(k, values)}


def is_classification(problem: str, task: str = "") -> bool:
    """Whether runs of this problem (and table task) predict classes: rank by accuracy."""
    return problem in ("mnist", "images") or (problem == "table" and task == "classification")


def main_metric(problem: str, task: str = "", metric: str = "") -> tuple[str, bool]:
    """The ranking metric and whether higher is better (`task`: a table's, from its config;
    `metric`: the config's own choice, "" for the problem's)."""
    if not metric:
        metric = "val_acc" if is_classification(problem, task) else "val_mse"
    return metric, higher_is_better(metric)


def higher_is_better(metric: str) -> bool:
    """Whether a ranking metric of our problems is better higher (accuracy, F1, AUC...)."""
    return metric in HIGHER_METRICS


def ranking_metrics(problem: str, task: str = "", loss: str = "", classes: int = 0) -> list[str]:
    """The metrics `metric` may name for this problem: val_loss and the task's scores
    (val_nll for a gaussian_nll loss; ROC and PR AUC when `classes` is 2, or unknown: 0)."""
    if not is_classification(problem, task):
        return [*REGRESSION_METRICS[: 2 if loss == "gaussian_nll" else 1], "val_loss"]
    binary = classes in (0, 2)
    return [m for m in CLASS_METRICS if binary or m not in BINARY_METRICS] + ["val_loss"]


def check_metric(c: Config, classes: int = 0) -> None:
    """Refuse a `metric` this config's runs do not report (`classes`: how many, 0 when not
    yet known; data/sources.py checks again with the data's count)."""
    if not c.metric or (c.problem == "table" and not c.task):  # the task is inferred later
        return
    if c.problem == "mnist":
        classes = 10
    allowed = ranking_metrics(c.problem, c.task, c.loss, classes)
    if c.metric in allowed:
        return
    classifies = is_classification(c.problem, c.task)
    if c.metric in BINARY_METRICS and classifies:
        why = f"it needs exactly two classes; this data has {classes}"
    elif c.metric in CLASS_METRICS:
        why = "it scores classes; this problem is a regression"
    elif c.metric in REGRESSION_METRICS and classifies:
        why = "it scores a regression; this problem predicts classes"
    elif c.metric == "val_nll":
        why = "it needs loss = 'gaussian_nll'"
    else:
        why = "not a validation metric of ours" + suggest(c.metric, allowed)
    raise ConfigError(
        f"metric = {c.metric!r} cannot rank these runs ({why}); allowed: {' | '.join(allowed)}"
    )


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Config)}

# Defaults that differ by problem: applied by `make_config` when the key is not given.
_IMAGE_DEFAULTS: dict[str, Any] = {
    "model": "cnn",
    "hidden": (128,),
    "loss": "cross_entropy",
    "optimizer": "adam",
    "batch_size": 64,
    "epochs": 1,
}
PROBLEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "house": {},
    "table": {"features": ()},  # every column but the target
    "images": {"features": (), **_IMAGE_DEFAULTS},
    "mnist": _IMAGE_DEFAULTS,
}

# What each field accepts, in words, for error messages and the TUI editor.
ALLOWED: dict[str, str] = {
    "problem": " | ".join(PROBLEMS),
    "model": " | ".join(MODELS) + " | your own, package.module:build",
    "hidden": "a list of positive ints, e.g. [10, 10] or 10-10; [] for a linear model",
    "channels": "a non-empty list of positive ints, e.g. [16, 32, 64, 128]",
    "activation": " | ".join(ACTIVATIONS),
    "loss": "house, regression tables: mse | gaussian_nll; "
    "mnist, images, classification tables: cross_entropy | mse",
    "optimizer": " | ".join(OPTIMIZERS),
    "lr": f"a float in (0, {MAX_LR:g}]",
    "momentum": "a float in [0, 1)",
    "weight_decay": "a float >= 0",
    "schedule": " | ".join(SCHEDULES),
    "pbt_interval": "an int >= 1 (epochs between PBT's exploit and explore steps)",
    "pbt_quantile": "a float in (0, 0.5] (the bottom share copies from the top share)",
    "pbt_fields": f'a non-empty list of {" | ".join(PBT_FIELDS)}, e.g. ["lr"] or lr,momentum',
    "batch_size": "an int >= 1",
    "epochs": "an int >= 1",
    "time_budget_s": "a float > 0, or none",
    "train_samples": "an int >= 1, or none",
    "seed": f"an int in [0, {MAX_SEED}] (torch keeps 32 bits: seed 0 and 2**32 would be one run)",
    "device": "auto | cpu | cuda | cuda:N | mps",
    "precision": " | ".join(PRECISIONS),
    "features": "house: a non-empty list of numeric Ames columns; table: columns, [] = all",
    "target_scale": "a float > 0",
    "path": "an existing .csv/.parquet file (table) or folder (images)",
    "target": "a column name of the table",
    "task": " | ".join(TASKS) + ", or empty to infer it",
    "image_size": "an int from 8 to 512",
    "split_seed": f"an int in [0, {MAX_SEED}]",
    "folds": f"an int from 1 (no cross-validation) to {MAX_FOLDS}",
    "fold": "an int in [0, folds)",
    "split_column": "a column of the table holding train, val or test; empty: a random split",
    "val_path": "a .csv/.parquet file with the table's columns, or empty",
    "test_path": "a .csv/.parquet file with the table's columns, or empty",
    "model_args": "a TOML table of plain values, e.g. { width = 64, dropout = 0.1 }",
    "prune": " | ".join(PRUNES),
    "prune_from": "an int >= 1 (an epoch)",
    "prune_eta": "an int >= 2",
    "metric": "empty (the problem's own), or a validation metric: val_acc | val_macro_f1 | "
    "val_balanced_acc | val_roc_auc | val_pr_auc (two classes) | val_mse | val_nll | val_loss",
    "patience": "an int >= 1 (epochs without improvement of the main metric), or none",
    "min_delta": "a float >= 0 (the least change of the main metric that counts)",
    "keep": " | ".join(KEEPS),
    "save_every": "an int >= 1 (epochs between resumable checkpoints)",
    "save_minutes": "a float > 0 (minutes between resumable checkpoints)",
    "disk_budget_mb": "a float > 0 (megabytes of checkpoints a sweep may keep)",
}

CHOICES: dict[str, tuple[str, ...]] = {
    "problem": PROBLEMS,
    "model": MODELS,
    "activation": ACTIVATIONS,
    "loss": tuple(dict.fromkeys(LOSSES["house"] + LOSSES["mnist"])),
    "optimizer": OPTIMIZERS,
    "schedule": SCHEDULES,
    "precision": PRECISIONS,
    "task": TASKS,
    "prune": PRUNES,
    "keep": KEEPS,
}

_INT_LISTS = ("hidden", "channels")
_INTS = (
    "batch_size", "epochs", "seed", "train_samples", "image_size", "prune_from", "prune_eta",
    "patience", "save_every", "split_seed", "folds", "fold", "pbt_interval",
)  # fmt: skip
_FLOATS = (
    "lr", "momentum", "weight_decay", "time_budget_s", "target_scale", "min_delta",
    "save_minutes", "disk_budget_mb", "pbt_quantile",
)  # fmt: skip
_OPTIONAL = ("time_budget_s", "train_samples", "patience")
_TEXTS = ("split_column", "val_path", "test_path")  # typed without TOML quotes


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
    defaults = dict(PROBLEM_DEFAULTS[problem])
    if problem == "table" and "loss" not in merged and merged.get("task") == "classification":
        defaults["loss"] = "cross_entropy"  # an inferred task: data/sources.py:checked_config
    return Config(**{**defaults, **merged})


def make_configs(values: list[Mapping[str, Any]]) -> list[Config]:
    """make_config for each of a sweep's stored configs: those that differ only by seed
    are built once and copied with their seed (hypertui.engine.sweeps.sweep: 10^4 trials)."""
    built: dict[str, Config] = {}
    out = []
    for v in values:
        key = repr({**v, "seed": 0})  # a cache miss at worst: the order of the keys
        if key in built:
            out.append(built[key].with_seed(v.get("seed", 0)))
        else:
            built[key] = make_config(v)
            out.append(built[key])
    return out


def parse_value(key: str, text: str) -> Any:
    """Turn command-line text (`--set key=value`) into the field's type, then validate it."""
    if key not in FIELDS:
        raise ConfigError(_unknown_key_message(key))
    raw = text.strip()
    if key in _OPTIONAL and raw.lower() in ("", "none", "null"):
        return None
    if key in _INT_LISTS:
        if raw in ("", "[]", "()", "-"):  # "()" as the docs once spelled it
            return ()
        if re.fullmatch(r"\d+(-\d+)*", raw):  # the CSV spelling, 10-10-10
            return _coerce(key, [int(p) for p in raw.split("-")])
    if key in ("path", "target", "task", "model", *_TEXTS) and not raw.startswith('"'):
        return _coerce(key, raw)  # file paths and names need no TOML quotes
    if key in ("features", "pbt_fields") and not raw.startswith("["):
        return _coerce(key, [p.strip() for p in raw.split(",") if p.strip()])
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except RecursionError:
        raise ConfigError(f"{key} = {raw[:40]!r}...: nested too deeply") from None
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
    if name == "model_args":
        return _model_args(value)
    if name == "pbt_fields":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(_bad(name, value, "name at least one field"))
        for v in value:
            if v not in PBT_FIELDS:
                why = (
                    f"{v} cannot be perturbed: PBT changes only the optimizer's continuous "
                    "values, in place; the rest shape the model or its steps"
                    if v in FIELDS
                    else f"{v!r} is not a config field{suggest(str(v), PBT_FIELDS)}"
                )
                raise ConfigError(_bad(name, list(value), why))
        return tuple(dict.fromkeys(value))
    if name in ("path", "val_path", "test_path"):
        return _path(value, name)
    if name == "split_column" and isinstance(value, str):
        return value
    if name == "target" and isinstance(value, str):
        return value
    if name == "task" and value == "":
        return value
    if name == "metric":
        if not isinstance(value, str):
            raise ConfigError(_bad(name, value, "not a string"))
        return value  # which metrics fit is a question of the problem: check_metric
    if name == "model" and isinstance(value, str) and MODEL_PATH.match(value):
        return value  # imported and checked by _check_own_data
    if name == "features":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(_bad(name, value))
        if len(set(value)) != len(value):
            raise ConfigError(_bad(name, value, "a feature is listed twice"))
        return tuple(value)
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(_bad(name, value, "not an integer"))
        if name not in ("seed", "split_seed", "fold") and value < 1:
            raise ConfigError(_bad(name, value))
        if name == "fold" and value < 0:
            raise ConfigError(_bad(name, value))
        if name == "folds" and value > MAX_FOLDS:
            raise ConfigError(_bad(name, value))
        if name in ("seed", "split_seed") and not 0 <= value <= MAX_SEED:
            raise ConfigError(_bad(name, value, "out of range"))
        if name == "image_size" and not 8 <= value <= 512:
            raise ConfigError(_bad(name, value))
        if name == "prune_eta" and value < 2:
            raise ConfigError(_bad(name, value))
        return value
    if name in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(_bad(name, value, "not a number"))
        value = float(value)
        ok = math.isfinite(value) and {
            "momentum": 0.0 <= value < 1.0,
            "weight_decay": value >= 0.0,
            "min_delta": value >= 0.0,
            "lr": 0.0 < value <= MAX_LR,
            "pbt_quantile": 0.0 < value <= 0.5,
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
    if why := too_big(c):
        raise ConfigError(why)
    if c.model == "cnn" and c.problem not in ("mnist", "images"):
        raise ConfigError(
            f"model = 'cnn' needs problem = 'mnist' or 'images' (got problem = {c.problem!r})"
        )
    if c.model == "cnn" and c.problem == "images" and 2 ** len(c.channels) > c.image_size:
        raise ConfigError(
            f"channels = {list(c.channels)} has {len(c.channels)} blocks; {c.image_size}x"
            f"{c.image_size} images allow at most {int(math.log2(c.image_size))} (each maxpool "
            "halves the side)"
        )
    if c.model == "cnn" and c.problem == "mnist" and len(c.channels) > MAX_CNN_BLOCKS:
        raise ConfigError(
            f"channels = {list(c.channels)} has {len(c.channels)} blocks; a CNN on 28x28 "
            f"images has at most {MAX_CNN_BLOCKS} blocks (each maxpool halves: 28, 14, 7, 3, 1)"
        )
    if c.problem == "house" and not c.features:
        raise ConfigError("features = []: the house problem needs a non-empty list of columns")
    if c.problem == "table" and c.task and c.loss not in TASK_LOSSES[c.task]:
        raise ConfigError(
            f"loss = {c.loss!r} does not fit a {c.task} table; "
            f"allowed for {c.task}: {' | '.join(TASK_LOSSES[c.task])}"
        )
    if c.loss not in LOSSES[c.problem]:
        raise ConfigError(
            f"loss = {c.loss!r} does not fit problem = {c.problem!r}; "
            f"allowed for {c.problem}: {' | '.join(LOSSES[c.problem])}"
        )
    check_metric(c)
    if c.momentum and c.optimizer not in ("sgd", "rmsprop"):
        raise ConfigError(
            f"momentum = {c.momentum} only applies to sgd and rmsprop "
            f"(optimizer = {c.optimizer!r} has its own betas); set momentum = 0"
        )


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _model_args(value: Any) -> tuple:
    """A TOML table of plain values -> sorted (key, value) pairs (hashable, lists as tuples)."""
    if isinstance(value, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in value
    ):
        value = dict(value)
    if not isinstance(value, Mapping):
        raise ConfigError(_bad("model_args", value, "not a table"))

    def check(key: str, v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple(check(key, x) for x in v)
        if isinstance(v, (str, int, float, bool)):  # bool is an int; both are fine
            return v
        raise ConfigError(
            _bad(
                "model_args", {key: v}, f"{key}: only strings, numbers, booleans and lists of them"
            )
        )

    for key in value:
        if not isinstance(key, str) or not key.isidentifier():
            raise ConfigError(_bad("model_args", key, "keys must be Python identifiers"))
    return tuple(sorted((k, check(k, v)) for k, v in value.items()))


def _path(value: Any, name: str = "path") -> str:
    if not isinstance(value, str):
        raise ConfigError(_bad(name, value, "not a string"))
    if not value:
        return ""
    # os.path, not pathlib: a sweep builds many configs
    path = os.path.abspath(expand_user(value, f"{name} = {value!r}"))
    if not os.path.exists(path):
        raise ConfigError(f"{name} = {value!r}: no such file or folder")
    return path


def _check_own_data(c: Config) -> None:
    """Table, image and own-model settings: the file exists, the target is a column, etc."""
    own = {"path": c.path, "target": c.target, "task": c.task}
    if c.problem not in ("table", "images"):
        for key in ("path", "target", "task"):
            if own[key]:
                raise ConfigError(f"{key} applies to problem = 'table' or 'images' only")
    if c.problem == "images" and (c.target or c.task):
        raise ConfigError("target and task apply to problem = 'table' only; images are classified")
    if c.problem in ("table", "images") and not c.path:
        what = "a .csv or .parquet file" if c.problem == "table" else "an image folder"
        raise ConfigError(f"problem = {c.problem!r} needs path = {what}")
    _check_split(c)
    if c.problem == "images" and c.features:
        raise ConfigError("features apply to tables; images use every pixel")
    if c.model not in MODELS:
        check_builder_spec(c.model)
    elif c.model_args:
        raise ConfigError("model_args apply to your own model (model = 'package.module:build')")


def _check_split(c: Config) -> None:
    """How rows are split (data/splits.py): what applies to which problem, and what
    cannot go together."""
    if c.problem not in ("table",):
        for key in ("split_column", "val_path", "test_path"):
            if getattr(c, key):
                raise ConfigError(f"{key} applies to problem = 'table' only")
    if c.folds > 1 and c.problem not in ("house", "table"):
        raise ConfigError(
            f"folds = {c.folds}: cross-validation is for the house and table problems "
            f"({c.problem} has fixed validation and test images)"
        )
    if c.fold >= c.folds:
        raise ConfigError(f"fold = {c.fold} is not one of folds = {c.folds}: 0 .. {c.folds - 1}")
    if c.problem == "mnist" and c.split_seed:
        raise ConfigError("split_seed: mnist's validation and test images are fixed")
    if c.split_column and (c.val_path or c.test_path):
        raise ConfigError(
            "split_column and val_path/test_path both say where rows go: give one of them"
        )
    if c.folds > 1 and c.val_path:
        raise ConfigError(
            f"folds = {c.folds} take validation rows from the main file in turn: "
            "leave val_path out (a test_path is fine)"
        )
    if c.split_column and c.split_column == c.target:
        raise ConfigError(f"split_column = {c.split_column!r} is the target")


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
