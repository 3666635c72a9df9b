"""Training losses and evaluation metrics for both problems.

Gaussian likelihood (house): the model's second output is a raw variance, made positive
with softplus plus a floor, so the NLL can never divide by zero. `val_nll` is the full
negative log-likelihood per example, -log N(y | mean, var) in target units (the floor of
1e-6 on the variance applies); `val_loss` is the training objective, which omits the
constant 1/2 log(2 pi).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from hypertui.engine.core.config import Config
from hypertui.engine.data.load import class_names, target_stats
from hypertui.engine.training.class_metrics import ClassTally

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)  # the constant term of the Gaussian NLL
VAR_FLOOR = 1e-6  # smallest predicted variance, in (target units)^2
EVAL_CHUNK = 2048  # examples per forward pass when evaluating


def mean_and_var(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted mean and variance from a gaussian_nll model's last axis of two outputs."""
    return out[..., :1], F.softplus(out[..., 1:]) + VAR_FLOOR


def make_loss(config: Config) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if config.classifies:
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


def member_losses(
    config: Config, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The loss of each of K models at once: out [K, B, outputs], y [K, B, ...] -> [K].

    The same values as `make_loss` computes for each model alone; populations train on
    it, and every evaluation (single runs too, as K = 1) measures with it. `weights` [B]
    weigh the examples inside the mean (the static-shape step pads a short batch with
    examples of weight 0, step.py)."""
    k, b, c = out.shape

    def average(per_example: torch.Tensor) -> torch.Tensor:  # [K, B, ...] -> [K]
        if weights is not None:
            per_example = per_example * weights.view(b, *[1] * (per_example.dim() - 2))
        return per_example.mean(dim=tuple(range(1, per_example.dim())))

    if config.classifies:
        if config.loss == "cross_entropy":
            flat = F.cross_entropy(out.reshape(k * b, c), y.reshape(-1), reduction="none")
            return average(flat.view(k, b))
        # one-hot targets by scatter: F.one_hot checks the labels on the host on a CPU,
        # which a recorded step cannot (step.py); the same values
        one_hot = torch.zeros_like(out).scatter_(-1, y.unsqueeze(-1), 1.0)
        return average((out - one_hot) ** 2)
    if config.loss == "gaussian_nll":
        # F.gaussian_nll_loss's terms (full=False), written out: it checks var >= 0 on the
        # host, which a recorded step cannot (step.py); var here is above its floor anyway
        mean, var = mean_and_var(out)
        return average(0.5 * (torch.log(var) + (mean - y) ** 2 / var))
    return average((out - y) ** 2)


def member_loss_gradient(
    config: Config, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each of K models' loss [K] (member_losses) and the gradient of their sum by the
    outputs `out` [K, B, outputs]. MSE's is written out, 2 (out - y) / n as F.mse_loss's
    backward computes it, without autograd's graph (the house grid took 254.8 s instead
    of 309.2 s on a 2-core CPU); the other losses go through autograd."""
    if not config.classifies and config.loss == "mse":
        diff = out - y
        if weights is None:
            loss = diff.pow(2).mean(dim=(1, 2))
        else:  # w (out - y)^2 and its gradient 2 w (out - y) / n
            weighted = diff * weights[:, None]
            loss, diff = (weighted * diff).mean(dim=(1, 2)), weighted
        return loss, diff.mul_(2.0 / (diff.shape[1] * diff.shape[2]))
    out = out.detach().requires_grad_()
    with torch.enable_grad():
        loss = member_losses(config, out, y, weights)
        (grad,) = torch.autograd.grad(loss.sum(), out)
    return loss.detach(), grad


def member_metrics(
    config: Config, out: torch.Tensor, y: torch.Tensor, std: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Each metric of K models' outputs [K, B, outputs] against y [K, B, ...], as [K]:
    loss, then acc (classification) or mse (regression; plus nll and var for gaussian_nll).
    Every one is a mean over the B rows; a classification's other scores are not
    (`split_metrics`, class_metrics.py).

    A table's target is standardised for training; mse, nll and var are reported in the
    target's own units (loss stays standardised, as the training loss is)."""
    values = {"loss": member_losses(config, out, y)}
    if std is None:  # else each member's own (folds: member_data.py)
        std = target_stats(config)[1]
    if config.classifies:
        values["acc"] = (out.argmax(2) == y).float().mean(1)
    elif config.loss == "gaussian_nll":
        mean, var = mean_and_var(out)
        values |= {
            "mse": ((mean - y) ** 2).mean(dim=(1, 2)) * std**2,
            # The full Gaussian NLL per example in the target's own units: the 1/2 log(2 pi)
            # that the training loss (gaussian_nll_loss, full=False) leaves out, and log std
            # for a standardised target (0.5 log(var std^2) = 0.5 log var + log std).
            "nll": values["loss"]
            + HALF_LOG_2PI
            + (torch.log(std) if isinstance(std, torch.Tensor) else math.log(std)),
            "var": var.mean(dim=(1, 2)) * std**2,
        }
    else:
        values["mse"] = values["loss"] * std**2
    return values


def metric_rows(values: dict[str, torch.Tensor], prefix: str) -> list[dict[str, float]]:
    """One {prefix_name: value} dict per model, read from the device in one host sync."""
    table = torch.stack([v.float() for v in values.values()]).t().tolist()
    return [{f"{prefix}_{n}": v for n, v in zip(values, row, strict=True)} for row in table]


def split_metrics(config: Config, out: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of K models' outputs [K, n, outputs] on a whole split, as [K]:
    member_metrics, then (classification) macro_f1, balanced_acc, and with two classes
    roc_auc and pr_auc. A population tallies them chunk by chunk to the same values
    (stacked.evaluate_members)."""
    values = member_metrics(config, out, y)
    if config.classifies:
        tally = ClassTally()
        tally.add(out, y)
        values |= tally.metrics()
    return values


@torch.no_grad()
def evaluate(
    config: Config, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, prefix: str
) -> dict[str, float]:
    """`{prefix}_loss` plus `{prefix}_acc`, `_macro_f1`, `_balanced_acc` (and `_roc_auc`,
    `_pr_auc` with two classes) or `{prefix}_mse` (+ `_nll`, `_var`)."""
    out = predict(model, x)
    return metric_rows(split_metrics(config, out[None], y[None]), prefix)[0]


@torch.no_grad()
def analyse(config: Config, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """What the run-detail view plots, as plain lists (validation set, in split order).

    house: predicted means (and variances for gaussian_nll), in target units;
    mnist: the 10x10 confusion matrix, rows = true class, columns = predicted.
    """
    return analyse_outputs(config, predict(model, x), y)


def analyse_outputs(config: Config, out: torch.Tensor, y: torch.Tensor) -> dict:
    """`analyse` from a model's outputs on the validation set."""
    if config.classifies:
        pred = out.argmax(1)
        confusion = torch.zeros(out.shape[1], out.shape[1], dtype=torch.long, device=out.device)
        confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
        names = class_names(config)  # your own classes: the detail view labels rows with them
        return {"confusion": confusion.tolist(), **({"classes": list(names)} if names else {})}
    shift, std = target_stats(config)
    if config.loss == "gaussian_nll":
        mean, var = mean_and_var(out)
        return {"pred": _rounded(mean * std + shift), "var": _rounded(var * std**2)}
    return {"pred": _rounded(out[:, :1] * std + shift)}


def _rounded(t: torch.Tensor) -> list[float]:
    """Five significant digits, as f"{v:.5g}" gives them, vectorised: a population of
    65,536 members rounds 65,536 prediction lists, 0.8 ms each by string formatting."""
    v = t.detach().flatten().double().cpu().numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(v)))
    scale = 10.0 ** (4 - np.where(np.isfinite(exponent), exponent, 0))
    return (np.round(v * scale) / scale).tolist()
