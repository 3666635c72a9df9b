"""Your own table: a CSV or Parquet file, one column to predict, pandas for the encoding.

What loading does, each step reported in the run's notes:
  - rows with no target are dropped (counted); missing feature values are imputed, numbers
    with the training split's median, text as a category of its own ("missing");
  - text, category and boolean columns are one-hot encoded; a text column with more than
    MAX_CATEGORIES distinct values (an id, a name, a date) is refused, not encoded;
  - numbers are standardised with the training split's mean and std only, and so is a
    regression target (metrics and predictions are turned back into its units);
  - the split is 70/15/15 with a fixed seed, as for the house problem.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from engine.errors import ConfigError, DataError, suggest

FRACTIONS = (0.70, 0.15)  # train, val; test is the rest
MAX_CATEGORIES = 100  # distinct values a text column may have and still be one-hot encoded
MAX_CLASS_INTEGERS = 20  # an integer target with at most this many values is a class label
SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: str):
    """The file as a DataFrame, re-read when it changes on disk."""
    p = Path(path)
    try:
        stat = p.stat()
    except OSError:
        raise ConfigError(f"path = {path!r}: no such file") from None
    return _read(str(p), stat.st_mtime_ns, stat.st_size)


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
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"path = {path!r}: cannot read the table ({first})") from None
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
    integral = bool(np.all(np.mod(values.to_numpy(np.float64), 1) == 0))
    if integral and n <= MAX_CLASS_INTEGERS:
        return "classification", f"it holds {n} distinct whole numbers (<= {MAX_CLASS_INTEGERS})"
    return "regression", f"it holds numbers with {n} distinct values"


def feature_columns(table, target: str, features: tuple[str, ...]) -> list[str]:
    return list(features) if features else [c for c in table.columns if c != target]


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
            f"problem = 'table' needs target = the column to predict; columns: {_few(columns)}"
        )
    if target not in table.columns:
        raise ConfigError(
            f"target = {target!r} is not a column of {Path(path).name}"
            f"{suggest(target, columns)}; columns: {_few(columns)}"
        )
    for name in features:
        if name not in table.columns:
            raise ConfigError(
                f"features: {name!r} is not a column of {Path(path).name}"
                f"{suggest(name, columns)}; columns: {_few(columns)}"
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
    if y.empty:
        raise ConfigError(f"target = {target!r} has no values")
    if not task:
        task = infer_task(table[target])[0]
    if task == "classification" and y.nunique() < 2:
        raise ConfigError(
            f"target = {target!r} has only one class ({y.iloc[0]!r}); "
            "classification needs at least two"
        )
    if task == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise ConfigError(
            f"target = {target!r} holds text, so it cannot be a regression target; "
            "use task = 'classification'"
        )
    return task


def load_table(path: str, target: str, features: tuple[str, ...], task: str, seed: int):
    """The table as standardised tensors, split 70/15/15 (see the module docstring)."""
    import pandas as pd

    from engine.data import Dataset, Split

    table = read_table(path)
    used = feature_columns(table, target, features)
    notes = [f"table {Path(path).name}: {len(table)} rows, target {target!r}"]
    inferred, why = infer_task(table[target])
    notes.append(
        f"task = {task}" + (f" (inferred: {why})" if inferred == task else " (set in the config)")
    )
    frame = table[[*used, target]].dropna(subset=[target]).reset_index(drop=True)
    if dropped := len(table) - len(frame):
        notes.append(f"dropped {dropped} of {len(table)} rows with no target")
    n = len(frame)
    if n < 3:
        raise DataError(f"{Path(path).name}: {n} rows with a target; a split needs at least 3")
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_val = max(1, int(FRACTIONS[0] * n)), max(1, int(FRACTIONS[1] * n))
    parts = np.split(order, [n_train, n_train + n_val])
    notes.append(f"split 70/15/15 with seed {seed}: {[len(p) for p in parts]} rows")

    columns, means, stds, names = [], [], [], []
    imputed, missing_text = 0, 0
    for name in used:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            missing_text += int(column.isna().sum())
            text = column.astype("string").fillna("missing")
            dummies = pd.get_dummies(text, prefix=name, prefix_sep="=", dtype=np.float64)
            for dummy in dummies.columns:  # one-hot inputs stay 0/1: no standardising
                columns.append(dummies[dummy].to_numpy())
                means.append(0.0)
                stds.append(1.0)
                names.append(str(dummy))
            continue
        values = column.to_numpy(np.float64)
        missing = np.isnan(values)
        if missing.any():
            train_values = values[parts[0]]
            median = np.nanmedian(train_values) if (~np.isnan(train_values)).any() else 0.0
            values = np.where(missing, median, values)
            imputed += int(missing.sum())
        mean, std = values[parts[0]].mean(), values[parts[0]].std()
        columns.append((values - mean) / (std if std > 0 else 1.0))
        means.append(float(mean))
        stds.append(float(std if std > 0 else 1.0))
        names.append(str(name))
    if imputed:
        notes.append(f"imputed {imputed} missing numbers with the training split's median")
    if missing_text:
        notes.append(f"{missing_text} missing text values became the category 'missing'")
    x = np.stack(columns, axis=1).astype(np.float32)

    target_mean, target_std, classes = 0.0, 1.0, ()
    raw = frame[target]
    if task == "classification":
        labels = raw.astype("string")
        classes = tuple(sorted(labels.unique()))
        y = torch.from_numpy(pd.Categorical(labels, categories=classes).codes.astype(np.int64))
        notes.append(f"{len(classes)} classes: {_few(list(classes))}")
    else:
        values = raw.to_numpy(np.float64)
        target_mean = float(values[parts[0]].mean())
        target_std = float(values[parts[0]].std()) or 1.0
        y = torch.from_numpy(((values - target_mean) / target_std).astype(np.float32))[:, None]
        notes.append(
            f"target standardised (train mean {target_mean:.5g}, std {target_std:.5g}); "
            "metrics and predictions in its own units, losses standardised"
        )
    xt = torch.from_numpy(x)

    def split(idx: np.ndarray) -> Split:
        index = torch.from_numpy(idx)
        return Split(xt[index], y[index])

    return Dataset(
        "table",
        split(parts[0]),
        split(parts[1]),
        split(parts[2]),
        feature_names=tuple(names),
        notes=tuple(notes),
        feature_mean=tuple(means),
        feature_std=tuple(stds),
        target_mean=target_mean,
        target_std=target_std,
        classes=classes,
    )


def _few(names: list[str], n: int = 8) -> str:
    shown = ", ".join(str(c) for c in names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")
