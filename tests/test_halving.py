"""Successive halving inside a population: who is stopped, what survivors compute, replay."""

from __future__ import annotations

import math

import pytest
import torch

from hypertui.engine.core import halving
from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished, Progress
from hypertui.engine.core.grouping import population_key
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run
from tests.fakes import member_row

LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)  # six configs; the larger lrs learn faster


def test_rungs_are_powers_of_eta_below_the_last_epoch():
    assert halving.rungs(200) == [1, 3, 9, 27, 81]
    assert halving.rungs(4) == [1, 3]
    assert halving.rungs(1) == []


def test_survivors_are_the_best_third_by_mean_over_seeds_diverged_last():
    scores = {"a": [1.0, 3.0], "b": [2.5, 2.4], "c": [0.1, math.nan], "d": [math.nan]}
    # means: a 2.0, b 2.45; c and d have a diverged seed: after both, whatever c's other seed
    assert halving.survivors(scores, higher=False) == {"a", "b"}
    assert halving.survivors(scores, higher=True) == {"b", "a"}
    assert halving.survivors({"d": [math.nan], "a": [5.0]}, higher=False) == {"a"}


def configs(prune: str, epochs: int = 4):
    return [
        make_config(lr=lr, seed=seed, hidden=[8], batch_size=64, epochs=epochs, prune=prune)
        for lr in LRS
        for seed in (0, 1)
    ]


def run_members(cs):
    got: dict = {}
    members = [Member(f"m{i}", c) for i, c in enumerate(cs)]
    events = list(run_population(members, inspect=lambda m: got.setdefault("m", m)))
    return events, got["m"]


def test_halving_stops_all_but_the_best_configs_and_survivors_train_as_alone():
    cs = configs("halving")
    events, model = run_members(cs)
    done = {e.run_id: e for e in events if isinstance(e, Finished)}
    status = [done[f"m{i}"].status for i in range(len(cs))]
    # 6 configs -> 2 after epoch 1 -> 1 after epoch 3; both seeds of a config go together
    assert status.count("pruned") == 10 and status.count("finished") == 2
    survivors = [i for i, s in enumerate(status) if s == "finished"]
    assert cs[survivors[0]].lr == cs[survivors[1]].lr
    stopped = sorted(done[f"m{i}"].epochs_done for i, s in enumerate(status) if s == "pruned")
    assert stopped == [1.0] * 8 + [3.0] * 2
    # The survivors are what a full run ranks best at epoch 1, mean over seeds.
    full_events, _ = run_members(configs("none"))
    at_1 = {
        e.run_id: e.metrics["val_mse"]
        for e in full_events
        if isinstance(e, Progress) and e.epoch == 1 and e.end_of_epoch
    }
    means = {lr: (at_1[f"m{2 * j}"] + at_1[f"m{2 * j + 1}"]) / 2 for j, lr in enumerate(LRS)}
    assert set(sorted(means, key=means.get)[:2]) >= {cs[survivors[0]].lr}
    # Curves are kept up to the rung, and nothing is reported after it.
    for i, s in enumerate(status):
        points = [e for e in events if isinstance(e, Progress) and e.run_id == f"m{i}"]
        assert points and max(p.epoch for p in points) == done[f"m{i}"].epochs_done
        assert done[f"m{i}"].final and (s == "finished") == bool(done[f"m{i}"].test)
    # Stopped members left the stacked model (or stayed frozen rows, with the static-shape
    # step); the two left are the same runs as alone.
    assert model.flat.shape[0] in (2, len(cs))
    for i in survivors:
        single: dict = {}
        single_events = list(
            run(cs[i], inspect=lambda m, got=single: got.setdefault("p", list(m.parameters())))
        )
        row = member_row(model, len(cs), survivors, i)
        for a, b in zip(model.member_parameters(row), single["p"], strict=True):
            torch.testing.assert_close(a, b.detach(), rtol=1e-4, atol=1e-5)
        assert done[f"m{i}"].final["val_mse"] == pytest.approx(
            single_events[-1].final["val_mse"], rel=1e-4
        )


def test_without_prune_every_member_trains_every_epoch():
    events, model = run_members(configs("none", epochs=3))
    assert {e.status for e in events if isinstance(e, Finished)} == {"finished"}
    assert model.flat.shape[0] == 12


SWEEP = """
description = "halving in a sweep"
seeds = 2
[config]
hidden = [8]
batch_size = 64
epochs = 4
prune = "{prune}"
prune_from = {first}
prune_eta = {eta}
[sweep]
lr = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
"""


def sweep_trials(store, sweep_id):
    return halving.trials_from_store(
        store, sweep_id, lambda c: population_key(make_config(c)) or "alone"
    )


# 12 trials x 4 epochs in full. Rungs 1, 3 keeping a third: 8 x 1 + 2 x 3 + 2 x 4 = 22.
# One rung at 2 keeping half (2 x 2 = 4 is the last epoch): 6 x 2 + 6 x 4 = 36.
@pytest.mark.parametrize(
    "first, eta, n_pruned, halved", [(1, 3, 10, 22), (2, 2, 6, 36)], ids=["default", "from-2-eta-2"]
)
def test_a_halving_sweep_stores_pruned_runs_and_replay_predicts_them(
    tmp_path, first, eta, n_pruned, halved
):
    store = Store(tmp_path / "s.sqlite")
    text = SWEEP.format(prune="halving", first=first, eta=eta)
    live = create_sweep(store, parse_preset(text, "live"))
    list(run_sweep(store, live))
    runs = store.runs(live)
    assert sorted(r.status for r in runs).count("pruned") == n_pruned
    assert all(store.points(r.id) for r in runs)  # curves kept
    assert store.sweep(live).status == "done" and not store.sweep(live).resumable

    full = create_sweep(store, parse_preset(SWEEP.format(prune="none", first=1, eta=3), "full"))
    list(run_sweep(store, full))
    result = halving.replay(sweep_trials(store, full), 4, False, eta, first)
    predicted = {(r.config["lr"], r.seed): result.stopped_at.get(r.id) for r in store.runs(full)}
    observed = {
        (r.config["lr"], r.seed): (int(r.epochs_done) if r.status == "pruned" else None)
        for r in runs
    }
    assert predicted == observed
    assert result.model_epochs_full == 48 and result.model_epochs_halving == halved
    assert result.saving == pytest.approx(48 / halved)
    assert result.best_survived == (
        result.stopped_at.keys().isdisjoint(
            {r.id for r in store.runs(full) if halving.config_key(r.config) == result.best_config}
        )
    )


def test_replay_reports_a_best_config_that_halving_would_have_stopped():
    def trial(name, config, seed, scores):
        return halving.Trial(name, "pop", config, seed, 9.0, scores)

    # 'late' is worst at epochs 1 and 3 but best at the end: halving loses it.
    trials = [
        trial(f"{c}{s}", c, s, {1: a, 3: b, 9: z})
        for c, (a, b, z) in {
            "late": (9.0, 9.0, 0.1),
            "x": (1.0, 1.0, 1.0),
            "y": (2.0, 2.0, 2.0),
        }.items()
        for s in (0, 1)
    ]
    result = halving.replay(trials, epochs=9, higher=False)
    assert result.best_config == "late" and not result.best_survived
    assert result.best_score == 0.1 and result.survivor_score == 1.0  # what halving kept: x
    assert result.stopped_at == {"late0": 1, "late1": 1, "y0": 1, "y1": 1}
    assert result.model_epochs_halving == 4 * 1 + 2 * 9
    assert [len(g) for g in halving.split_by_seed(trials, 1)] == [3, 3]


def test_cli_replay_reports_savings_and_refuses_a_halving_sweep(tmp_path, capsys):
    from hypertui.tui.cli.main import main

    store_path = tmp_path / "runs.sqlite"
    for prune in ("none", "halving"):
        preset = tmp_path / f"{prune}.toml"
        preset.write_text(SWEEP.format(prune=prune, first=1, eta=3))
        assert main(["--store", str(store_path), "run", str(preset), "--json"]) == 0
    capsys.readouterr()
    store = Store(store_path)
    live = next(s.id for s in store.sweeps() if s.preset == "halving")
    full = next(s.id for s in store.sweeps() if s.preset == "none")

    assert (
        main(["--store", str(store_path), "replay-halving", full, "--seeds-per-replay", "1"]) == 0
    )
    out = capsys.readouterr().out.replace("\n", " ")
    assert "stopped 8 at epoch 1, 2 at epoch 3" in out and "model-epochs 48 -> 22" in out
    assert "per-seed replays" in out and out.count("seeds [") == 3
    args = ["--store", str(store_path), "replay-halving", full, "--from", "2", "--eta", "2"]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "halving at epochs 2, keeping the best 1/2" in out and "48 -> 36" in out
    assert main([*args[:-1], "1"]) == 2  # eta 1 would keep everything
    assert "--eta at least 2" in capsys.readouterr().err

    assert main(["--store", str(store_path), "replay-halving", live]) == 2
    assert "already ran with halving" in capsys.readouterr().err


def test_a_config_with_a_diverged_seed_ranks_as_diverged_in_halving_as_in_analysis():
    # One policy (engine/core/ranking.py): c's other seed is its best run, but c diverged
    # once; halving kept it as best (the NaN left out) while the analysis counted the same
    # run at the worst value of the sweep.
    from hypertui.engine.analysis.compare import compare
    from hypertui.engine.analysis.importance import analyze
    from tests.test_analysis import fake_run

    scores = {"a": [0.3, 0.3], "b": [0.25, 0.25], "c": [0.1, math.nan]}
    assert halving.survivors(scores, higher=False) == {"b"}
    runs = []
    for name, values in scores.items():
        for seed, v in enumerate(values):
            status = "finished" if math.isfinite(v) else "diverged"
            runs.append(
                fake_run(
                    len(runs), {"act": name}, seed, v if status == "finished" else None, status
                )
            )
    top = analyze(runs, ["act"], "house").top
    assert [t.point["act"] for t in top] == ["b", "a", "c"]
    assert [g.point["act"] for g in compare(runs, ["act"], "house").groups] == ["b", "a", "c"]
