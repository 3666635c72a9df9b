"""Population training: many MLP or CNN trials of a sweep as one stacked model.

Trials that differ only in learning rate, momentum, weight decay, seed, activation and
optimizer share every shape and every step count, so K of them train as one model whose
weights are stacked along a leading member axis ([K, out, in]) and whose layers are
batched matmuls. Each member keeps what makes it its own run: its initial weights (built
exactly as a single run builds them, under its seed), its batch order (its own seeded
randperm), its activation, its optimizer, state and hyperparameters. Members that share an
optimizer form a group whose update is a few operations on their rows of one flat buffer.
The updates follow PyTorch's foreach implementations step for step, so a member ends
within floating-point tolerance of the same trial trained alone (tests/test_population.py).
On a 2-core CPU a step for 256 members costs a few times one member's step: the work of a
tiny MLP is dwarfed by per-operation overhead. CNN members (StackedCNN) share grouped
convolutions instead, whose work grows with K: they gain where a device has room to spare.

`run_population` yields the same events as `training.train.run`, member by member, so the
store, CLI, TUI and exports need no special cases.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from hypertui.engine.core import halving
from hypertui.engine.core.config import Config
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Event, Failed, Finished, Progress, RunStarted
from hypertui.engine.core.grouping import MEMBER_FIELDS, population_key  # noqa: F401 (re-exported)
from hypertui.engine.core.memory import EVAL_ELEMENTS
from hypertui.engine.data.load import load_dataset
from hypertui.engine.training.clock import TrainClock, budget_env
from hypertui.engine.training.devices import check_fits, describe, resolve_device
from hypertui.engine.training.losses import (
    analyse_outputs,
    member_loss_gradient,
    member_metrics,
    metric_rows,
)
from hypertui.engine.training.models import ACTIVATIONS, build_model, mlp_weights
from hypertui.engine.training.schedule import lr_factor, planned_steps
from hypertui.engine.training.train import INTERVAL_VAL_N, diverged, environment, restore_settings

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam/AdamW defaults
RMSPROP_ALPHA, RMSPROP_EPS = 0.99, 1e-8  # torch.optim.RMSprop defaults
# Up to this many activations a layer, mixed activations are computed for every member and
# picked by mask (fewer operations); above it, each on its own rows (fewer elements).
# Measured at K = 72, width 10: batch 10 (7,200) is faster masked, batch 50 by rows.
MASKED_ELEMENTS = 2**14


class _Kernels(NamedTuple):
    """An activation's forward and backward: the ATen kernels autograd itself calls for
    nn.ReLU, nn.Tanh, ..., so a member's gradient is the one its single run computes."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    backward: Callable  # (grad, pre-activation z, activation h) -> the grad of z


_ACTIVATIONS: dict[str, _Kernels] = {
    "relu": _Kernels(torch.relu, lambda g, z, h: torch.ops.aten.threshold_backward(g, h, 0)),
    "tanh": _Kernels(torch.tanh, lambda g, z, h: torch.ops.aten.tanh_backward(g, h)),
    "sigmoid": _Kernels(torch.sigmoid, lambda g, z, h: torch.ops.aten.sigmoid_backward(g, h)),
    "gelu": _Kernels(F.gelu, lambda g, z, h: torch.ops.aten.gelu_backward(g, z)),
    "leaky_relu": _Kernels(
        F.leaky_relu, lambda g, z, h: torch.ops.aten.leaky_relu_backward(g, z, 0.01, False)
    ),
}
assert set(_ACTIVATIONS) == set(ACTIVATIONS), "an activation without its population kernels"


def activation_runs(activations: list[str]) -> list[tuple[_Kernels, slice]]:
    """Members side by side with one activation (a run of rows) share its kernels: each
    run's kernels and rows (a sweep sorts members by activation, so there are few)."""
    runs, start = [], 0
    for name, run in itertools.groupby(activations):
        stop = start + len(list(run))
        runs.append((_ACTIVATIONS[name], slice(start, stop)))
        start = stop
    return runs


@dataclass(frozen=True)
class Member:
    run_id: str
    config: Config


class StackedMLP:
    """K MLPs of one shape: x [K, B, features] -> [K, B, outputs].

    Member k's weights ([out, in] per layer, nn.Linear's layout) and biases ([out, 1]) are
    row k of one flat [K, P] buffer, and their gradients row k of another, so that an
    optimizer step is a few operations on whole rows however deep the net is.
    Activations flow feature-major, [K, features, B]: a layer is W @ h, the batched matmul
    small matrices run fastest as (4.6x faster than h @ W^T for K = 72, batch 200, on a
    2-core CPU). `gradients` computes the backward pass by hand, with the kernels autograd
    would call and without its graph. Members may differ in activation:
    on a large layer each activation runs on its members' rows (a sweep sorts members by
    activation, so that is one kernel per activation); on a small one, where operations
    cost more than elements, every activation runs on all rows and a mask picks.
    """

    def __init__(
        self,
        layers: list[list[tuple[torch.Tensor, torch.Tensor]]],
        activations: list[str],
        device,
    ):
        """`layers[k]` is member k's (weight [out, in], bias [out]) per layer."""
        k = len(layers)
        size = sum(w.numel() + b.numel() for w, b in layers[0])
        self.flat = torch.empty(k, size, device=device)
        self.flat_grad = torch.zeros(k, size, device=device)
        self.layout: list[tuple[int, tuple[int, int]]] = []  # (offset, shape) per tensor
        offset = 0
        for i, (w0, _) in enumerate(layers[0]):
            n_out, n_in = w0.shape
            for shape, parts in (
                ((n_out, n_in), [member[i][0] for member in layers]),
                ((n_out, 1), [member[i][1] for member in layers]),
            ):
                n = shape[0] * shape[1]
                self.flat[:, offset : offset + n] = torch.stack(parts).reshape(k, n).to(device)
                self.layout.append((offset, shape))
                offset += n
        self._bind()
        self._runs_of(activations)

    def _runs_of(self, activations: list[str]) -> None:
        self.activations = activations
        self.runs = activation_runs(activations)
        self.masks: list[tuple[_Kernels, torch.Tensor]] = []  # mask [K, 1, 1]: who uses them
        for name in dict.fromkeys(activations):  # in order of first use
            mask = torch.tensor([a == name for a in activations], device=self.flat.device)
            self.masks.append((_ACTIVATIONS[name], mask.view(-1, 1, 1)))

    def _bind(self) -> None:
        """The layers' weights and biases (and their gradients): views of the flat buffers."""
        k = self.flat.shape[0]

        def views(flat: torch.Tensor) -> list[torch.Tensor]:
            return [flat[:, o : o + s[0] * s[1]].view(k, *s) for o, s in self.layout]

        params, grads = views(self.flat), views(self.flat_grad)
        self.weights, self.biases = params[0::2], params[1::2]
        self.weight_grads, self.bias_grads = grads[0::2], grads[1::2]

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only these members (row indices, ascending): the rest leave the model,
        so every later step computes for fewer members."""
        self.flat = self.flat[rows].contiguous()
        self.flat_grad = torch.zeros_like(self.flat)
        self._bind()
        self._runs_of([self.activations[r] for r in rows.tolist()])

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The members' outputs [K, B, outputs] for inputs x [K, B, ...], no gradient."""
        return self._forward(x)[1][-1].transpose(1, 2)

    def gradients(self, x: torch.Tensor, y: torch.Tensor, loss_of: Callable) -> torch.Tensor:
        """Each member's loss [K] on x [K, B, ...] and targets y; the gradient of their sum
        goes to `flat_grad`, whatever was there before. `loss_of(outputs, y)` returns the
        losses and their gradient by the outputs (losses.member_loss_gradient)."""
        hs, zs = self._forward(x)
        loss, g = loss_of(zs[-1].transpose(1, 2), y)
        g = g.transpose(1, 2)  # [K, outputs, B], as the layers hold activations
        for i in reversed(range(len(self.weights))):
            # into the flat buffer by copy_: bmm's out= into a strided view costs 4x the bmm
            self.weight_grads[i].copy_(torch.bmm(g, hs[i].transpose(1, 2)))
            self.bias_grads[i].copy_(g.sum(2, keepdim=True))
            if i:
                g = self._activate_backward(
                    torch.bmm(self.weights[i].transpose(1, 2), g), zs[i - 1], hs[i]
                )
        return loss

    def _forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each layer's input [K, in, B] (x's, then the activations) and pre-activation."""
        hs, zs = [x.flatten(2).transpose(1, 2)], []
        for w, b in zip(self.weights, self.biases, strict=True):
            zs.append(torch.baddbmm(b, w, hs[-1]))
            if len(zs) < len(self.weights):
                hs.append(self._activate(zs[-1]))
        return hs, zs

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        return self._per_activation(lambda kernels, z: kernels.forward(z), z)

    def _activate_backward(self, g: torch.Tensor, z: torch.Tensor, h: torch.Tensor):
        return self._per_activation(lambda kernels, *t: kernels.backward(*t), g, z, h)

    def _per_activation(self, apply: Callable, *tensors: torch.Tensor) -> torch.Tensor:
        """`apply(kernels, *tensors)` with each member's own activation kernels, the
        tensors [K, ...] alike in shape: the result for every member, [K, ...]."""
        if len(self.runs) == 1:
            return apply(self.runs[0][0], *tensors)
        if tensors[0].numel() <= MASKED_ELEMENTS:  # few elements: fewer operations win
            out = apply(self.masks[0][0], *tensors)
            for kernels, mask in self.masks[1:]:
                out = torch.where(mask, apply(kernels, *tensors), out)
            return out
        out = torch.empty_like(tensors[0])
        for kernels, rows in self.runs:
            out[rows] = apply(kernels, *(t[rows] for t in tensors))
        return out

    def member_parameters(self, k: int) -> list[torch.Tensor]:
        """Member k's tensors in nn.Linear layout (weight [out, in], bias [out]), in order."""
        out = []
        for w, b in zip(self.weights, self.biases, strict=True):
            out += [w[k], b[k, :, 0]]
        return out

    @property
    def size(self) -> int:
        return self.flat.shape[0]

    def width(self, example: torch.Size) -> int:
        """The most activations a member keeps per example (sizes evaluation chunks)."""
        return max(w.shape[1] for w in self.weights)


class StackedCNN:
    """K CNNs of one shape (models.cnn): x [K, B, C, H, W] -> [K, B, outputs].

    Every convolution is one grouped convolution: member k's channels are group k, so the
    members' feature maps never mix; the dense layer is a batched matmul. Parameters live
    in one flat [K, P] buffer as in StackedMLP (member k's tensors, in nn.Module order, in
    row k), so StackedOptimizer and halving's cuts work unchanged. Convolutions dominate
    the work, so the backward pass is autograd's, taken by the flat buffer.
    """

    def __init__(self, params: list[list[torch.Tensor]], activations: list[str], device):
        """`params[k]` is member k's tensors in nn.Module order: (weight, bias) per
        convolution, then the dense layer's (weight [out, in], bias [out])."""
        self.shapes = [p.shape for p in params[0]]
        self.flat = torch.stack([torch.cat([p.reshape(-1) for p in ps]) for ps in params])
        self.flat = self.flat.to(device)
        self.flat_grad = torch.zeros_like(self.flat)
        self._runs_of(activations)

    def _runs_of(self, activations: list[str]) -> None:
        self.activations = activations
        self.runs = activation_runs(activations)

    def _tensors(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The members' tensors [K, *shape], views of `flat`, in nn.Module order."""
        out, offset = [], 0
        for shape in self.shapes:
            n = shape.numel()
            out.append(flat[:, offset : offset + n].view(flat.shape[0], *shape))
            offset += n
        return out

    def _outputs(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]
        tensors = self._tensors(flat)
        h = x.transpose(0, 1).reshape(b, -1, *x.shape[3:])  # [B, K * C, H, W]
        for w, bias in zip(tensors[0:-2:2], tensors[1:-2:2], strict=True):
            z = F.conv2d(h, w.reshape(-1, *w.shape[2:]), bias.reshape(-1), padding=1, groups=k)
            h = F.max_pool2d(self._activate(z, channels=w.shape[1]), 2)
        w, bias = tensors[-2:]
        h = h.reshape(b, k, -1).transpose(0, 1)  # [K, B, C * H * W]: each member's flatten
        return torch.baddbmm(bias.unsqueeze(1), h, w.transpose(1, 2))

    def _activate(self, z: torch.Tensor, channels: int) -> torch.Tensor:
        """Each member's activation on its own channels (a sweep sorts members by it)."""
        if len(self.runs) == 1:
            return self.runs[0][0].forward(z)
        parts = [
            kernels.forward(z[:, rows.start * channels : rows.stop * channels])
            for kernels, rows in self.runs
        ]
        return torch.cat(parts, 1)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._outputs(self.flat, x)

    def gradients(self, x: torch.Tensor, y: torch.Tensor, loss_of: Callable) -> torch.Tensor:
        """As StackedMLP.gradients: the members' losses [K], their gradient to flat_grad."""
        with torch.enable_grad():
            flat = self.flat.detach().requires_grad_()
            out = self._outputs(flat, x)
            loss, g = loss_of(out.detach(), y)
            (grad,) = torch.autograd.grad(out, flat, g)
        self.flat_grad.copy_(grad)
        return loss

    def keep(self, rows: torch.Tensor) -> None:
        """As StackedMLP.keep: only these members (ascending rows) stay."""
        self.flat = self.flat[rows].contiguous()
        self.flat_grad = torch.zeros_like(self.flat)
        self._runs_of([self.activations[r] for r in rows.tolist()])

    def member_parameters(self, k: int) -> list[torch.Tensor]:
        """Member k's tensors, as its nn.Module's parameters() gives them."""
        return [t[k] for t in self._tensors(self.flat)]

    @property
    def size(self) -> int:
        return self.flat.shape[0]

    def width(self, example: torch.Size) -> int:
        """The most activations a member keeps per example (sizes evaluation chunks): its
        first feature maps, channels x H x W."""
        return self.shapes[0][0] * example[-2] * example[-1]


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

    def update(self, p: torch.Tensor, g: torch.Tensor, t: int, lr_scale: float) -> None:
        """One step for rows p with gradients g, as torch.optim's foreach code does it."""
        s1, s2 = self.s1, self.s2
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
            bias1 = 1 - beta1**t
            bias2_sqrt = math.sqrt(1 - beta2**t)
            denom = (s2.sqrt() / bias2_sqrt).add_(ADAM_EPS)
            p.sub_((lr / bias1) * s1 / denom)


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

    def freeze(self, k: int) -> None:
        position = self._position(k)
        group = next(g for g in self.groups if g.start <= position < g.stop)
        group.lr[position - group.start] = 0.0

    @torch.no_grad()
    def step(self, lr_scale: float = 1.0) -> None:
        """One update of every member; `lr_scale` multiplies each one's lr (a schedule)."""
        self.step_count += 1
        params, grads = self.params, self.grads
        if self.gather is not None:
            params, grads = params[self.gather], grads[self.gather]
        for g in self.groups:
            rows = slice(g.start, g.stop)
            g.update(params[rows], grads[rows], self.step_count, lr_scale)
        if self.gather is not None:
            self.params.index_copy_(0, self.gather, params)


@torch.no_grad()
def evaluate_members(
    config: Config,
    model: StackedMLP | StackedCNN,
    x: torch.Tensor,
    y: torch.Tensor,
    prefix: str,
    keep_outputs: bool = False,
) -> tuple[list[dict[str, float]], torch.Tensor | None]:
    """Each member's metrics, as losses.evaluate names them, and the raw outputs."""
    k = model.size
    # Rows go through in chunks sized so that K members' activations stay under
    # EVAL_ELEMENTS floats whatever K is (all at once, K = 64 on MNIST took +628 MiB).
    # Every metric is a mean over rows, so chunk means weighted by rows give the same value.
    widest = model.width(x[0].shape) + x[0].numel()
    rows = max(1, EVAL_ELEMENTS // (k * widest))
    sums: dict[str, torch.Tensor] = {}
    outs = []
    for i in range(0, len(x), rows):
        xc, yc = x[i : i + rows], y[i : i + rows]
        out = model(xc.unsqueeze(0).expand(k, *xc.shape))
        values = member_metrics(config, out, yc.unsqueeze(0).expand(k, *yc.shape))
        for name, v in values.items():
            sums[name] = sums.get(name, 0) + v.double() * len(xc)
        if keep_outputs:
            outs.append(out)
    means = {name: v / len(x) for name, v in sums.items()}
    return metric_rows(means, prefix), torch.cat(outs, 1) if keep_outputs else None


def stacked_model(members: list[Member], device) -> StackedMLP | StackedCNN:
    """The members as one stacked model, each with the initial weights its single run
    draws under its seed (drawn on the CPU: seeding only its generator skips
    torch.manual_seed's ~1 ms of lazy CUDA/XPU seeding a member)."""
    drawn: dict[int, list] = {}  # members share their layer sizes: one draw per seed
    for m in members:
        if m.config.seed not in drawn:
            torch.default_generator.manual_seed(m.config.seed)
            if m.config.model == "cnn":
                drawn[m.config.seed] = [p.detach() for p in build_model(m.config).parameters()]
            else:
                drawn[m.config.seed] = mlp_weights(m.config)
    activations = [m.config.activation for m in members]
    stack = StackedCNN if members[0].config.model == "cnn" else StackedMLP
    return stack([drawn[m.config.seed] for m in members], activations, device)


def tune_for(model: StackedMLP | StackedCNN, device) -> None:
    """Set torch up as a single run of the same model does (restore_settings undoes it).
    MLP populations train on one CPU thread: 2 threads measured no faster at K=256
    (2.8-3.6 ms vs 2.7-4.2 ms a step) and contend with the UI process. CNN populations use
    every CPU thread, and on a GPU let cuDNN pick its fastest kernels for their fixed shapes."""
    if device.type == "cpu" and isinstance(model, StackedMLP):
        torch.set_num_threads(1)
    elif device.type == "cuda" and isinstance(model, StackedCNN):
        torch.backends.cudnn.benchmark = True


def run_population(
    members: list[Member],
    should_stop: Callable[[], bool] = lambda: False,
    data_dir=None,
    should_pause: Callable[[], bool] = lambda: False,
    inspect: Callable[[StackedMLP | StackedCNN], None] | None = None,
) -> Iterator[Event]:
    """Train members that share a population_key together; yield each member's events."""
    base = members[0].config
    device = resolve_device(base.device)
    if why := check_fits(base, device, members=len(members)):
        if len(members) == 1 or check_fits(base, device, members=1):
            for m in members:
                yield Failed(m.run_id, why)
            return
        # One member fits and all of them do not: train them in halves, each a population
        # of its own (halving then ranks each half's configs apart).
        half = len(members) // 2
        for part in (members[:half], members[half:]):
            yield from run_population(part, should_stop, data_dir, should_pause, inspect)
        return
    data = load_dataset(base, device, data_dir)
    wall0 = time.perf_counter()
    with restore_settings():
        model = stacked_model(members, device)
        n_params = model.flat.shape[1]
        tune_for(model, device)
        for m in members:
            yield RunStarted(
                m.run_id,
                m.config.to_dict(),
                str(device),
                describe(device),
                n_params,
                data.sizes,
                data.notes,
                {**environment(device), **budget_env(base.time_budget_s, device, len(members))},
            )
        try:
            yield from _train(members, model, data, device, should_stop, should_pause, wall0)
        except HypertuiError as exc:
            for m in members:
                yield Failed(m.run_id, str(exc))
        except (RuntimeError, ValueError) as exc:
            for m in members:
                yield Failed(m.run_id, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        if inspect is not None:
            inspect(model)


def _train(
    members, model: StackedMLP | StackedCNN, data, device, should_stop, should_pause, wall0: float
) -> Iterator[Event]:
    base = members[0].config
    k = len(members)
    opt = StackedOptimizer(model, [m.config for m in members])
    x, y = data.train.x, data.train.y
    n, bs = len(data.train), base.batch_size
    total_steps = planned_steps(base.epochs, n, bs)
    clock = TrainClock(device, base.time_budget_s, should_pause, should_stop)
    gens = [torch.Generator(device=device).manual_seed(m.config.seed) for m in members]
    main = base.main_metric
    higher = main == "val_acc"
    cuts = (
        set(halving.rungs(base.epochs, base.prune_eta, base.prune_from))
        if base.prune == "halving"
        else set()
    )
    configs = [halving.config_key(m.config.to_dict()) for m in members]
    member_loss = functools.partial(member_loss_gradient, base)

    step = samples = 0
    rows = list(range(k))  # the members still in the model: row r is member rows[r]
    losses: list[torch.Tensor] = []  # [rows] per step since the last report
    first: list[float | None] = [None] * k  # each member's untrained first-batch loss
    active = [True] * k  # False once diverged (frozen) or pruned
    status = ["finished"] * k
    reasons = [""] * k
    best: list[dict[str, float]] = [{} for _ in range(k)]
    best_epoch: list[int | None] = [None] * k
    final: list[dict[str, float]] = [{} for _ in range(k)]
    score = [math.nan] * k  # the main metric at the last full report
    stopped_at: list[tuple[int, int, float] | None] = [None] * k  # diverged or pruned here
    stop = ""

    def report(epoch: int, end_of_epoch: bool, full: bool) -> Iterator[Event]:
        nonlocal losses
        stacked = torch.stack(losses)  # [steps, rows]
        for r, v in enumerate(stacked[0].tolist()):
            if first[rows[r]] is None:
                first[rows[r]] = v
        train = stacked.mean(0).tolist()
        losses = []
        val = data.val if full else data.val.head(INTERVAL_VAL_N)
        metrics, _ = evaluate_members(base, model, val.x, val.y, "val")
        train_s = round(clock.train_s, 6)
        for r, i in enumerate(rows):
            m = members[i]
            if not active[i]:
                continue
            p = Progress(
                m.run_id,
                epoch,
                step,
                samples,
                train_s,
                train[r],
                metrics[r],
                end_of_epoch,
                len(val),
            )
            yield p
            why = diverged(p.train_loss, p.metrics, first[i])
            if full:  # as a single run: the last full report is final, diverged or not
                final[i] = {"train_loss": p.train_loss, **p.metrics}
                score[i] = p.metrics[main] if not why else math.nan
            if full and not why:
                value = p.metrics[main]
                if not best[i] or (value > best[i][main] if higher else value < best[i][main]):
                    best[i], best_epoch[i] = dict(p.metrics), epoch
            if why:
                active[i], status[i], reasons[i] = False, "diverged", why
                stopped_at[i] = (step, samples, clock.train_s)
                opt.freeze(r)

    def prune(epoch: int) -> Iterator[Event]:
        """Halving's rung: stop the configs outside the best third, and drop their rows."""
        nonlocal rows
        scores: dict[str, list[float]] = {}
        for i in rows:
            if status[i] != "pruned":
                scores.setdefault(configs[i], []).append(score[i])
        keep = halving.survivors(scores, higher, base.prune_eta)
        for i in rows:
            if configs[i] not in keep and status[i] == "finished":
                active[i], status[i] = False, "pruned"
                reasons[i] = f"halving: not in the best 1/{base.prune_eta} at epoch {epoch}"
                stopped_at[i] = (step, samples, clock.train_s)
                yield _finished(members[i], i, epoch)
        # Diverged members leave too: they were frozen and are never reported again.
        kept = [r for r, i in enumerate(rows) if active[i]]
        if kept and len(kept) < len(rows):  # none left: the epoch loop ends anyway
            model.keep(torch.tensor(kept, device=device))
            opt.keep(kept)
            rows = [rows[r] for r in kept]

    def _finished(m: Member, i: int, epoch: int) -> Finished:
        steps_i, samples_i, train_i = stopped_at[i] or (step, samples, clock.train_s)
        return Finished(
            run_id=m.run_id,
            status=status[i],
            epochs_done=round(samples_i / n, 4),
            steps=steps_i,
            samples=samples_i,
            elapsed_s=round(train_i, 6),
            wall_s=round(time.perf_counter() - wall0, 6),
            final=final[i],
            best=best[i],
            best_epoch=best_epoch[i],
            test={},
            reason=reasons[i],
            analysis={},
        )

    for epoch in range(1, base.epochs + 1):
        perms = torch.stack([torch.randperm(n, generator=gens[i], device=device) for i in rows])
        clock.start()
        for i in range(0, n, bs):
            clock.hold_while_paused()
            if should_stop():
                stop = "cancelled"
                break
            idx = perms[:, i : i + bs]
            loss = model.gradients(x[idx], y[idx], member_loss)
            opt.step(lr_factor(base.schedule, step, total_steps))
            losses.append(loss)
            step += 1
            samples += idx.shape[1]
            due = clock.after_step(step, last_batch=i + bs >= n)
            if due == "budget":
                stop = "budget"
                break
            if due == "report":
                clock.stop()
                yield from report(epoch, end_of_epoch=False, full=False)
                clock.reported()
                clock.start()
                if not any(active):  # every member diverged: nothing left to train
                    stop = "diverged"
                    break
        clock.stop()
        if stop in ("cancelled", "diverged"):
            break
        yield from report(epoch, end_of_epoch=samples == epoch * n, full=True)
        if epoch in cuts and stop != "budget":
            yield from prune(epoch)
        clock.reported()
        if stop == "budget" or not any(active):
            break

    test: list[dict[str, float]] = [{} for _ in range(k)]
    analysis: list[dict[str, list]] = [{} for _ in range(k)]
    if stop not in ("cancelled", "diverged"):
        rows_test, _ = evaluate_members(base, model, data.test.x, data.test.y, "test")
        _, out = evaluate_members(base, model, data.val.x, data.val.y, "val", keep_outputs=True)
        for r, i in enumerate(rows):
            test[i] = rows_test[r]
            analysis[i] = analyse_outputs(base, out[r], data.val.y)
    wall = round(time.perf_counter() - wall0, 6)
    budget_reason = clock.budget_reason if stop == "budget" else ""
    for i, m in enumerate(members):
        if status[i] == "pruned":
            continue  # its Finished went out at its rung
        # A member that diverged keeps that status and reason when the rest is cancelled or
        # skipped: it is final, and a resume must not train it again.
        state = "cancelled" if stop == "cancelled" and status[i] != "diverged" else status[i]
        steps_i, samples_i, train_i = stopped_at[i] or (step, samples, clock.train_s)
        yield Finished(
            run_id=m.run_id,
            status=state,
            epochs_done=round(samples_i / n, 4),
            steps=steps_i,
            samples=samples_i,
            elapsed_s=round(train_i, 6),
            wall_s=wall,
            final=final[i],
            best=best[i],
            best_epoch=best_epoch[i],
            test=test[i] if state == "finished" else {},
            reason="stopped by request" if state == "cancelled" else reasons[i] or budget_reason,
            analysis=analysis[i] if state == "finished" else {},
        )
