"""The optimizer of a stacked model: each member's own optimizer, on its rows.

Members that share an optimizer (sgd, adam, adamw, rmsprop) form a group whose update is a
few operations on their rows of the flat weight buffer, following PyTorch's foreach
implementations step for step, with each member's own lr, momentum and weight decay.
"""

from __future__ import annotations

import bisect
import itertools
import math

import torch

from hypertui.engine.core.config import Config
from hypertui.engine.training.stacked import StackedCNN, StackedMLP

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam/AdamW defaults
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8  # torch.optim.RMSprop defaults
HYPER = {"lr": "lr", "momentum": "momentum", "weight_decay": "wd"}  # config name: _Group's


class _Group:
    """Members [start, stop) of a population that share an optimizer, with their state."""

    def __init__(self, kind: str, start: int, configs: list[Config], like: torch.Tensor):
        self.kind, self.start, self.stop = kind, start, start + len(configs)

        def column(values: list[float]) -> torch.Tensor:  # one value per member row
            return torch.tensor(values, device=like.device).view(-1, 1)

        self.lr = column([c.lr for c in configs])
        self.momentum = column([c.momentum for c in configs])
        self.wd = column([c.weight_decay for c in configs])
        self.use_wd = any(c.weight_decay for c in configs)
        self.use_momentum = any(c.momentum for c in configs)
        rows = like[self.start : self.stop]
        self.s1, self.s2 = torch.zeros_like(rows), torch.zeros_like(rows)

    def select(self, rows: torch.Tensor, start: int) -> None:
        """Keep these of the group's rows (relative, ascending); the group now starts at
        `start` of the population's rows."""
        for name in ("lr", "momentum", "wd", "s1", "s2"):
            setattr(self, name, getattr(self, name)[rows])
        self.start, self.stop = start, start + len(rows)

    def update(
        self,
        p: torch.Tensor,
        g: torch.Tensor,
        t: int,
        lr_scale: float,
        static: StaticScalars | None = None,
    ) -> None:
        """One step for rows p with gradients g, as torch.optim's foreach code does it.
        `static` (the static-shape step, engine/training/step.py): the step's scalars as
        device tensors in place of t and lr_scale, so that nothing is read from the host."""
        s1, s2 = self.s1, self.s2
        if static is not None:  # Adam's step lr is its own, below: only adamw's decay needs lr
            needed = self.kind not in ("adam", "adamw") or (self.kind == "adamw" and self.use_wd)
            lr = self.lr * static.scale if needed else None
        else:
            lr = self.lr if lr_scale == 1.0 else self.lr * lr_scale
        if self.kind == "adamw" and self.use_wd:
            p.mul_(1 - lr * self.wd)
        elif self.use_wd:
            g = g.add(p * self.wd)
        if self.kind == "sgd":
            if self.use_momentum:  # torch: buf = momentum * buf + g (buf starts at g)
                s1.mul_(self.momentum).add_(g)
                g = s1
            p.sub_(lr * g)
        elif self.kind == "rmsprop":
            s2.mul_(RMSPROP_ALPHA).addcmul_(g, g, value=1 - RMSPROP_ALPHA)
            avg = s2.sqrt().add_(RMSPROP_EPS)
            if self.use_momentum:
                s1.mul_(self.momentum).addcdiv_(g, avg)
                p.sub_(lr * s1)
            else:
                p.sub_(lr * g / avg)
        else:  # adam, adamw
            beta1, beta2 = ADAM_BETAS
            s1.lerp_(g, 1 - beta1)
            s2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            if static is not None:
                bias2_sqrt, step_lr = static.bias2_sqrt, self.lr * static.adam_lr
            else:
                bias2_sqrt, step_lr = math.sqrt(1 - beta2**t), lr / (1 - beta1**t)
            denom = (s2.sqrt() / bias2_sqrt).add_(ADAM_EPS)
            p.sub_(step_lr * s1 / denom)


class StaticScalars:
    """A step's scalars on the device, for a step recorded once and replayed (step.py):
    the lr factor of the schedule, Adam's lr factor over its first bias correction, and
    the square root of its second. `set` writes them before each step, without reading
    the device (on a CPU straight into their memory: three fills cost 3% of a K = 16
    step); today's step computes them on the host from the step count."""

    def __init__(self, device):
        self.values = torch.ones(3, device=device)
        self.unbound = self.values.unbind()
        self.scale, self.adam_lr, self.bias2_sqrt = self.unbound
        self.host = self.values.numpy() if self.values.device.type == "cpu" else None

    def set(self, lr_scale: float, t: int) -> None:
        beta1, beta2 = ADAM_BETAS
        values = (lr_scale, lr_scale / (1 - beta1**t), math.sqrt(1 - beta2**t))
        if self.host is not None:
            self.host[:] = values
        else:
            for tensor, value in zip(self.unbound, values, strict=True):
                tensor.fill_(value)


class StackedOptimizer:
    """SGD, Adam, AdamW or RMSprop for a stacked model, with each member's own optimizer and
    hyperparameters. Members with the same optimizer form one group, updated in a few
    operations on their rows of the flat buffer; `freeze` stops a member.

    A sweep sorts members by activation first (the model's runs), so one optimizer's
    members may sit in several runs of rows: the step then gathers the rows in optimizer
    order, updates one group per optimizer and scatters them back (3 operations instead of
    ~5 per extra group: at batch 10 the update was a third of a step)."""

    def __init__(self, model: StackedMLP | StackedCNN, configs: list[Config]):
        self.model = model
        self.params, self.grads = model.flat, model.flat_grad
        self.step_count = 0
        kinds = [c.optimizer for c in configs]
        runs = [kind for kind, _ in itertools.groupby(kinds)]
        self._set_order(
            None
            if len(runs) == len(set(kinds))
            else sorted(range(len(kinds)), key=kinds.__getitem__)
        )
        ordered = configs if self.order is None else [configs[r] for r in self.order]
        self.groups: list[_Group] = []
        start = 0
        for kind, run in itertools.groupby(ordered, key=lambda c: c.optimizer):
            run = list(run)
            self.groups.append(_Group(kind, start, run, self.params))
            start += len(run)
        self._views()

    def _views(self) -> None:
        """Each group's rows of the weights and gradients, made once (and at each keep),
        not sliced again every step; where optimizers' rows are apart, rows of the buffers
        a step gathers them into."""
        params, grads = self.params, self.grads
        self.gathered = None
        if self.gather is not None:
            params, grads = torch.empty_like(params), torch.empty_like(grads)
            self.gathered = (params, grads)
        self.views = [(g, params[g.start : g.stop], grads[g.start : g.stop]) for g in self.groups]

    def _set_order(self, order: list[int] | None) -> None:
        """order[i]: the model row at position i of the optimizer's rows (None: the same)."""
        self.order = order
        self.position = None if order is None else {row: i for i, row in enumerate(order)}
        self.gather = None if order is None else torch.tensor(order, device=self.params.device)

    def _position(self, row: int) -> int:
        """Where a model row sits in the optimizer's order."""
        return row if self.position is None else self.position[row]

    def keep(self, rows: list[int]) -> None:
        """Keep only these members' rows (ascending), with their state; see StackedMLP.keep."""
        model_params, self.grads = self.model.flat, self.model.flat_grad
        self.params = model_params
        positions = sorted(self._position(r) for r in rows)
        if self.order is not None:
            renumbered = {row: new for new, row in enumerate(rows)}
            self._set_order([renumbered[self.order[p]] for p in positions])
        groups = []
        start = 0
        for g in self.groups:
            mine = [p - g.start for p in positions if g.start <= p < g.stop]
            if mine:
                g.select(torch.tensor(mine, device=self.params.device), start)
                groups.append(g)
                start += len(mine)
        self.groups = groups
        self._views()

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's optimizer state (its rows of the group's buffers), for a checkpoint."""
        group, at = self._group_of(k)
        return {"opt.s1": group.s1[at], "opt.s2": group.s2[at]}

    def load_member_state(self, k: int, tensors: dict[str, torch.Tensor]) -> None:
        group, at = self._group_of(k)
        group.s1[at] = tensors["opt.s1"]
        group.s2[at] = tensors["opt.s2"]

    def member_hyperparameters(self, k: int) -> dict[str, float]:
        """Member k's lr, momentum and weight decay now (PBT changes them)."""
        group, at = self._group_of(k)
        return {name: float(getattr(group, attr)[at]) for name, attr in HYPER.items()}

    def hyper_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's hyperparameters as tensors, for a PBT member's checkpoint."""
        group, at = self._group_of(k)
        return {f"opt.{attr}": getattr(group, attr)[at] for attr in HYPER.values()}

    def load_hyper_state(self, k: int, tensors: dict[str, torch.Tensor]) -> None:
        group, at = self._group_of(k)
        for attr in HYPER.values():
            getattr(group, attr)[at] = tensors[f"opt.{attr}"]
        group.use_wd = group.use_wd or bool(group.wd.any())
        group.use_momentum = group.use_momentum or bool(group.momentum.any())

    def hyperparameter_lists(self) -> dict[str, list[float]]:
        """Every member's lr, momentum and weight decay now, in model row order."""
        out = {}
        for name, attr in HYPER.items():
            values = [v for g in self.groups for v in getattr(g, attr).view(-1).tolist()]
            out[name] = values if self.order is None else [values[p] for p in self._positions()]
        return out

    def _positions(self) -> list[int]:
        """positions[row]: where each model row sits in the optimizer's order."""
        return [self.position[row] for row in range(len(self.order))]

    def copy_members(self, dst: list[int], src: list[int], values: list[dict[str, float]]) -> None:
        """Members dst take the optimizer state of members src (row for row, the same
        optimizer) and the hyperparameters `values` (PBT's exploit and explore)."""
        starts = [g.start for g in self.groups]
        moves: dict[int, tuple[list[int], list[int], list[dict]]] = {}
        for d, s, v in zip(dst, src, values, strict=True):
            at, frm = self._position(d), self._position(s)
            n = bisect.bisect_right(starts, at) - 1
            if bisect.bisect_right(starts, frm) - 1 != n:
                raise ValueError("PBT copies only between members of one optimizer")
            to, fro, vals = moves.setdefault(n, ([], [], []))
            to.append(at - starts[n])
            fro.append(frm - starts[n])
            vals.append(v)
        for n, (to, fro, vals) in moves.items():
            group = self.groups[n]
            device = group.s1.device
            at, frm = torch.tensor(to, device=device), torch.tensor(fro, device=device)
            group.s1.index_copy_(0, at, group.s1.index_select(0, frm))
            group.s2.index_copy_(0, at, group.s2.index_select(0, frm))
            new = torch.tensor([[v[name] for name in HYPER] for v in vals], device=device)
            for j, attr in enumerate(HYPER.values()):
                getattr(group, attr).index_copy_(0, at, new[:, j : j + 1])
            group.use_wd = group.use_wd or any(v["weight_decay"] for v in vals)
            group.use_momentum = group.use_momentum or any(v["momentum"] for v in vals)

    def _group_of(self, k: int) -> tuple[_Group, int]:
        position = self._position(k)
        group = next(g for g in self.groups if g.start <= position < g.stop)
        return group, position - group.start

    def freeze(self, k: int) -> None:
        position = self._position(k)
        group = next(g for g in self.groups if g.start <= position < g.stop)
        group.lr[position - group.start] = 0.0

    def shape_key(self) -> tuple:
        """What decides which operations a step runs (a recorded step is recorded again
        when it changes: PBT may give a member momentum or weight decay)."""
        return tuple((g.kind, g.use_wd, g.use_momentum) for g in self.groups)

    def step(self, lr_scale: float = 1.0) -> None:
        """One update of every member; `lr_scale` multiplies each one's lr (a schedule)."""
        self.step_count += 1
        self.update(lr_scale)

    @torch.no_grad()
    def update(self, lr_scale: float = 1.0, static: StaticScalars | None = None) -> None:
        """Step `step_count`'s update (the caller counts it); with `static`, set for this
        step, the update reads its scalars there and can be recorded once (step.py)."""
        if self.gathered is not None:
            params, grads = self.gathered
            torch.index_select(self.params, 0, self.gather, out=params)
            torch.index_select(self.grads, 0, self.gather, out=grads)
        for g, params, grads in self.views:
            g.update(params, grads, self.step_count, lr_scale, static)
        if self.gathered is not None:
            self.params.index_copy_(0, self.gather, self.gathered[0])
