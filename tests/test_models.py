import math

import pytest
import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.training.losses import (
    _rounded,
    evaluate,
    make_loss,
    mean_and_var,
    member_losses,
)
from hypertui.engine.training.models import build_model, build_optimizer, mlp_weights


@pytest.mark.parametrize(
    "values, x_shape, out_shape",
    [
        ({"hidden": [10, 10, 10, 10]}, (7, 3), (7, 1)),
        ({"hidden": []}, (7, 3), (7, 1)),
        ({"loss": "gaussian_nll"}, (7, 3), (7, 2)),
        ({"problem": "mnist", "model": "mlp", "hidden": [32]}, (5, 1, 28, 28), (5, 10)),
        ({"problem": "mnist", "channels": [16, 32, 64, 128]}, (5, 1, 28, 28), (5, 10)),
        ({"problem": "mnist", "channels": [8]}, (5, 1, 28, 28), (5, 10)),
    ],
)
def test_output_shapes(values, x_shape, out_shape):
    config = make_config(values)
    model = build_model(config)
    assert model(torch.randn(x_shape)).shape == out_shape


def test_cnn_is_conv3x3_activation_maxpool_blocks_then_one_dense_layer():
    model = build_model(make_config(problem="mnist", activation="tanh"))
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model) == 4
    assert sum(isinstance(m, torch.nn.Tanh) for m in model) == 4
    assert [type(m) for m in model][-1] is torch.nn.Linear


def test_gaussian_head_gives_positive_variance_even_for_very_negative_outputs():
    out = torch.tensor([[1.0, -1e4], [2.0, 0.0], [3.0, 50.0]])
    mean, var = mean_and_var(out)
    assert torch.equal(mean, out[:, :1])
    assert (var > 0).all()
    loss = make_loss(make_config(loss="gaussian_nll"))(out, torch.ones(3, 1))
    assert torch.isfinite(loss)


def test_gaussian_evaluation_reports_mse_of_the_mean_and_mean_variance():
    config = make_config(loss="gaussian_nll", hidden=[])
    model = build_model(config)
    x, y = torch.randn(20, 3), torch.randn(20, 1)
    metrics = evaluate(config, model, x, y, "val")
    with torch.no_grad():
        mean, var = mean_and_var(model(x))
    assert set(metrics) == {"val_loss", "val_mse", "val_nll", "val_var"}
    assert metrics["val_mse"] == pytest.approx(((mean - y) ** 2).mean().item(), rel=1e-5)
    assert metrics["val_var"] == pytest.approx(var.mean().item(), rel=1e-5)
    # val_nll is the full negative log-likelihood, 1/2 log(2 pi) included
    full = -torch.distributions.Normal(mean, var.sqrt()).log_prob(y).mean().item()
    assert metrics["val_nll"] == pytest.approx(full, rel=1e-5)


def test_mnist_mse_loss_uses_one_hot_targets():
    loss = make_loss(make_config(problem="mnist", loss="mse"))
    perfect = torch.nn.functional.one_hot(torch.tensor([3, 7]), 10).float()
    assert loss(perfect, torch.tensor([3, 7])).item() == 0.0
    assert loss(perfect, torch.tensor([3, 6])).item() == pytest.approx(2 / 20)


@pytest.mark.parametrize(
    "name, cls", [("sgd", "SGD"), ("adam", "Adam"), ("rmsprop", "RMSprop"), ("adamw", "AdamW")]
)
def test_optimizers(name, cls):
    config = make_config(optimizer=name, lr=0.05, weight_decay=0.01)
    opt = build_optimizer(config, build_model(config).parameters())
    assert type(opt).__name__ == cls
    assert opt.defaults["lr"] == 0.05 and opt.defaults["weight_decay"] == 0.01


@pytest.mark.parametrize(
    "values, outputs",
    [
        ({"loss": "mse"}, 1),
        ({"loss": "gaussian_nll"}, 2),
        ({"problem": "mnist", "loss": "cross_entropy"}, 10),
        ({"problem": "mnist", "loss": "mse"}, 10),
    ],
)
def test_member_losses_are_each_models_own_loss(values, outputs):
    config = make_config(values)
    torch.manual_seed(0)
    out = torch.randn(3, 6, outputs)
    if config.problem == "mnist":
        y = torch.randint(0, 10, (3, 6))
    else:
        y = torch.randn(3, 6, 1)
    together = member_losses(config, out, y)
    alone = torch.stack([make_loss(config)(out[k], y[k]) for k in range(3)])
    torch.testing.assert_close(together, alone)


@pytest.mark.parametrize(
    "values",
    [
        {"hidden": [10, 10, 10, 10]},
        {"hidden": []},
        {"loss": "gaussian_nll", "hidden": [7, 3]},
        {"problem": "mnist", "model": "mlp", "hidden": [32]},
    ],
)
def test_mlp_weights_are_the_numbers_build_model_draws(values):
    # Populations draw their members' initial weights this way: any difference would make
    # a member start (and end) elsewhere than the same trial trained alone.
    config = make_config(values, seed=3)
    torch.manual_seed(config.seed)
    expected = [p.detach() for p in build_model(config).parameters()]
    torch.manual_seed(config.seed)
    got = [t for layer in mlp_weights(config) for t in layer]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


def test_rounded_predictions_keep_five_significant_digits():
    values = torch.tensor([123456.0, 0.000123456, -9.87654321, 0.0, float("nan"), float("inf")])
    got = _rounded(values)
    assert got[:4] == [float(f"{v:.5g}") for v in values[:4].tolist()]
    assert math.isnan(got[4]) and got[5] == math.inf
