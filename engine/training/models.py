"""The study's two model families: an MLP (every problem) and a small CNN (images), or
the user's own (`model = "package.module:build"`, see engine/training/usermodel.py)."""

from __future__ import annotations

import math

import torch
from torch import nn

from hypertui.engine.core.config import Config

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}
IMAGE_SIDE = 28  # MNIST
N_CLASSES = 10


def input_shape(config: Config) -> tuple[int, ...]:
    """One example's shape: (features,) for tables, (channels, side, side) for images."""
    if config.problem == "mnist":
        return (1, IMAGE_SIDE, IMAGE_SIDE)
    if config.problem == "house":
        return (len(config.features),)
    from hypertui.engine.data.load import shapes

    return shapes(config)[0]


def input_size(config: Config) -> int:
    return math.prod(input_shape(config))


def output_size(config: Config) -> int:
    if config.problem == "mnist":
        return N_CLASSES
    if config.problem in ("table", "images") and config.classifies:
        from hypertui.engine.data.load import shapes

        return shapes(config)[1]
    return 2 if config.loss == "gaussian_nll" else 1  # gaussian: mean and raw variance


def mlp(in_features: int, hidden: tuple[int, ...], out: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


def cnn(
    channels: tuple[int, ...],
    activation: str,
    in_channels: int = 1,
    side: int = IMAGE_SIDE,
    n_classes: int = N_CLASSES,
) -> nn.Sequential:
    """conv3x3 (padding 1) -> activation -> maxpool2 per block, then one dense layer."""
    layers: list[nn.Module] = []
    c_in = in_channels
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1), ACTIVATIONS[activation](), nn.MaxPool2d(2)]
        c_in, side = c, side // 2
    layers += [nn.Flatten(), nn.Linear(c_in * side * side, n_classes)]
    return nn.Sequential(*layers)


def build_model(config: Config, shapes: tuple[tuple[int, ...], int] | None = None) -> nn.Module:
    """A freshly initialised model; call under `torch.manual_seed` for reproducible weights.
    `shapes` (one example's input shape, the outputs) spare reading a table or an image
    folder for them: a checkpoint keeps them (sweeps/model_out.py)."""
    shape, out = shapes or (input_shape(config), output_size(config))
    if config.model not in ("mlp", "cnn"):
        from hypertui.engine.training.usermodel import build_own_model

        return build_own_model(config, tuple(shape), out)
    if config.model == "cnn" and config.problem == "images":
        return cnn(config.channels, config.activation, shape[0], shape[1], out)
    if config.model == "cnn":
        return cnn(config.channels, config.activation)
    return mlp(math.prod(shape), config.hidden, out, config.activation)


def mlp_weights(config: Config) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The MLP's (weight [out, in], bias [out]) per layer, the very numbers `build_model`
    draws under the same seed (nn.Linear's init, in its order), without building modules:
    constructing nn.Modules costs ~2 ms a member, minutes for a population of 65,536."""
    sizes = [input_size(config), *config.hidden, output_size(config)]
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:], strict=False):
        # nn.init.kaiming_uniform_(a=sqrt(5)) computed as it does, without its no_grad context
        gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
        w_bound = math.sqrt(3.0) * (gain / math.sqrt(n_in)) if n_in > 0 else 0.0
        b_bound = 1 / math.sqrt(n_in) if n_in > 0 else 0.0
        weight = torch.empty(n_out, n_in).uniform_(-w_bound, w_bound)
        bias = torch.empty(n_out).uniform_(-b_bound, b_bound)
        layers.append((weight, bias))
    return layers


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_optimizer(config: Config, params) -> torch.optim.Optimizer:
    """The configured optimizer; foreach kernels (one launch for all tensors) by default."""
    common = {"lr": config.lr, "weight_decay": config.weight_decay, "foreach": True}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, momentum=config.momentum, **common)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, momentum=config.momentum, **common)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, **common)
    return torch.optim.AdamW(params, **common)
