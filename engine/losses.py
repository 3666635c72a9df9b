"""Training losses and evaluation metrics for both problems.

Gaussian likelihood (house): the model's second output is a raw variance, made positive
with softplus plus a floor, so the NLL can never divide by zero.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from engine.config import Config

VAR_FLOOR = 1e-6  # smallest predicted variance, in (target units)^2
EVAL_CHUNK = 2048  # examples per forward pass when evaluating


def mean_and_var(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return out[:, :1], F.softplus(out[:, 1:]) + VAR_FLOOR


def make_loss(config: Config) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if config.problem == "mnist":
        if config.loss == "cross_entropy":
            return F.cross_entropy
        # MSE between the raw outputs and one-hot targets, as in the study
        return lambda out, y: F.mse_loss(out, F.one_hot(y, out.shape[1]).to(out.dtype))
    if config.loss == "gaussian_nll":

        def nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            mean, var = mean_and_var(out)
            return F.gaussian_nll_loss(mean, y, var)

        return nll
    return F.mse_loss


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)])
    model.train(was_training)
    return out


@torch.no_grad()
def evaluate(
    config: Config, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, prefix: str
) -> dict[str, float]:
    """`{prefix}_loss` plus `{prefix}_acc` (mnist) or `{prefix}_mse` (+ `_nll`, `_var`)."""
    out = predict(model, x)
    loss = make_loss(config)(out, y)
    if config.problem == "mnist":
        acc = (out.argmax(1) == y).float().mean()
        values = {"loss": loss, "acc": acc}
    elif config.loss == "gaussian_nll":
        mean, var = mean_and_var(out)
        values = {"loss": loss, "mse": F.mse_loss(mean, y), "nll": loss, "var": var.mean()}
    else:
        values = {"loss": loss, "mse": loss}
    stacked = torch.stack([v.float() for v in values.values()]).tolist()  # one host sync
    return {f"{prefix}_{k}": v for k, v in zip(values, stacked, strict=True)}


@torch.no_grad()
def analyse(config: Config, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """What the run-detail view plots, as plain lists (validation set, in split order).

    house: predicted means (and variances for gaussian_nll), in target units;
    mnist: the 10x10 confusion matrix, rows = true class, columns = predicted.
    """
    return analyse_outputs(config, predict(model, x), y)


def analyse_outputs(config: Config, out: torch.Tensor, y: torch.Tensor) -> dict:
    """`analyse` from a model's outputs on the validation set."""
    if config.problem == "mnist":
        pred = out.argmax(1)
        confusion = torch.zeros(out.shape[1], out.shape[1], dtype=torch.long, device=out.device)
        confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
        return {"confusion": confusion.tolist()}
    if config.loss == "gaussian_nll":
        mean, var = mean_and_var(out)
        return {"pred": _rounded(mean), "var": _rounded(var)}
    return {"pred": _rounded(out[:, :1])}


def _rounded(t: torch.Tensor) -> list[float]:
    return [float(f"{v:.5g}") for v in t.flatten().tolist()]
