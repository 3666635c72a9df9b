"""What a config's data holds, checked before anything trains, without importing torch.

A table's target and feature columns and its task (inferred when not set), an image
folder's layout, the house problem's feature names: every preset is checked against its
data when it is loaded, so a typo is a one-line message in a fraction of a second, not a
failed trial after torch's import. The loaders (table.py, images.py, house.py) read the
same files into tensors and use these checks' answers.

    config = checked_config({"problem": "table", "path": "penguins.csv", "target": "species"})
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypertui.engine.core.config import (
    BINARY_METRICS,
    DEFAULT_FEATURES,
    Config,
    check_metric,
    make_config,
)
from hypertui.engine.core.errors import ConfigError, DataError, first_line, suggest


def checked_config(values: Mapping[str, Any] | None = None, **more: Any) -> Config:
    """make_config, then the data it names checked: a table's columns (its task inferred,
    and its loss cross-entropy when it classifies and no loss was given), an image
    folder's layout, the house features. Each refusal is a ConfigError naming the field."""
    values = {**(values or {}), **more}
    config = make_config(values)
    if config.problem == "table":
        task = check_table(config.path, config.target, config.features, config.task)
        check_table_split(config, task)
        loss = config.loss
        if "loss" not in values and task == "classification":
            loss = "cross_entropy"
        config = config.replace(task=task, loss=loss)
    elif config.problem == "images":
        check_images(config.path)
    elif config.problem == "house" and config.features != DEFAULT_FEATURES:
        check_house_features(config.features)
    if config.problem == "house" and config.folds > 1:
        check_house_folds(config.features, config.split_seed, config.folds)
    if config.metric in BINARY_METRICS and config.classifies:  # two classes, or a message
        check_metric(config, count_classes(config))
    return config


def count_classes(config: Config) -> int:
    """How many classes a classification table's target or an image set holds."""
    if config.problem == "table":
        read_table(config.path)  # a missing file is refused here, before its stat
        st = Path(config.path).stat()
        return _table_classes(config.path, st.st_mtime_ns, st.st_size, config.target)
    layout = check_images(config.path)
    if layout != "folder":  # FashionMNIST and CIFAR-10 files: ten classes each
        return 10
    return len(class_folders(Path(config.path)))


@functools.lru_cache(maxsize=16)
def _table_classes(path: str, mtime_ns: int, size: int, target: str) -> int:
    """(Every config of a sweep asks: once per file version.)"""
    return int(_read(path, mtime_ns, size)[target].dropna().astype("string").nunique())


# --- tables -------------------------------------------------------------------------------

MAX_CATEGORIES = 100  # distinct values a text column may have and still be one-hot encoded
MAX_CLASSES = 1000  # distinct values a classification target may have
MIN_ROWS = 3  # rows with a target: one each for train, val and test at the least
MAX_CLASS_INTEGERS = 20  # an integer target with at most this many values is a class label
SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str):
    """The file as a DataFrame, re-read when it changes on disk. Only a regular file is a
    table: a FIFO would block the reader forever, a link to /dev/zero never end."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise ConfigError(f"path = {path!r}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            f"path = {path!r}: not a regular file (a folder, a pipe or a device); "
            "a table is a .csv or .parquet file"
        )
    return _read(str(p), st.st_mtime_ns, st.st_size)


def _plain(value):
    """A numpy scalar as the plain value it holds, for messages (7, not np.int64(7))."""
    return value.item() if hasattr(value, "item") else value


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int):
    import pandas as pd

    suffix = Path(path).suffix.lower()
    if Path(path).is_dir() or suffix not in SUFFIXES:
        raise ConfigError(f"path = {path!r}: a table is a .csv or .parquet file")
    try:
        if suffix == ".csv":
            table = pd.read_csv(path)
        else:
            table = pd.read_parquet(path)
    except ImportError as exc:  # pandas reads Parquet through pyarrow or fastparquet
        raise ConfigError(
            f"path = {path!r}: reading Parquet needs pyarrow ({exc}); "
            "`pip install pyarrow` or save the table as CSV"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"path = {path!r}: cannot read the table ({first_line(exc)})") from None
    if table.empty:
        raise ConfigError(f"path = {path!r}: the table has no rows")
    return table


def infer_task(column) -> tuple[str, str]:
    """(task, why) for a target column: text or few integer values -> classification."""
    import pandas as pd

    values = column.dropna()
    n = values.nunique()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification", f"it holds text or booleans ({n} distinct values)"
    integral = bool(((values.astype(float) % 1) == 0).all())
    if integral and n <= MAX_CLASS_INTEGERS:
        return "classification", f"it holds {n} distinct whole numbers (<= {MAX_CLASS_INTEGERS})"
    return "regression", f"it holds numbers with {n} distinct values"


def feature_columns(table, target: str, features: tuple[str, ...], split_column: str = "") -> list:
    """The named features, or every column but the target (and the split column)."""
    if features:
        return list(features)
    return [c for c in table.columns if c not in (target, split_column)]


def check_table_split(config: Config, task: str) -> None:
    """The split the config asks for can be made: the split column exists and names only
    train, val and test; separate files hold the columns training uses; folds fit the
    rows and, stratified, every class (data/splits.py). Cached per file version."""
    from hypertui.engine.data.splits import SplitPlan

    plan = SplitPlan.of(config)
    if plan == SplitPlan():
        return
    stamps = tuple(_stamp_of(p) for p in (config.path, plan.val_path, plan.test_path))
    _check_split(config.path, config.target, config.features, task, plan, stamps)


def _stamp_of(path: str) -> tuple:
    if not path:
        return ()
    read_table(path)  # only a regular table file: refused here with its own message
    st = Path(path).stat()
    return (st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _check_split(path, target, features, task, plan, stamps) -> None:
    table_rows(path, target, features, task, plan)


def table_rows(path: str, target: str, features: tuple, task: str, plan):
    """(the rows that train, validate and test as one frame, their parts, a note): the
    main file's rows with a target, then a validation file's, then a test file's."""
    import numpy as np
    import pandas as pd

    from hypertui.engine.data.splits import choose_parts

    table = read_table(path)
    if plan.column and plan.column not in table.columns:
        columns = [str(c) for c in table.columns]
        raise ConfigError(
            f"split_column = {plan.column!r} is not a column of {Path(path).name}"
            f"{suggest(plan.column, columns)}; columns: {few(columns)}"
        )
    if plan.column and plan.column in features:
        raise ConfigError(f"features: {plan.column!r} is the split column, not a feature")
    used = [*feature_columns(table, target, features, plan.column), target]
    frames = [table[used + ([plan.column] if plan.column else [])].dropna(subset=[target])]
    for key in ("val_path", "test_path"):
        if other := getattr(plan, key):
            extra = read_table(other)
            if missing := [c for c in used if c not in extra.columns]:
                raise ConfigError(
                    f"{key} = {Path(other).name!r} lacks the columns {few(list(map(str, missing)))}"
                    f" that {Path(path).name} trains on"
                )
            rows = extra[used].dropna(subset=[target])
            if rows.empty:
                raise ConfigError(f"{key} = {Path(other).name!r}: no row with a target")
            frames.append(rows)
    frame = pd.concat(frames, ignore_index=True)
    labels = None
    if task == "classification" and plan.folds > 1:
        labels = np.asarray(frame[target].astype("string"), dtype=object)
    n_val = len(frames[1]) if plan.val_path else 0
    n_test = len(frames[-1]) if plan.test_path else 0
    parts, note = choose_parts(
        len(frames[0]),
        plan.seed,
        n_val=n_val,
        n_test=n_test,
        column=plan.column,
        column_values=frame[plan.column].tolist() if plan.column else (),
        folds=plan.folds,
        fold=plan.fold,
        labels=labels,
    )
    return frame, parts, note


def check_table(path: str, target: str, features: tuple[str, ...], task: str) -> str:
    """Refuse what cannot train (clear messages); return the task, inferred when empty.

    Every Config of a table comes here (a sweep builds hundreds): cached per file version."""
    read_table(path)  # a missing file is refused here, before the cache key needs its stat
    stat = Path(path).stat()
    return _check(path, stat.st_mtime_ns, stat.st_size, target, tuple(features), task)


@functools.lru_cache(maxsize=64)
def _check(path: str, mtime_ns: int, size: int, target: str, features: tuple, task: str) -> str:
    import pandas as pd

    table = _read(path, mtime_ns, size)
    columns = [str(c) for c in table.columns]
    if not target:
        raise ConfigError(
            f"problem = 'table' needs target = the column to predict; columns: {few(columns)}"
        )
    if target not in table.columns:
        raise ConfigError(
            f"target = {target!r} is not a column of {Path(path).name}"
            f"{suggest(target, columns)}; columns: {few(columns)}"
        )
    for name in features:
        if name not in table.columns:
            raise ConfigError(
                f"features: {name!r} is not a column of {Path(path).name}"
                f"{suggest(name, columns)}; columns: {few(columns)}"
            )
    if target in features:
        raise ConfigError(f"features: {target!r} is the target, not a feature")
    used = feature_columns(table, target, features)
    if not used:
        raise ConfigError(f"{Path(path).name} has no column besides the target {target!r}")
    for name in used:
        column = table[name]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
            n = column.nunique()
            if n > MAX_CATEGORIES:
                raise ConfigError(
                    f"features: {name!r} is text with {n} distinct values; one-hot encoding "
                    f"takes at most {MAX_CATEGORIES} (an id, a name or a date cannot be "
                    "encoded): leave it out of features or turn it into numbers"
                )
    y = table[target].dropna()
    if len(y) < MIN_ROWS:
        raise ConfigError(
            f"target = {target!r} has {len(y)} values; a train/val/test split needs at least "
            f"{MIN_ROWS} rows with a target"
        )
    if y.nunique() < 2:  # whatever the task: nothing to learn
        raise ConfigError(
            f"target = {target!r} holds one value ({_plain(y.iloc[0])!r}) in every row: "
            "there is nothing to predict"
        )
    if not task:
        task = infer_task(table[target])[0]
    if task == "classification" and y.nunique() > MAX_CLASSES:
        raise ConfigError(
            f"target = {target!r} has {y.nunique():,} distinct values; a classification "
            f"target has at most {MAX_CLASSES:,} classes (an id or a name is not a class): "
            "set task = 'regression' if it is a number"
        )
    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise ConfigError(
            f"target = {target!r} holds text, so it cannot be a regression target; "
            "use task = 'classification'"
        )
    return task


def few(names: list[str], n: int = 8) -> str:
    shown = ", ".join(str(c) for c in names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


# --- image folders ---------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def check_images(path: str) -> str:
    """describe_layout, cached per folder version: every Config of an image sweep asks."""
    return _layout(path, os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _layout(path: str, mtime_ns: int) -> str:
    return describe_layout(Path(path))


def describe_layout(path: Path) -> str:
    """Which layout `path` holds ("idx", "cifar-py", "cifar-bin", "folder"), or a ConfigError."""
    if not path.is_dir():
        raise ConfigError(f"path = {str(path)!r}: images need a folder")
    if idx_folder(path) is not None:
        return "idx"
    if cifar_folder(path, "py") is not None:
        return "cifar-py"
    if cifar_folder(path, "bin") is not None:
        return "cifar-bin"
    classes = class_folders(path)
    if not classes:
        raise ConfigError(
            f"path = {str(path)!r}: no images found; expected class subfolders holding "
            f"{', '.join(sorted(IMAGE_SUFFIXES))} files (path/cat/1.png, path/dog/2.png), "
            "FashionMNIST/raw/ or cifar-10-batches-py/"
        )
    if len(classes) < 2:
        raise ConfigError(
            f"path = {str(path)!r}: only one class folder with images ({classes[0][0]!r}); "
            "classification needs at least two"
        )
    return "folder"


def idx_folder(path: Path) -> Path | None:
    for candidate in (path / "FashionMNIST" / "raw", path / "MNIST" / "raw", path / "raw", path):
        if all(idx_path(candidate, n) for n in IDX_NAMES):
            return candidate
    return None


def cifar_folder(path: Path, kind: str) -> Path | None:
    suffix = ".bin" if kind == "bin" else ""
    for candidate in (path / f"cifar-10-batches-{kind}", path):
        if (candidate / f"test_batch{suffix}").is_file() and (
            candidate / f"data_batch_1{suffix}"
        ).is_file():
            return candidate
    return None


def class_folders(path: Path) -> list[tuple[str, list[Path]]]:
    out = []
    for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
        )
        if files:
            out.append((folder.name, files))
    return out


def idx_path(folder: Path, name: str) -> Path | None:
    """An IDX file (MNIST's format) in `folder`, gzipped or not."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


# --- the bundled house table ---------------------------------------------------------

HOUSE_TABLE = "ames_housing.csv.gz"


def read_house_table() -> tuple[list[str], list[list[str]]]:
    """The table's header and rows, as text (the csv module: importing pandas alone took
    longer than a house run's whole start)."""
    try:
        with open(Path(__file__).with_name(HOUSE_TABLE), "rb") as fh:
            rows = list(csv.reader(io.TextIOWrapper(gzip.GzipFile(fileobj=fh), "utf-8")))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"the bundled Ames table engine/data/{HOUSE_TABLE} cannot be read ({exc}); "
            "reinstall hypertui"
        ) from exc
    return rows[0], rows[1:]


def number_or_nan(text: str) -> float:
    return float(text) if text else math.nan  # an empty cell: the value is missing


@functools.lru_cache(maxsize=1)
def numeric_columns() -> tuple[str, ...]:
    """Names of the table's numeric columns: what `features` may name."""
    header, rows = read_house_table()
    numeric = []
    for i, name in enumerate(header):
        try:
            [number_or_nan(row[i]) for row in rows]
        except ValueError:
            continue
        if name not in ("Order", "PID"):
            numeric.append(name)
    return tuple(numeric)


def house_rows(features: tuple[str, ...]):
    """The house table's selected feature columns and the price as floats [rows, columns],
    rows missing a value dropped; and how many were dropped."""
    import numpy as np

    header, rows = read_house_table()
    where = [header.index(name) for name in [*features, "SalePrice"]]
    table = np.array([[number_or_nan(row[i]) for i in where] for row in rows], dtype=np.float64)
    complete = table[~np.isnan(table).any(axis=1)]
    return complete, len(table) - len(complete)


@functools.lru_cache(maxsize=16)
def check_house_folds(features: tuple[str, ...], seed: int, folds: int) -> None:
    """Folds of the house rows: at most as many as the rows outside the test split."""
    from hypertui.engine.data.splits import fold_parts, random_parts

    complete, _ = house_rows(features)
    fold_parts(random_parts(len(complete), seed), folds, 0)


def check_house_features(features: tuple[str, ...]) -> None:
    columns = numeric_columns()
    for name in features:
        if name not in columns:
            raise ConfigError(
                f"features: {name!r} is not a numeric column of the Ames table"
                f"{suggest(name, columns)}; e.g. {', '.join(sorted(columns)[:6])}, ..."
            )
    if "SalePrice" in features:
        raise ConfigError("features: 'SalePrice' is the target, not a feature")
