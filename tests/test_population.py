"""Population training: each member is the same run as training that trial alone."""

from __future__ import annotations

import functools
import threading

import pytest
import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.core.controls import Controls
from hypertui.engine.core.events import Finished, Progress, RunStarted
from hypertui.engine.core.grouping import population_key
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run
from tests.fakes import epoch_curve, member_row, write_image_folder

STEPS_300 = {"epochs": 3, "batch_size": 21}  # 98 steps an epoch: ~300 steps


def single_params(config) -> list[torch.Tensor]:
    got: dict = {}
    events = list(
        run(
            config,
            inspect=lambda m: got.setdefault("p", [p.detach().clone() for p in m.parameters()]),
        )
    )
    return events, got["p"]


def population(configs):
    got: dict = {}
    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    events = list(run_population(members, inspect=lambda m: got.setdefault("m", m)))
    return events, got["m"]


def assert_members_train_as_alone(configs, atol: float = 1e-5) -> list[Finished]:
    """Each member of a population of `configs` ends with its single run's parameters and
    final val_mse; returns the members' Finished events and each single run's, in order."""
    pop_events, model = population(configs)
    done = [e for e in pop_events if isinstance(e, Finished)]
    alone = []
    for k, config in enumerate(configs):
        single_events, params = single_params(config)
        for a, b in zip(model.member_parameters(k), params, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=atol)
        assert done[k].final["val_mse"] == pytest.approx(
            single_events[-1].final["val_mse"], rel=1e-4
        )
        alone.append(single_events[-1])
    return list(zip(done, alone, strict=True))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
@pytest.mark.parametrize("loss", ["mse", "gaussian_nll"])
def test_members_end_with_the_same_parameters_as_single_runs(optimizer, loss):
    momentum = 0.9 if optimizer != "adam" else 0.0
    configs = [
        make_config(
            optimizer=optimizer,
            loss=loss,
            lr=lr,
            seed=seed,
            hidden=[10, 10],
            momentum=momentum if seed != 2 else 0.0,
            weight_decay=wd,
            **STEPS_300,
        )
        for lr, seed, wd in ((1e-3, 0, 0.0), (3e-3, 1, 1e-3), (1e-2, 2, 0.0))
    ]
    # RMSprop divides by sqrt of a running mean of squared gradients: for a weight whose
    # gradients stay near zero, float reassociation (a batched matmul against single ones)
    # grows to ~1.5e-5 after 300 steps on this CPU's torch 2.14 kernels (1e-5 held on an
    # H200 and on earlier CPUs). A wrong update is off by orders of magnitude more.
    atol = 3e-5 if optimizer == "rmsprop" else 1e-5
    for member_done, single_done in assert_members_train_as_alone(configs, atol):
        assert member_done.steps == single_done.steps == 294


@pytest.mark.parametrize("steps", [STEPS_300, {"epochs": 3, "batch_size": 512}])
def test_members_with_different_activations_and_optimizers_train_as_alone(steps):
    # Interleaved on purpose: an optimizer's or an activation's members need not sit side
    # by side (each run of rows gets its kernels). Every activation, at two batch sizes.
    configs = [
        make_config(optimizer=opt, activation=act, lr=lr, seed=seed, hidden=[10, 10], **steps)
        for opt, act, lr, seed in (
            ("adam", "tanh", 3e-3, 0),
            ("sgd", "relu", 1e-2, 1),
            ("adam", "sigmoid", 1e-2, 2),
            ("rmsprop", "relu", 1e-3, 3),
            ("sgd", "gelu", 0.1, 4),
            ("adam", "leaky_relu", 3e-3, 5),
            ("sgd", "sigmoid", 0.1, 6),
        )
    ]
    assert_members_train_as_alone(configs)


def test_events_look_exactly_like_single_runs(monkeypatch):
    # one report per epoch: an epoch slowed past REPORT_EVERY_S on a busy machine would add one
    monkeypatch.setattr("hypertui.engine.training.clock.REPORT_EVERY_S", 3600.0)
    configs = [
        make_config(lr=lr, seed=s, hidden=[8], epochs=2) for lr, s in ((0.01, 0), (0.001, 1))
    ]
    events, _ = population(configs)
    for k in range(2):
        mine = [e for e in events if e.run_id == f"m{k}"]
        single, _ = single_params(configs[k])
        assert [type(e) for e in mine] == [type(e) for e in single]
        assert [type(e) for e in mine] == [RunStarted, Progress, Progress, Finished]
        assert mine[0].config == configs[k].to_dict() and mine[0].n_params == single[0].n_params
        assert set(mine[-1].final) == set(single[-1].final)
        assert set(mine[-1].test) == set(single[-1].test) and mine[-1].analysis["pred"]


def test_a_diverging_member_is_frozen_while_the_rest_go_on():
    configs = [
        make_config(optimizer="sgd", lr=lr, seed=s, hidden=[10], epochs=4)
        for lr, s in ((1e6, 0), (0.01, 1), (0.01, 2))
    ]
    events, _ = population(configs)
    done = [e for e in events if isinstance(e, Finished)]
    assert done[0].status == "diverged" and done[0].test == {}
    assert [d.status for d in done[1:]] == ["finished", "finished"]
    progress0 = [e for e in events if isinstance(e, Progress) and e.run_id == "m0"]
    assert len(progress0) == 1  # no reports after it diverged
    for k in (1, 2):
        single, _ = single_params(configs[k])
        assert done[k].final["val_mse"] == pytest.approx(single[-1].final["val_mse"], rel=1e-4)


def test_population_key_groups_only_what_can_train_together():
    a = make_config(lr=0.1, seed=0, momentum=0.5, optimizer="sgd")
    assert population_key(a) == population_key(a.replace(lr=0.001, seed=3, weight_decay=0.1))
    other = a.replace(activation="tanh", optimizer="adam", momentum=0.0)
    assert population_key(a) == population_key(other)  # separate groups in one population
    for change in (
        {"batch_size": 20},
        {"hidden": (5,)},
        {"epochs": 3},
    ):
        assert population_key(a) != population_key(a.replace(**change))
    cnn = make_config(problem="mnist", model="cnn", time_budget_s=None, epochs=2)
    assert population_key(cnn) == population_key(cnn.replace(lr=0.3, activation="tanh"))
    assert population_key(cnn) != population_key(cnn.replace(channels=(8,)))
    # under a time budget a CNN member would get ~1/K of its steps: it trains alone
    assert population_key(cnn.replace(time_budget_s=12.0)) is None


SWEEP = """
description = "populations in a sweep"
seeds = 2
[config]
hidden = [6]
batch_size = 64
epochs = 3
optimizer = "adam"
[sweep]
activation = ["relu", "tanh"]
lr = [1e4, 0.01]
"""


def test_a_sweep_stores_the_same_results_with_and_without_populations(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    preset = parse_preset(SWEEP, "p.toml")
    together = create_sweep(store, preset)
    alone = create_sweep(store, preset)
    list(run_sweep(store, together))
    list(run_sweep(store, alone, population=False))
    a, b = store.runs(together), store.runs(alone)
    assert [r.status for r in a] == [r.status for r in b]
    assert "diverged" in {r.status for r in a} and "finished" in {r.status for r in a}
    for x, y in zip(a, b, strict=True):
        assert x.point == y.point and x.seed == y.seed and x.epochs_done == y.epochs_done
        assert len(store.points(x.id)) == len(store.points(y.id))
        if x.status == "finished":
            assert x.final["val_mse"] == pytest.approx(y.final["val_mse"], rel=1e-4)


def test_cancel_and_resume_a_population(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    text = SWEEP.replace("epochs = 3", "epochs = 40")
    text = text.replace('activation = ["relu", "tanh"]', "batch_size = [64, 32]")
    sweep_id = create_sweep(store, parse_preset(text, "p.toml"))
    controls = Controls()
    for item in run_sweep(store, sweep_id, controls):
        if isinstance(item.event, Progress) and item.event.epoch == 2:
            controls.stop.set()
    statuses = [r.status for r in store.runs(sweep_id)]
    # batch 64's population, then 32; a member that diverged stays diverged (issue 9)
    assert set(statuses[:4]) <= {"cancelled", "diverged"} and statuses[4:] == ["pending"] * 4
    resumed = {item.event.run_id for item in run_sweep(store, sweep_id)}
    assert len(resumed) == 8 - statuses.count("diverged")
    assert {r.status for r in store.runs(sweep_id)} <= {"finished", "diverged"}


def test_a_time_budget_ends_the_whole_population():
    configs = [
        make_config(lr=lr, seed=s, hidden=[4], batch_size=1, epochs=1000, time_budget_s=0.8)
        for lr, s in ((0.01, 0), (0.001, 1))
    ]
    events, _ = population(configs)
    done = [e for e in events if isinstance(e, Finished)]
    assert all(d.status == "finished" and "time budget" in d.reason for d in done)
    assert all(0.8 <= d.elapsed_s <= 0.8 + 5 * d.elapsed_s / d.steps for d in done)


def test_pause_holds_a_population(monkeypatch):
    pause = threading.Event()
    configs = [make_config(lr=0.01, seed=s, hidden=[4], epochs=2) for s in (0, 1)]
    calls = 0

    def paused() -> bool:
        nonlocal calls
        calls += 1
        if calls == 10:
            pause.set()
            threading.Timer(0.3, pause.clear).start()
        return pause.is_set()

    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    done = [e for e in run_population(members, should_pause=paused) if isinstance(e, Finished)]
    assert [d.status for d in done] == ["finished", "finished"]
    assert done[0].wall_s > done[0].elapsed_s + 0.3


@pytest.mark.parametrize("batch", [7, 4000])  # a small layer and a large one
def test_members_that_stay_after_a_cut_keep_their_own_activation(batch):
    """keep() drops rows of a model whose members differ in activation: the rows left must
    compute, forward and backward, exactly what they computed before."""
    from hypertui.engine.training.losses import member_loss_gradient
    from hypertui.engine.training.stacked import StackedMLP

    torch.manual_seed(0)
    acts = ["relu", "relu", "tanh", "sigmoid", "sigmoid"]
    layers = [
        [(torch.randn(6, 3), torch.randn(6)), (torch.randn(1, 6), torch.randn(1))] for _ in acts
    ]
    model = StackedMLP(layers, acts, "cpu")
    x, y = torch.randn(len(acts), batch, 3), torch.randn(len(acts), batch, 1)
    loss_of = functools.partial(member_loss_gradient, make_config())
    loss = model.gradients(x, y, loss_of)
    rows = [1, 2, 4]
    outputs, grads = model(x)[rows], model.flat_grad[rows].clone()
    model.keep(torch.tensor(rows))
    assert torch.equal(model(x[rows]), outputs)
    kept = model.gradients(x[rows], y[rows], loss_of)
    assert torch.equal(kept, loss[rows]) and torch.equal(model.flat_grad, grads)


@pytest.mark.parametrize("loss", ["mse", "gaussian_nll", "cross_entropy"])
def test_the_loss_gradient_is_autograds(loss):
    """MSE's gradient is written out; it must be what autograd computes for every loss."""
    from hypertui.engine.training.losses import member_loss_gradient, member_losses

    config = (
        make_config(problem="mnist", loss=loss)
        if loss == "cross_entropy"
        else make_config(loss=loss)
    )
    torch.manual_seed(0)
    out = torch.randn(4, 9, 10 if loss == "cross_entropy" else (2 if loss == "gaussian_nll" else 1))
    y = torch.randint(0, 10, (4, 9)) if loss == "cross_entropy" else torch.randn(4, 9, 1)
    loss_values, grad = member_loss_gradient(config, out, y)
    leaf = out.clone().requires_grad_()
    expected = member_losses(config, leaf, y)
    expected.sum().backward()
    torch.testing.assert_close(loss_values, expected.detach())
    torch.testing.assert_close(grad, leaf.grad)


def test_an_optimizer_whose_members_are_apart_updates_them_as_if_side_by_side():
    """Members sorted by activation leave one optimizer's rows apart: the step gathers them.
    Each row must get its own update, before and after a cut and a frozen member."""
    from hypertui.engine.training.stacked import StackedMLP
    from hypertui.engine.training.stacked_optimizer import StackedOptimizer

    opts = ["adam", "sgd", "rmsprop", "adam", "sgd", "rmsprop"]
    configs = [
        make_config(optimizer=o, lr=0.01 * (i + 1), momentum=0.9 if o == "sgd" else 0.0)
        for i, o in enumerate(opts)
    ]
    torch.manual_seed(0)
    layers = [[(torch.randn(4, 3), torch.randn(4))] for _ in configs]
    together = sorted(range(len(configs)), key=lambda r: opts[r])  # side by side: no gather
    apart = StackedMLP(layers, ["relu"] * 6, "cpu")
    side = StackedMLP([layers[r] for r in together], ["relu"] * 6, "cpu")
    opt_apart = StackedOptimizer(apart, configs)
    opt_side = StackedOptimizer(side, [configs[r] for r in together])
    assert opt_apart.order is not None and opt_side.order is None

    def step(model, opt, grads):
        model.flat_grad.copy_(grads)
        opt.step()

    for t in range(5):
        grads = torch.randn(apart.flat.shape[0], apart.flat.shape[1])
        step(apart, opt_apart, grads)
        step(side, opt_side, grads[together])
        torch.testing.assert_close(apart.flat[together], side.flat, rtol=0, atol=0)
        if t == 1:  # original row 3 (an adam) stops
            opt_apart.freeze(3)
            opt_side.freeze(together.index(3))
            frozen = apart.flat[3].clone()
        if t == 2:  # rows 0, 2, 3, 5 stay
            kept = [0, 2, 3, 5]
            side_rows = sorted(together.index(r) for r in kept)
            apart.keep(torch.tensor(kept))
            opt_apart.keep(kept)
            side.keep(torch.tensor(side_rows))
            opt_side.keep(side_rows)
            together = [kept.index(together[j]) for j in side_rows]
    assert torch.equal(apart.flat[2], frozen)  # row 3, now 2: not moved since it stopped


def test_gelu_and_leaky_relu_members_train_as_alone():
    configs = [
        make_config(activation=act, optimizer="adam", lr=3e-3, seed=seed, hidden=[6, 6], epochs=2)
        for act, seed in (("gelu", 0), ("leaky_relu", 1), ("gelu", 2))
    ]
    _, model = population(configs)
    for k, config in enumerate(configs):
        _, params = single_params(config)
        for a, b in zip(model.member_parameters(k), params, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_cnn_members_train_as_alone_and_halving_drops_them(tmp_path, monkeypatch):
    # RGB images (3 input channels a member), two conv blocks, mixed activations and
    # optimizers; halving at epoch 2 keeps the two that learn (the rest barely move).
    # On a GPU (bench/gpu.sh) convolutions are compared in full fp32 and deterministic.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    write_image_folder(tmp_path / "imgs")
    common = {"problem": "images", "path": str(tmp_path / "imgs"), "image_size": 16}
    configs = [
        make_config(
            **common, channels=[4, 8], batch_size=8, epochs=6, prune="halving", prune_from=2,
            activation=act, optimizer=opt, lr=lr, seed=seed,
            momentum=0.9 if opt == "sgd" else 0.0,
        )
        for act, opt, lr, seed in (
            ("relu", "sgd", 0.03, 0), ("relu", "adam", 1e-6, 1), ("relu", "sgd", 1e-6, 0),
            ("tanh", "rmsprop", 0.003, 1), ("tanh", "sgd", 1e-6, 0), ("tanh", "adam", 1e-6, 1),
        )
    ]  # fmt: skip
    assert len({population_key(c) for c in configs}) == 1
    events, model = population(configs)
    done = [e for e in events if isinstance(e, Finished)]
    by_run = {e.run_id: e for e in done}
    kept = [k for k in range(len(configs)) if by_run[f"m{k}"].status == "finished"]
    assert 0 < len(kept) < len(configs) and model.size in (len(kept), len(configs))
    for k in kept:
        single_events, params = single_params(configs[k])
        assert by_run[f"m{k}"].steps == single_events[-1].steps
        row = member_row(model, len(configs), kept, k)
        for a, b in zip(model.member_parameters(row), params, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert by_run[f"m{k}"].final["val_acc"] == single_events[-1].final["val_acc"]


def test_adamw_members_decay_their_weights_as_torch_adamw_does():
    """AdamW's decay is decoupled (the weights shrink by lr * wd before the Adam step) and
    Adam's is an L2 term in the gradient: each member, interleaved with the other kind,
    must take the step torch.optim's own optimizer takes on the same weights and gradients."""
    from hypertui.engine.training.stacked import StackedMLP
    from hypertui.engine.training.stacked_optimizer import StackedOptimizer

    specs = [("adamw", 0.01, 0.1), ("adam", 0.01, 0.1), ("adamw", 0.03, 0.5), ("adamw", 0.01, 0.0)]
    configs = [make_config(optimizer=o, lr=lr, weight_decay=wd) for o, lr, wd in specs]
    torch.manual_seed(0)
    layers = [[(torch.randn(4, 3), torch.randn(4))] for _ in configs]
    model = StackedMLP(layers, ["relu"] * len(configs), "cpu")
    stacked = StackedOptimizer(model, configs)
    alone = [model.flat[k].clone().requires_grad_() for k in range(len(configs))]
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    torch_opts = [
        kinds[o]([p], lr=lr, weight_decay=wd) for (o, lr, wd), p in zip(specs, alone, strict=True)
    ]
    for _ in range(10):
        grads = torch.randn_like(model.flat)
        model.flat_grad.copy_(grads)
        stacked.step()
        for k, (p, opt) in enumerate(zip(alone, torch_opts, strict=True)):
            p.grad = grads[k].clone()
            opt.step()
    for k, p in enumerate(alone):
        torch.testing.assert_close(
            model.flat[k], p.detach(), msg=lambda m, k=k: f"member {k}, {specs[k]}: {m}"
        )


def test_adamw_members_with_weight_decay_train_as_alone():
    """The mnist-fast preset's optimizer: AdamW members (decoupled decay), mixed with Adam
    ones (L2 decay), end with the weights and metrics of single runs (torch.optim.AdamW)."""
    configs = [
        make_config(optimizer=o, lr=lr, weight_decay=wd, seed=seed, hidden=[8], epochs=2)
        for o, lr, wd, seed in (
            ("adamw", 1e-2, 0.1, 0),
            ("adam", 1e-2, 0.1, 1),
            ("adamw", 3e-3, 0.5, 2),
        )
    ]
    assert_members_train_as_alone(configs)


def test_a_members_best_epoch_is_the_lowest_point_of_its_curve_as_alone():
    """Halving, the leaderboard and `best` read Finished.best: with a high lr the val_mse
    curve goes up and down, and each member's best must be its lowest epoch (the first of
    equals), exactly as its single run reports it."""
    epochs = 8
    configs = [
        make_config(optimizer=o, lr=lr, seed=seed, hidden=[8], batch_size=32, epochs=epochs)
        for o, lr, seed in (("adam", 0.05, 1), ("rmsprop", 0.03, 3), ("sgd", 0.01, 2))
    ]
    events, _ = population(configs)
    done = [e for e in events if isinstance(e, Finished)]
    for k, config in enumerate(configs):
        curve = epoch_curve(events, f"m{k}")
        lowest = min(range(epochs), key=lambda e: curve[e]["val_mse"])
        assert done[k].best_epoch == lowest + 1 and done[k].best == curve[lowest]
        single = single_params(config)[0][-1]
        assert done[k].best_epoch == single.best_epoch
        assert done[k].best["val_mse"] == pytest.approx(single.best["val_mse"], rel=1e-4)
    # the setup's point: some best is neither the first epoch nor the last
    assert any(1 < d.best_epoch < epochs for d in done)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_skipped_member_leaves_mid_epoch_and_the_rest_train_as_alone(optimizer):
    """A skip that names one member (Live's `s` on the trial it charts) ends that trial
    alone: its rows leave the model, the optimizer, the batch orders and the losses not yet
    reported, mid-epoch, and every other member ends exactly where it would alone."""
    configs = [
        make_config(optimizer=optimizer, lr=lr, seed=s, hidden=[6], epochs=3, batch_size=64)
        for lr, s in ((0.01, 0), (0.02, 1), (0.005, 2))
    ]
    steps = 0

    def skipped():
        nonlocal steps
        steps += 1
        return {"m1"} if steps > 10 else ()  # inside the first epoch (33 steps of 64)

    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    got: dict = {}
    events = list(
        run_population(members, inspect=lambda m: got.setdefault("m", m), skipped=skipped)
    )
    done = {e.run_id: e for e in events if isinstance(e, Finished)}
    assert done["m1"].status == "cancelled" and done["m1"].reason == "skipped"
    assert done["m1"].steps == 10 and done["m1"].test == {}
    assert not [e for e in events if isinstance(e, Progress) and e.run_id == "m1"]
    model = got["m"]
    for k in (0, 2):  # the model kept rows 0 and 2
        single_events, params = single_params(configs[k])
        assert done[f"m{k}"].status == "finished"
        for a, b in zip(
            model.member_parameters(member_row(model, 3, [0, 2], k)), params, strict=True
        ):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        assert done[f"m{k}"].final == pytest.approx(single_events[-1].final, rel=1e-4)
