"""Which rows train, validate and test: a seeded 70/15/15 split, K folds, or the user's own.

- `random` (the default): a permutation under `split_seed`, cut 70/15/15.
- `folds = K` (house and tables): the test rows are those the random split tests on; the
  other rows are cut into K folds of equal size, stratified by class for classification,
  and fold `fold` validates while the others train. Each of the K runs of a config sees
  every row outside the test split once in validation, so the spread over folds is the
  split's variance. Equal sizes let the K folds train as members of one population (the
  same steps an epoch): the few rows left over (fewer than K) join the test split.
- a split column (tables): each row's value says train, val or test.
- separate files (tables): `val_path` and/or `test_path` hold those rows; the rows of
  `path` are split for whatever is not given.

Only numpy: the preset checks (data/sources.py) run this before torch is imported, so a
fold that cannot be stratified is a one-line refusal when the preset loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypertui.engine.core.errors import ConfigError

FRACTIONS = (0.70, 0.15)  # train, val; test is the rest
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitPlan:
    """A config's split fields (hashable: loaders cache data sets by it)."""

    seed: int = 0
    folds: int = 1
    fold: int = 0
    column: str = ""
    val_path: str = ""
    test_path: str = ""

    @classmethod
    def of(cls, config: Any) -> SplitPlan:
        return cls(
            config.split_seed,
            config.folds,
            config.fold,
            config.split_column,
            config.val_path,
            config.test_path,
        )


def random_parts(n: int, seed: int) -> list[np.ndarray]:
    """Row indices of train, val and test, 70/15/15 under `seed`; every part holds a row
    (3 rows: 1/1/1; a test split of 0 rows failed in torch.cat)."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = max(1, min(int(FRACTIONS[0] * n), n - 2))
    n_val = max(1, min(int(FRACTIONS[1] * n), n - n_train - 1))
    return np.split(order, [n_train, n_train + n_val])


def choose_parts(
    n_main: int,
    seed: int,
    *,
    n_val: int = 0,
    n_test: int = 0,
    column: str = "",
    column_values: Sequence = (),
    folds: int = 1,
    fold: int = 0,
    labels: np.ndarray | None = None,
) -> tuple[list[np.ndarray], str]:
    """(train, val, test) row indices and a note saying how they were chosen, over a table
    whose first `n_main` rows are the main file's, then `n_val` rows of a validation file
    and `n_test` of a test file. `labels` (one per row) stratify folds."""
    if column:
        parts = column_parts(column_values, column)
        how = f"split by column {column!r}"
    elif n_val or n_test:
        main = _two_way(n_main, seed, "test" if n_val else "val")
        files = n_main + np.arange(n_val), n_main + n_val + np.arange(n_test)
        parts = (
            [main[0], files[0], files[1]]
            if n_val and n_test
            else ([main[0], files[0], main[1]] if n_val else [main[0], main[1], files[1]])
        )
        kept = [name for name, n in (("val", n_val), ("test", n_test)) if n]
        how = f"{' and '.join(kept)} rows from their own file{'s' if len(kept) > 1 else ''}"
        if not (n_val and n_test):
            how += f", the rest of the main file's split 85/15 with seed {seed}"
    else:
        parts = random_parts(n_main, seed)
        how = f"split 70/15/15 with seed {seed}"
    if folds > 1:
        parts, note = fold_parts(parts, folds, fold, labels)
        return parts, f"{how}; {note}"
    return parts, f"{how}: {[len(p) for p in parts]} rows"


def _two_way(n: int, seed: int, other: str) -> list[np.ndarray]:
    """The main file's rows as train and `other` (val or test), 85/15 under `seed`."""
    if n < 2:
        raise ConfigError(
            f"the main file has {n} rows with a target: too few to take {other} rows from"
        )
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, min(int(0.85 * n), n - 1))
    return np.split(order, [cut])


def fold_parts(
    parts: Sequence[np.ndarray],
    folds: int,
    fold: int,
    labels: np.ndarray | None = None,
) -> tuple[list[np.ndarray], str]:
    """(train, val, test) for fold `fold` of `folds` over the rows train and val hold,
    stratified by `labels` (a class per row of the whole table) when given, and a note
    that says so. Refuses, naming the limit, more folds than rows or than a class's rows."""
    rest = np.concatenate([parts[0], parts[1]])
    test = parts[2]
    if folds > len(rest):
        raise ConfigError(
            f"folds = {folds}: only {len(rest)} rows outside the test split; "
            f"at most {len(rest)} folds"
        )
    if labels is not None:
        classes, counts = np.unique(labels[rest], return_counts=True)
        if counts.min() < folds:
            small = classes[counts.argmin()]
            raise ConfigError(
                f"folds = {folds}: class {_plain(small)!r} has {counts.min()} rows outside the "
                f"test split, fewer than the folds (stratified folds validate on each class "
                f"in every fold): at most {counts.min()} folds"
            )
    extra = len(rest) % folds
    if extra:  # equal folds train as one population: the leftover rows test
        test = np.concatenate([test, rest[len(rest) - extra :]])
        rest = rest[: len(rest) - extra]
    ordered = rest if labels is None else rest[np.argsort(labels[rest], kind="stable")]
    val = ordered[np.arange(len(ordered)) % folds == fold]
    train = rest[~np.isin(rest, val)]
    note = (
        f"fold = {fold} of {folds}{' (stratified by class)' if labels is not None else ''}: "
        f"{len(train)} train, {len(val)} val rows; test {len(test)} rows"
        + (f" ({extra} left over from equal folds among them)" if extra else "")
    )
    return [train, val, test], note


def column_parts(values: Sequence, column: str) -> list[np.ndarray]:
    """Rows of train, val and test as a split column names them (any case, spaces
    around allowed); refuses other values and an empty train, val or test."""
    names = np.array(["" if v is None or v != v else str(v).strip().lower() for v in values])
    if bad := sorted(set(names.tolist()) - set(SPLIT_NAMES)):
        said = [repr(b) if b else "an empty cell" for b in bad[:3]]
        raise ConfigError(
            f"split_column = {column!r} holds {', '.join(said)}"
            f"{' ...' if len(bad) > 3 else ''}; its values are train, val and test"
        )
    parts = [np.flatnonzero(names == name) for name in SPLIT_NAMES]
    for name, part in zip(SPLIT_NAMES, parts, strict=True):
        if not len(part):
            raise ConfigError(f"split_column = {column!r} names no {name} row")
    return parts


def _plain(value):
    return value.item() if hasattr(value, "item") else value
