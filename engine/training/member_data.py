"""What a population's members train and are measured on: one data set, or one per fold.

Members that differ only in their cross-validation fold (data/splits.py) train on other
rows, standardised with their own training rows' statistics, but every fold has the same
number of rows in each split, so the folds stack along a leading axis ([folds, rows, ...])
and a member's batch is a gather from its fold's rows. Without folds every member shares
one data set and nothing is stacked: the loop indexes the shared tensors as it always has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hypertui.engine.data.dataset import Dataset, Split
from hypertui.engine.data.load import load_dataset


@dataclass(frozen=True)
class MemberData:
    sets: tuple[Dataset, ...]  # the distinct data sets, one per fold the members hold
    which: tuple[int, ...]  # member i trains on sets[which[i]]
    stacked: dict[str, Split] = field(default_factory=dict)  # folds: each split, stacked

    @classmethod
    def load(cls, configs: list, device: torch.device, data_dir=None) -> MemberData:
        firsts: dict[int, object] = {}  # each fold's first config, in the members' order
        for c in configs:
            firsts.setdefault(c.fold, c)
        slot = {fold: i for i, fold in enumerate(firsts)}
        sets = tuple(load_dataset(c, device, data_dir) for c in firsts.values())
        sizes = {tuple(d.sizes.values()) for d in sets}
        if len(sizes) > 1:  # splits.py makes folds equal: a difference is a bug, said plainly
            raise ValueError(f"folds of one population differ in size: {sorted(sizes)}")
        stacked = {}
        if len(sets) > 1:
            for name in ("train", "val", "test"):
                parts = [getattr(d, name) for d in sets]
                stacked[name] = Split(
                    torch.stack([p.x for p in parts]), torch.stack([p.y for p in parts])
                )
        return cls(sets, tuple(slot[c.fold] for c in configs), stacked)

    @property
    def first(self) -> Dataset:
        return self.sets[0]

    @property
    def folded(self) -> bool:
        return len(self.sets) > 1

    def of(self, member: int) -> Dataset:
        return self.sets[self.which[member]]

    def split(self, name: str, members: list[int], head: int | None = None) -> Split:
        """A split's x and y: shared ([rows, ...]) without folds, else each member's own
        ([members, rows, ...], in the order of `members`)."""
        if not self.folded:
            part = getattr(self.first, name)
            return part if head is None else part.head(head)
        stacked = self.stacked[name]
        at = torch.tensor([self.which[i] for i in members], device=stacked.x.device)
        x, y = stacked.x[at], stacked.y[at]
        return Split(x, y) if head is None else Split(x[:, :head], y[:, :head])

    def batch(self, members: list[int], idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's training rows `idx` [members, batch] as (x, y) [members, batch, ...]."""
        return self.batcher(members)(idx)

    def batcher(self, members: list[int]):
        """`batch` for these members, with what it needs made once: a function of idx
        that only indexes tensors (a recorded step replays it, step.py)."""
        if not self.folded:
            x, y = self.first.train.x, self.first.train.y
            return lambda idx: (x[idx], y[idx])
        train = self.stacked["train"]
        at = torch.tensor([self.which[i] for i in members], device=train.x.device)[:, None]
        return lambda idx: (train.x[at, idx], train.y[at, idx])

    def target_std(self, members: list[int]) -> torch.Tensor | None:
        """Each member's target std (a regression table's metrics are in its units), or
        None where every member shares one (losses.member_metrics reads it then)."""
        if not self.folded:
            return None
        return torch.tensor(
            [self.of(i).target_std for i in members], device=self.first.train.x.device
        )
