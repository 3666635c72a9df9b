"""Your own model: `model = "package.module:build"` in a preset.

`build(config, input_shape, n_outputs, **model_args)` returns an `nn.Module` that maps a
batch [B, *input_shape] to [B, n_outputs]. n_outputs is the number of classes for
classification, 1 for regression with mse and 2 (mean, raw variance) with gaussian_nll.
`model_args` are the preset's `model_args = { ... }` table: plain TOML values, checked by
hypertui.engine.core.config, never evaluated as code. The module is imported by name (the working
directory is on the import path), the only code hypertui runs is the code the user named.

Such runs train one at a time: a population stacks MLPs of one shape, which an arbitrary
module is not (core.grouping.population_key returns None for them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import nn

from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.own_model import on_import_path

NOTE = "your own model: trials train one at a time (populations stack only the built-in models)"


def find_builder(spec: str) -> Callable:
    """The callable that `spec` ("package.module:name") names, or a clear ConfigError."""
    module_name, _, attr = spec.partition(":")
    on_import_path()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of the user's code is bad input
        first = (str(exc).splitlines() or [""])[0]
        raise ConfigError(
            f"model = {spec!r}: module {module_name!r} cannot be imported "
            f"({type(exc).__name__}: {first}); is its folder the working directory or on "
            "PYTHONPATH?"
        ) from None
    builder = getattr(module, attr, None)
    if builder is None:
        raise ConfigError(f"model = {spec!r}: module {module_name!r} has no {attr!r}")
    if not callable(builder):
        raise ConfigError(f"model = {spec!r}: {attr!r} is not callable")
    return builder


def build_own_model(config, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Call the user's builder and check what it returned (shape included, on one example)."""
    builder = find_builder(config.model)
    kwargs = config.to_dict()["model_args"]
    try:
        model = builder(config, tuple(input_shape), n_outputs, **kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"model = {config.model!r}: calling it with (config, input_shape, n_outputs"
            f"{', ' + ', '.join(kwargs) if kwargs else ''}) failed: {exc}"
        ) from None
    except Exception as exc:  # the user's code failing is bad input, not a hypertui crash
        raise ConfigError(
            f"model = {config.model!r} failed while building "
            f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})"
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model = {config.model!r} returned {type(model).__name__}, not a torch.nn.Module"
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"model = {config.model!r} returned a module with nothing to train")
    with torch.no_grad():
        was_training = model.training
        model.eval()
        try:
            out = model(torch.zeros(2, *input_shape))
        except Exception as exc:  # the user's forward: report it, do not crash the sweep
            raise ConfigError(
                f"model = {config.model!r}: a batch of shape [2, "
                f"{', '.join(map(str, input_shape))}] fails in forward "
                f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})"
            ) from None
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_outputs):
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"model = {config.model!r}: output for a batch of 2 is {shape}, expected "
            f"[2, {n_outputs}]"
        )
    return model
