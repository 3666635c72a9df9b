"""Your own table: a CSV or Parquet file, one column to predict, pandas for the encoding.

What loading does, each step reported in the run's notes:
  - rows with no target are dropped (counted); missing feature values are imputed, numbers
    with the training split's median, text as a category of its own ("missing");
  - text, category and boolean columns are one-hot encoded, one column for each category
    the training split holds; a value only validation or test rows hold (a category
    training never saw) is encoded as all zeros, and counted in the notes. A text column
    with more than MAX_CATEGORIES distinct values (an id, a name, a date) is refused;
  - numbers are standardised with the training split's mean and std only, and so is a
    regression target (metrics and predictions are turned back into its units);
  - the split is 70/15/15 under `split_seed`, as for the house problem, or as the config
    says otherwise: K folds, a split column, separate validation/test files
    (data/splits.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hypertui.engine.core.errors import DataError
from hypertui.engine.data.sources import (
    feature_columns,
    few,
    infer_task,
    read_table,
    table_rows,
)
from hypertui.engine.data.splits import SplitPlan


def load_table(path: str, target: str, features: tuple[str, ...], task: str, plan: SplitPlan):
    """The table as standardised tensors, split as `plan` says (see the module docstring)."""
    import pandas as pd

    from hypertui.engine.data.dataset import Dataset, Split

    table = read_table(path)
    used = feature_columns(table, target, features, plan.column)
    notes = [f"table {Path(path).name}: {len(table)} rows, target {target!r}"]
    inferred, why = infer_task(table[target])
    notes.append(
        f"task = {task}" + (f" (inferred: {why})" if inferred == task else " (set in the config)")
    )
    n_main = int(table[target].notna().sum())
    if dropped := len(table) - n_main:
        notes.append(f"dropped {dropped} of {len(table)} rows with no target")
    if n_main < 3 and plan == SplitPlan():
        raise DataError(f"{Path(path).name}: {n_main} rows with a target; a split needs at least 3")
    frame, parts, split_note = table_rows(path, target, features, task, plan)
    notes.append(split_note)

    train_rows = frame.iloc[parts[0]]
    inputs = [fit_column(train_rows[name], str(name)) for name in used]
    x, counts = encode(frame, inputs)
    if counts["imputed"]:
        notes.append(
            f"imputed {counts['imputed']} missing numbers with the training split's median"
        )
    if counts["missing_text"]:
        notes.append(f"{counts['missing_text']} missing text values became the category 'missing'")
    for name, count in counts["unseen"].items():
        notes.append(
            f"{count} values of {name!r} outside the training split are categories training "
            "never saw: encoded as all zeros"
        )

    target_mean, target_std, classes = 0.0, 1.0, ()
    raw = frame[target]
    if task == "classification":
        labels = raw.astype("string")
        classes = tuple(sorted(labels.unique()))
        y = torch.from_numpy(pd.Categorical(labels, categories=classes).codes.astype(np.int64))
        notes.append(f"{len(classes)} classes: {few(list(classes))}")
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

    names = [n for column in inputs for n in column_names(column)]
    return Dataset(
        "table",
        split(parts[0]),
        split(parts[1]),
        split(parts[2]),
        feature_names=tuple(names),
        notes=tuple(notes),
        feature_mean=tuple(m for c in inputs for m in scaling(c)[0]),
        feature_std=tuple(v for c in inputs for v in scaling(c)[1]),
        target_mean=target_mean,
        target_std=target_std,
        classes=classes,
        preprocessing={
            "inputs": inputs,
            "target": target,
            "task": task,
            "target_mean": target_mean,
            "target_std": target_std,
            "classes": list(classes),
        },
    )


def fit_column(train: object, name: str) -> dict:
    """How one input column is encoded, fitted on the training split's values alone: a
    number's median (for missing values), mean and std; a text column's categories."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(train) or not pd.api.types.is_numeric_dtype(train):
        text = train.astype("string").fillna("missing")
        return {"name": name, "kind": "text", "categories": sorted(text.unique())}
    values = train.to_numpy(np.float64)
    known = values[~np.isnan(values)]
    median = float(np.median(known)) if len(known) else 0.0
    values = np.where(np.isnan(values), median, values)
    std = float(values.std())
    return {
        "name": name,
        "kind": "number",
        "median": median,
        "means": [float(values.mean())],
        "stds": [std if std > 0 else 1.0],
    }


def scaling(column: dict) -> tuple[list[float], list[float]]:
    """The means and stds of a column's inputs (one-hot inputs are not scaled)."""
    if column["kind"] == "text":
        return [0.0] * len(column["categories"]), [1.0] * len(column["categories"])
    return column["means"], column["stds"]


def column_names(column: dict) -> list[str]:
    if column["kind"] == "text":
        return [f"{column['name']}={c}" for c in column["categories"]]
    return [column["name"]]


def encode(frame: object, inputs: list[dict]) -> tuple[np.ndarray, dict]:
    """The model's inputs for a frame's rows (training's, or new rows to predict), with
    what the encoding met: numbers imputed, text missing, categories training never saw
    (encoded as all zeros)."""
    import pandas as pd

    columns, imputed, missing_text, unseen = [], 0, 0, {}
    for spec in inputs:
        column = frame[spec["name"]]
        if spec["kind"] == "text":
            missing_text += int(column.isna().sum())
            text = column.astype("string").fillna("missing")
            codes = pd.Index(spec["categories"]).get_indexer(text)  # -1: not a training category
            if n_unseen := int((codes < 0).sum()):
                unseen[spec["name"]] = n_unseen
            # one-hot inputs stay 0/1: no scaling
            columns += [(codes == i).astype(np.float64) for i in range(len(spec["categories"]))]
            continue
        values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
        missing = np.isnan(values)
        imputed += int(missing.sum())
        values = np.where(missing, spec["median"], values)
        columns.append((values - spec["means"][0]) / spec["stds"][0])
    x = np.stack(columns, axis=1).astype(np.float32) if columns else np.zeros((len(frame), 0))
    return x, {"imputed": imputed, "missing_text": missing_text, "unseen": unseen}
