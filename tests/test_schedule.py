"""Learning-rate schedules and bf16: the same schedule as PyTorch's, in single runs and
populations alike."""

import pytest
import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished
from hypertui.engine.core.grouping import population_key
from hypertui.engine.data.load import load_dataset
from hypertui.engine.training.losses import make_loss
from hypertui.engine.training.models import build_model, build_optimizer
from hypertui.engine.training.population import run_population
from hypertui.engine.training.schedule import lr_factor, planned_steps
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run

CONFIG = make_config(hidden=[6], optimizer="sgd", lr=0.05, epochs=2, batch_size=64, seed=3)


def trained(config):
    got = {}
    events = list(run(config, inspect=lambda m: got.setdefault("m", m)))
    return events[-1], [p.detach() for p in got["m"].parameters()]


@pytest.mark.parametrize("total", [1, 2, 3, 7, 64, 1000])
def test_onecycle_is_torchs_one_cycle_without_momentum_cycling(total):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=1.0, total_steps=total, cycle_momentum=False
    )
    for step in range(total):
        assert lr_factor("onecycle", step, total) == pytest.approx(opt.param_groups[0]["lr"])
        opt.step()
        if step < total - 1:
            sched.step()
    assert lr_factor("constant", 5, total) == 1.0


def test_a_onecycle_run_trains_exactly_like_a_plain_pytorch_loop():
    config = CONFIG.replace(schedule="onecycle")
    data = load_dataset(config, torch.device("cpu"))
    torch.manual_seed(config.seed)
    model = build_model(config)
    opt = build_optimizer(config, model.parameters())
    n, bs = len(data.train), config.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=planned_steps(config.epochs, n, bs), cycle_momentum=False
    )
    gen = torch.Generator().manual_seed(config.seed)
    loss_fn = make_loss(config)
    for _ in range(config.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad()
            loss_fn(model(data.train.x[idx]), data.train.y[idx]).backward()
            opt.step()
            sched.step()
    done, params = trained(config)
    assert done.status == "finished"
    for ours, bare in zip(params, model.parameters(), strict=True):
        torch.testing.assert_close(ours, bare.detach(), rtol=1e-6, atol=1e-7)
    _, constant = trained(CONFIG)
    assert not torch.allclose(constant[0], params[0])  # the schedule changed the training


def test_populations_follow_the_same_schedule():
    configs = [
        CONFIG.replace(schedule="onecycle", optimizer=opt, lr=lr, seed=s)
        for opt, lr, s in (("sgd", 0.05, 0), ("adam", 0.01, 1), ("rmsprop", 0.003, 2))
    ]
    got = {}
    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    events = list(run_population(members, inspect=lambda m: got.setdefault("m", m)))
    assert len({population_key(c) for c in configs}) == 1
    for k, config in enumerate(configs):
        _, params = trained(config)
        for a, b in zip(got["m"].member_parameters(k), params, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert all(e.status == "finished" for e in events if isinstance(e, Finished))


def test_bf16_autocasts_the_forward_pass_and_trains_alone(monkeypatch):
    monkeypatch.setattr(
        "hypertui.engine.training.train.native_bf16", lambda device: True
    )  # emulated here or not
    bf16 = CONFIG.replace(precision="bf16")
    assert population_key(bf16) is None and population_key(CONFIG) is not None
    done16, params16 = trained(bf16)
    done32, params32 = trained(CONFIG)
    assert done16.status == done32.status == "finished"
    assert all(p.dtype == torch.float32 for p in params16)  # the weights stay fp32
    assert done16.final["val_mse"] != done32.final["val_mse"]  # bf16 arithmetic did happen
    assert done16.final["val_mse"] == pytest.approx(done32.final["val_mse"], rel=0.1)


def test_bf16_on_a_cpu_without_native_bf16_trains_in_fp32_and_says_so(monkeypatch):
    monkeypatch.setattr("hypertui.engine.training.train.native_bf16", lambda device: False)
    events = list(run(CONFIG.replace(precision="bf16")))
    assert any("fp32, not bf16" in note for note in events[0].notes)
    assert events[-1].final == list(run(CONFIG))[-1].final  # exactly the fp32 run
