"""Stacked models: K MLPs or CNNs of one shape as one model, a member per row.

Each member's weights are a row of one flat buffer [K, P] (the optimizer updates them all
at once, see stacked_optimizer.py): MLP layers are batched matmuls with their backward
written out, CNN layers grouped convolutions with one group per member (autograd's
backward). A member keeps its own initial weights (drawn as its single run draws them)
and its own activation; halving and divergence drop members by keeping rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

from hypertui.engine.core.config import Config
from hypertui.engine.core.memory import EVAL_ELEMENTS
from hypertui.engine.training.class_metrics import ClassTally
from hypertui.engine.training.losses import (
    member_metrics,
    metric_rows,
)
from hypertui.engine.training.models import ACTIVATIONS, build_model, mlp_weights

A = torch.ops.aten


class _Kernels(NamedTuple):
    """An activation's forward and backward: the ATen kernels autograd itself calls for
    nn.ReLU, nn.Tanh, ..., so a member's gradient is the one its single run computes.
    `*_into` write into `out` (a population's members with this activation: a run of its
    rows), so that mixed activations cost one kernel each and no copy or mask; `forward`
    returns a new tensor (evaluation, and CNN layers)."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    forward_into: Callable  # (z, out)
    backward_into: Callable  # (grad, pre-activation z, activation h, out): z's grad to out


_ACTIVATIONS: dict[str, _Kernels] = {
    "relu": _Kernels(
        torch.relu,
        lambda z, out: A.relu.out(z, out=out),
        lambda g, z, h, out: A.threshold_backward.grad_input(g, h, 0, grad_input=out),
    ),
    "tanh": _Kernels(
        torch.tanh,
        lambda z, out: torch.tanh(z, out=out),
        lambda g, z, h, out: A.tanh_backward.grad_input(g, h, grad_input=out),
    ),
    "sigmoid": _Kernels(
        torch.sigmoid,
        lambda z, out: torch.sigmoid(z, out=out),
        lambda g, z, h, out: A.sigmoid_backward.grad_input(g, h, grad_input=out),
    ),
    "gelu": _Kernels(
        F.gelu,
        lambda z, out: A.gelu.out(z, out=out),
        lambda g, z, h, out: A.gelu_backward.grad_input(g, z, grad_input=out),
    ),
    "leaky_relu": _Kernels(
        F.leaky_relu,
        lambda z, out: A.leaky_relu.out(z, 0.01, out=out),
        lambda g, z, h, out: A.leaky_relu_backward.grad_input(g, z, 0.01, False, grad_input=out),
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
    checkpoints: Path | None = None  # its folder (engine/training/checkpoint.py), or none


class StackedMLP:
    """K MLPs of one shape: x [K, B, features] -> [K, B, outputs].

    Member k's weights ([out, in] per layer, nn.Linear's layout) and biases ([out, 1]) are
    row k of one flat [K, P] buffer, and their gradients row k of another, so that an
    optimizer step is a few operations on whole rows however deep the net is.
    Activations flow feature-major, [K, features, B]: a layer is W @ h, the batched matmul
    small matrices run fastest as (4.6x faster than h @ W^T for K = 72, batch 200, on a
    2-core CPU). `gradients` computes the backward pass by hand, with the kernels autograd
    would call and without its graph. Members may differ in activation: each activation
    runs on its members' rows, written in place (a sweep sorts members by activation, so
    that is one kernel per activation; measured at K = 16 and 64, width 10, batch 32, it
    costs 0.8x and 0.4x computing every activation on all rows and picking by mask).
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
        self.kept: _Activations | None = None  # a training step's buffers (one batch size)

    def _bind(self) -> None:
        """The layers' weights and biases (and their gradients): views of the flat buffers."""
        k = self.flat.shape[0]

        def views(flat: torch.Tensor) -> list[torch.Tensor]:
            return [flat[:, o : o + s[0] * s[1]].view(k, *s) for o, s in self.layout]

        params, grads = views(self.flat), views(self.flat_grad)
        self.weights, self.biases = params[0::2], params[1::2]
        self.weights_t = [w.transpose(1, 2) for w in self.weights]  # the backward's W^T
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
        if self.kept is None or self.kept.batch != x.shape[1]:
            # one set at a time, the old one freed first: the memory a step held before,
            # not another set for the last, shorter batch
            self.kept = None
            self.kept = _Activations(self, x.shape[1])
        kept = self.kept
        hs, zs = self._forward(x, kept)
        loss, g = loss_of(zs[-1].transpose(1, 2), y)
        g = g.transpose(1, 2)  # [K, outputs, B], as the layers hold activations
        for i in reversed(range(len(self.weights))):
            # into the flat buffer by copy_: bmm's out= into a strided view costs 4x the bmm
            self.weight_grads[i].copy_(torch.bmm(g, hs[i].transpose(1, 2)))
            torch.sum(g, 2, keepdim=True, out=self.bias_grads[i])
            if i:
                torch.bmm(self.weights_t[i], g, out=kept.grad_h[i - 1])
                for kernels, z, h, grad_h, grad_z in kept.runs[i - 1]:
                    kernels.backward_into(grad_h, z, h, grad_z)
                g = kept.grad_z[i - 1]
        return loss

    def _forward(
        self, x: torch.Tensor, kept: _Activations | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each layer's input [K, in, B] (x's, then the activations) and pre-activation;
        into `kept`'s buffers (a training step's), else new tensors (an evaluation's)."""
        hs, zs = [x.flatten(2).transpose(1, 2)], []
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if kept is None or i == last:
                zs.append(torch.baddbmm(b, w, hs[-1]))
                if i < last:
                    hs.append(self._activate(zs[-1]))
                continue
            zs.append(torch.baddbmm(b, w, hs[-1], out=kept.z[i]))
            for kernels, z, h, _, _ in kept.runs[i]:
                kernels.forward_into(z, h)
            hs.append(kept.h[i])
        return hs, zs

    def _activate(self, z: torch.Tensor) -> torch.Tensor:
        if len(self.runs) == 1:
            return self.runs[0][0].forward(z)
        out = torch.empty_like(z)
        for kernels, rows in self.runs:
            kernels.forward_into(z[rows], out[rows])
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


class _Activations:
    """A training step's hidden activations for a batch size, kept from step to step:
    each hidden layer's pre-activation z, activation h and their gradients, [K, width, B],
    and each activation run's rows of them (views made once: at K = 16 with three
    activations, slicing them anew each step cost as much as the activations' kernels)."""

    def __init__(self, model: StackedMLP, batch: int):
        self.batch = batch
        k, device = model.size, model.flat.device
        widths = [w.shape[1] for w in model.weights[:-1]]  # each hidden layer's outputs
        self.z, self.h, self.grad_h, self.grad_z = (
            [torch.empty(k, n, batch, device=device) for n in widths] for _ in range(4)
        )
        self.runs = [
            [
                (kernels, *(t[i][rows] for t in (self.z, self.h, self.grad_h, self.grad_z)))
                for kernels, rows in model.runs
            ]
            for i in range(len(widths))
        ]


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


@torch.no_grad()
def evaluate_members(
    config: Config,
    model: StackedMLP | StackedCNN,
    x: torch.Tensor,
    y: torch.Tensor,
    prefix: str,
    keep_outputs: bool = False,
    each: bool = False,
    std: torch.Tensor | None = None,
) -> tuple[list[dict[str, float]], torch.Tensor | None]:
    """Each member's metrics, as losses.evaluate names them, and the raw outputs.

    x [rows, ...] and y [rows, ...] are every member's; with `each`, x [K, rows, ...] and
    y [K, rows, ...] are each member's own (cross-validation folds), and `std` [K] each
    member's target std (member_data.py)."""
    k = model.size
    if not each:
        x, y = x.unsqueeze(0), y.unsqueeze(0)  # [1, rows, ...]: expanded to K below
    # Rows go through in chunks sized so that K members' activations stay under
    # EVAL_ELEMENTS floats whatever K is (all at once, K = 64 on MNIST took +628 MiB).
    # Loss and accuracy are means over rows: chunk means weighted by rows give the same
    # value. A classification's F1, balanced accuracy and AUCs are not: a tally adds up
    # each member's confusion counts (and scores) over the chunks (class_metrics.py).
    widest = model.width(x[0, 0].shape) + x[0, 0].numel()
    rows = max(1, EVAL_ELEMENTS // (k * widest))
    n = x.shape[1]
    sums: dict[str, torch.Tensor] = {}
    outs = []
    tally = ClassTally() if config.classifies else None
    for i in range(0, n, rows):
        xc, yc = x[:, i : i + rows], y[:, i : i + rows]
        out = model(xc.expand(k, *xc.shape[1:]))
        yk = yc.expand(k, *yc.shape[1:])  # [K, rows]: each member's labels
        values = member_metrics(config, out, yk, std)
        for name, v in values.items():
            sums[name] = sums.get(name, 0) + v.double() * xc.shape[1]
        if tally:
            tally.add(out, yk)
        if keep_outputs:
            outs.append(out)
    means = {name: v / n for name, v in sums.items()}
    if tally:
        means |= tally.metrics()
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
