"""PBT inside a population: exploit copies rows and state, explore perturbs by Ray's factors."""

from __future__ import annotations

import random

import pytest
import torch

from hypertui.engine.core.config import make_config, parse_value
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.events import Finished
from hypertui.engine.core.grouping import check_pbt
from hypertui.engine.training import pbt
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member, stacked_model
from hypertui.engine.training.stacked_optimizer import StackedOptimizer


def tiny(configs):
    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    model = stacked_model(members, torch.device("cpu"))
    opt = StackedOptimizer(model, configs)
    for g in opt.groups:  # optimizer state that differs row by row
        g.s1.copy_(torch.randn_like(g.s1))
        g.s2.copy_(torch.rand_like(g.s2))
    return model, opt


def pool_of(configs):
    pool: dict = {}
    for c in configs:
        for name in ("lr", "momentum", "weight_decay"):
            pool.setdefault(c.optimizer, {}).setdefault(name, []).append(getattr(c, name))
    return pool


@pytest.mark.parametrize("optimizers", [["sgd"] * 8, ["sgd", "adam"] * 4])
def test_the_bottom_copies_rows_and_state_of_the_top_and_perturbs_by_the_factors(optimizers):
    """Also with one optimizer's members apart (the optimizer's own row order)."""
    configs = [
        make_config(optimizer=o, lr=0.01 * (i + 1), momentum=0.5 if o == "sgd" else 0.0, seed=i)
        for i, o in enumerate(optimizers)
    ]
    model, opt = tiny(configs)
    before = model.flat.clone()
    state = [opt.member_state(r) for r in range(8)]
    hyper = [opt.member_hyperparameters(r) for r in range(8)]
    scores = [float(i) for i in range(8)]  # val_mse: rows 0, 1 best; rows 6, 7 worst
    kinds = [(c.activation, c.optimizer) for c in configs]
    done = pbt.exploit_explore(
        model, opt, scores, kinds, False, 0.25, pool_of(configs), random.Random(0)
    )
    assert sorted(e.row for e in done) == [6, 7]
    for e in done:
        assert e.source in (0, 1)
        torch.testing.assert_close(model.flat[e.row], before[e.source], rtol=0, atol=0)
        now = opt.member_state(e.row)
        for key in ("opt.s1", "opt.s2"):
            torch.testing.assert_close(now[key], state[e.source][key], rtol=0, atol=0)
        got = opt.member_hyperparameters(e.row)
        for name in ("lr", "momentum", "weight_decay"):
            source = hyper[e.source][name]
            pool = pool_of(configs)[configs[e.row].optimizer][name]
            allowed = [source * f for f in pbt.FACTORS] + pool
            assert any(got[name] == pytest.approx(a, rel=1e-6) for a in allowed), name
    for r in range(6):  # the rest keep their rows, state and values
        torch.testing.assert_close(model.flat[r], before[r], rtol=0, atol=0)
        assert opt.member_hyperparameters(r) == hyper[r]


def test_perturb_multiplies_or_resamples_and_leaves_adams_momentum():
    rng = random.Random(1)
    pool = {"lr": [0.5], "momentum": [0.0], "weight_decay": [0.0]}
    seen = set()
    for _ in range(200):
        out = pbt.perturb({"lr": 1.0, "momentum": 0.3, "weight_decay": 0.0}, "adam", pool, rng)
        assert out["momentum"] == 0.3
        seen.add(round(out["lr"], 6))
    assert seen == {0.8, 1.2, 0.5}
    values = {"lr": 1.0, "momentum": 0.3, "weight_decay": 0.1}
    only_wd = pbt.perturb(values, "sgd", pool, rng, ("weight_decay",))
    assert only_wd["lr"] == 1.0 and only_wd["momentum"] == 0.3 and only_wd["weight_decay"] != 0.1


def test_members_copy_only_from_the_same_activation_and_optimizer():
    configs = [
        make_config(activation=a, optimizer=o, lr=0.01, seed=i)
        for i, (a, o) in enumerate(
            [("relu", "sgd"), ("relu", "sgd"), ("tanh", "sgd"), ("tanh", "sgd")]
            + [("relu", "adam"), ("relu", "adam"), ("relu", "adam"), ("relu", "adam")]
        )
    ]
    model, opt = tiny(configs)
    kinds = [(c.activation, c.optimizer) for c in configs]
    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    done = pbt.exploit_explore(
        model, opt, scores, kinds, False, 0.25, pool_of(configs), random.Random(0)
    )
    assert {(e.row, e.source) for e in done} == {(1, 0), (3, 2), (7, 4)}
    nan = [float("nan")] * 7 + [1.0]  # no candidates (diverged): nothing moves
    assert pbt.plan(nan, kinds, False, 0.25, random.Random(0)) == []


def test_the_same_seeds_draw_the_same_lineage():
    kinds = [("relu", "sgd")] * 16
    scores = [float(i) for i in range(16)]
    a = pbt.plan(scores, kinds, False, 0.25, pbt.draws([0, 1], 4))
    assert a == pbt.plan(scores, kinds, False, 0.25, pbt.draws([1, 0], 4))
    assert pbt.quantile_size(4, 0.25) == 1 and pbt.quantile_size(3, 0.5) == 1


def test_pbt_with_one_member_or_training_alone_is_refused_in_one_line():
    one = make_config(schedule="pbt").to_dict()
    with pytest.raises(ConfigError, match="at least 2 members") as info:
        check_pbt([one])
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="train alone"):
        check_pbt([make_config(schedule="pbt", precision="bf16").to_dict()] * 2)
    check_pbt([one, {**one, "lr": 0.01}])  # two members: fine
    with pytest.raises(ConfigError, match="tanh with rmsprop has 1"):  # copies from no one
        check_pbt([one, {**one, "lr": 0.01}, {**one, "activation": "tanh"}])
    with pytest.raises(ConfigError, match="pbt_quantile"):
        make_config(schedule="pbt", pbt_quantile=0.9)
    with pytest.raises(ConfigError, match="batch_size cannot be perturbed"):
        make_config(schedule="pbt", pbt_fields=["lr", "batch_size"])
    assert parse_value("pbt_fields", "lr,momentum") == ("lr", "momentum")
    with pytest.raises(ConfigError, match="name at least one"):
        parse_value("pbt_fields", "[]")


def test_a_tiny_pbt_population_records_its_lineage_and_schedule():
    base = {"epochs": 4, "train_samples": 60, "batch_size": 20, "schedule": "pbt"}
    configs = [make_config(base, lr=lr, pbt_interval=1, seed=0) for lr in (1e-4, 1e-3, 1e-2, 3e-2)]
    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    done = [e for e in run_population(members) if isinstance(e, Finished)]
    lineages = [e.analysis["pbt_lineage"] for e in done]
    assert sum(len(x) for x in lineages) == 3  # one copy an epoch, epochs 1-3
    for e in done:
        schedule = e.analysis["pbt_schedule"]
        assert schedule[0][0] == 0 and [s[0] for s in schedule] == sorted(s[0] for s in schedule)
    again = [e for e in run_population(members) if isinstance(e, Finished)]
    assert [e.analysis for e in again] == [e.analysis for e in done]


RESUME = """
description = "pbt resume"
[config]
problem = "house"
hidden = [8]
batch_size = 64
optimizer = "adam"
epochs = 6
save_every = 2
schedule = "pbt"
pbt_interval = 1
[sweep]
lr = [0.03, 0.01, 0.003, 0.001]
"""


def test_a_pbt_population_resumed_mid_way_restores_its_perturbed_values(tmp_path):
    from hypertui.engine.store.store import Store
    from hypertui.engine.sweeps.presets import parse_preset
    from tests.fakes import whole_and_resumed

    store = Store(tmp_path / "s.sqlite")
    whole, cut = whole_and_resumed(store, parse_preset(RESUME, "p.toml"), cut_at_epoch=3)
    a, b = store.runs(whole), store.runs(cut)
    assert all(r.status == "finished" for r in b)
    assert any(r.analysis["pbt_lineage"] for r in b)
    for x, y in zip(a, b, strict=True):
        assert "resumed from its checkpoint after epoch 2" in y.env["notes"]
        assert x.final == y.final and x.test == y.test
        assert x.analysis["pbt_schedule"] == y.analysis["pbt_schedule"]
        lineage = [
            {**c, "from": a[[r.id for r in a].index(c["from"])].idx}
            for c in x.analysis["pbt_lineage"]
        ]
        assert lineage == [
            {**c, "from": b[[r.id for r in b].index(c["from"])].idx}
            for c in y.analysis["pbt_lineage"]
        ]
