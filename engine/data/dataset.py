"""A data set as tensors: train/val/test `Split`s, and what loading it found out.

Every problem gives the same shape of thing, so the training loop batches by `randperm`
indexing and never touches a DataLoader. Splits are seeded with a fixed seed, independent
of the run's seed, so every trial of a sweep sees the same validation and test examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

SPLIT_SEED = 0  # fixed: runs that differ only in `seed` must share their splits


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))

    def head(self, n: int) -> Split:
        return Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class Dataset:
    problem: str
    train: Split
    val: Split
    test: Split
    feature_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what loading did that a user should know (rows dropped...)
    # house: train-set mean and std of each raw feature, to plot against real units
    feature_mean: tuple[float, ...] = field(default=())
    feature_std: tuple[float, ...] = field(default=())
    # regression tables: the target's train mean and std (tensors hold it standardised)
    target_mean: float = 0.0
    target_std: float = 1.0
    classes: tuple[str, ...] = ()  # classification tables and image folders: class names
    # tables: how new rows are encoded as training encoded these (data/table.py:encode)
    preprocessing: dict = field(default_factory=dict)

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def to(self, device: torch.device) -> Dataset:
        return replace(
            self,
            train=self.train.to(device),
            val=self.val.to(device),
            test=self.test.to(device),
        )
