"""The static-shape population step (engine/training/step.py) trains every member as
today's step does, run eagerly or recorded and replayed as a CUDA graph would be."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Failed, Finished, RunStarted
from hypertui.engine.sweeps.backends import check_backend
from hypertui.engine.training import step
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from tests.fakes import DriftingGraph, FailingGraph, RecordingGraph, write_image_folder

# 2,050 training rows: batches of 48 leave a last one of 34, padded and weighed
HOUSE = {"batch_size": 48, "epochs": 3, "hidden": [8, 8]}


def mixed() -> list:
    """Two activations and four optimizers (the optimizer gathers its rows), momentum,
    weight decay, the onecycle schedule, and a member whose lr makes it diverge."""
    return [
        make_config(
            **HOUSE, activation=act, optimizer=opt, lr=lr, seed=seed, schedule="onecycle",
            momentum=0.9 if opt in ("sgd", "rmsprop") else 0.0,
            weight_decay=1e-3 if opt == "adamw" else 0.0,
        )
        for act, opt, lr, seed in (
            ("relu", "sgd", 0.01, 0), ("relu", "adam", 3e-3, 1), ("relu", "sgd", 400.0, 2),
            ("tanh", "adamw", 3e-3, 0), ("tanh", "rmsprop", 1e-3, 1), ("tanh", "adam", 1e-2, 2),
        )
    ]  # fmt: skip


def leaving() -> list:
    """Members that leave every way: halving's cut, patience, divergence (and a skip,
    below), with the Gaussian likelihood's loss (autograd's backward)."""
    return [
        make_config(
            **{**HOUSE, "epochs": 5}, loss="gaussian_nll", optimizer="adam", lr=lr, seed=seed,
            prune="halving", prune_from=2, prune_eta=2, patience=1, min_delta=1e-3,
        )
        for lr, seed in ((1e-3, 0), (3e-3, 1), (1e-2, 2), (3e-2, 3), (1e3, 4), (1e-4, 5))
    ]  # fmt: skip


def pbt() -> list:
    return [
        make_config(
            **{**HOUSE, "epochs": 4}, schedule="pbt", pbt_interval=1, optimizer="sgd",
            lr=lr, seed=seed, momentum=0.0,
        )
        for lr, seed in ((1e-3, 0), (3e-3, 1), (1e-2, 2), (3e-2, 3))
    ]  # fmt: skip


def cnn(tmp_path) -> list:
    write_image_folder(tmp_path / "imgs")
    common = {"problem": "images", "path": str(tmp_path / "imgs"), "image_size": 16}
    return [
        make_config(
            **common, channels=[4, 8], batch_size=12, epochs=4, prune="halving", prune_from=2,
            activation=act, optimizer=opt, lr=lr, seed=seed,
        )
        for act, opt, lr, seed in (
            ("relu", "sgd", 0.03, 0), ("relu", "adam", 1e-3, 1), ("tanh", "adam", 3e-3, 0),
            ("tanh", "sgd", 1e-3, 1),
        )
    ]  # fmt: skip


def train(monkeypatch, configs, mode, graph=RecordingGraph, skip_at=None) -> list:
    """Every event of a population of `configs` trained with step `mode`; `skip_at`
    (step, run) names a member a viewer skips after that many steps."""
    monkeypatch.setenv("HYPERTUI_STEP", mode)
    monkeypatch.setattr(step, "new_graph", graph)
    # reports at epochs' ends only: an epoch slowed past REPORT_EVERY_S on a busy machine
    # (the recorder replays in Python) would add an interval report to one run of the two
    monkeypatch.setattr("hypertui.engine.training.clock.REPORT_EVERY_S", 3600.0)
    calls = 0

    def skipped():
        nonlocal calls
        calls += 1
        return {skip_at[1]} if skip_at and calls > skip_at[0] else ()

    members = [Member(f"m{i}", c) for i, c in enumerate(configs)]
    return list(run_population(members, skipped=skipped))


TIMES = {"elapsed_s", "wall_s", "env"}


def plain(event) -> dict:
    """An event as data, without what a clock decides."""
    return {k: v for k, v in dataclasses.asdict(event).items() if k not in TIMES}


def assert_close(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        rel = 2e-4 if ".analysis." in where else 2e-5  # predictions: 5 significant digits
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)
        assert same, f"{where}: {a} != {b}"
    else:
        assert a == b, where


def assert_same_runs(got: list, want: list) -> None:
    """Every member's events, in order, equal (numbers within float tolerance)."""
    assert [type(e) for e in got] == [type(e) for e in want]
    for g, w in zip(got, want, strict=True):
        assert_close(plain(g), plain(w), f"{type(g).__name__} {g.run_id}")


@pytest.mark.parametrize("mode", ["static", "graph"])
@pytest.mark.parametrize("case", [mixed, pbt])
def test_the_static_step_trains_every_member_as_todays_step(monkeypatch, case, mode):
    want = train(monkeypatch, case(), "eager")
    got = train(monkeypatch, case(), mode)
    assert_same_runs(got, want)
    done = {e.run_id: e for e in got if isinstance(e, Finished)}
    assert done["m2"].status == ("diverged" if case is mixed else "finished")
    started = [e for e in got if isinstance(e, RunStarted)]
    assert {e.env["step"] for e in started} == {step.DESCRIBE[mode]}


@pytest.mark.parametrize("mode", ["static", "graph"])
def test_members_that_leave_stay_frozen_rows_and_the_rest_train_as_today(monkeypatch, mode):
    want = train(monkeypatch, leaving(), "eager", skip_at=(50, "m5"))
    RecordingGraph.captures = 0
    got = train(monkeypatch, leaving(), mode, skip_at=(50, "m5"))
    assert_same_runs(got, want)
    ends = {e.run_id: e.status for e in got if isinstance(e, Finished)}
    assert {"pruned", "diverged", "cancelled", "finished"} <= set(ends.values()), ends
    if mode == "graph":  # halving, skips and divergence keep the step's shape
        assert RecordingGraph.captures == 1


def test_cnn_members_train_with_the_static_step_as_today(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    configs = cnn(tmp_path)
    want = train(monkeypatch, configs, "eager")
    assert_same_runs(train(monkeypatch, configs, "graph"), want)
    # an MLP classifier trained on MSE against one-hot targets (the study's loss check)
    mlp = [dataclasses.replace(c, model="mlp", hidden=(16,), loss="mse") for c in configs]
    want = train(monkeypatch, mlp, "eager")
    got = train(monkeypatch, mlp, "graph")
    assert_same_runs(got, want)
    assert not any(e.notes for e in got if isinstance(e, Finished))


@pytest.mark.parametrize(
    ("graph", "why"),
    [
        (FailingGraph, "the step could not be recorded (RuntimeError: operation not permitted"),
        (DriftingGraph, "a replay of the recorded step differed from the same step run eagerly"),
    ],
)
def test_a_step_that_cannot_be_recorded_trains_eagerly_and_says_so(monkeypatch, graph, why):
    want = train(monkeypatch, mixed(), "eager")
    got = train(monkeypatch, mixed(), "graph", graph=graph)
    for event in got:
        if isinstance(event, Finished):
            assert len(event.notes) == 1 and why in event.notes[0]
    strip = [dataclasses.replace(e, notes=()) if isinstance(e, Finished) else e for e in got]
    assert_same_runs(strip, want)


def test_graphs_need_cuda_and_an_unknown_step_is_refused(monkeypatch):
    monkeypatch.setenv("HYPERTUI_STEP", "graph")
    members = [Member("m0", make_config(**{**HOUSE, "epochs": 1}))]
    ends = [e for e in run_population(members) if isinstance(e, Finished)]
    assert ends[0].status == "finished"
    assert "no CUDA graph (RuntimeError: CUDA graphs need a CUDA device" in ends[0].notes[0]
    monkeypatch.setenv("HYPERTUI_STEP", "fast")
    with pytest.raises(HypertuiError, match=r"\$HYPERTUI_STEP = 'fast': use one of eager"):
        list(run_population(members))
    with pytest.raises(HypertuiError, match="HYPERTUI_STEP"):  # `hypertui run` asks first
        check_backend({})
    monkeypatch.delenv("HYPERTUI_STEP")
    assert step.step_mode(torch.device("cpu")) == "eager"
    assert step.step_mode(torch.device("cuda", 0)) == "graph"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_recorded_step_trains_as_the_eager_one(monkeypatch):
    """bench/gpu.sh runs this on a lent GPU: the real CUDA graph, no notes."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    configs = [dataclasses.replace(c, device="cuda") for c in mixed()]
    want = train(monkeypatch, configs, "eager")
    got = train(monkeypatch, configs, "graph", graph=step.CudaGraph)
    assert_same_runs(got, want)
    assert not any(e.notes for e in got if isinstance(e, Finished))
    configs = [dataclasses.replace(c, device="cuda") for c in leaving()]
    want = train(monkeypatch, configs, "eager", skip_at=(50, "m5"))
    got = train(monkeypatch, configs, "graph", graph=step.CudaGraph, skip_at=(50, "m5"))
    assert_same_runs(got, want)
    assert not any(e.notes for e in got if isinstance(e, Finished))


def test_no_room_to_check_a_recorded_step_trains_eagerly_and_says_so(monkeypatch):
    def no_room(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 MiB")

    want = train(monkeypatch, mixed(), "eager")
    monkeypatch.setattr(step.PopulationStep, "_state", no_room)
    got = train(monkeypatch, mixed(), "graph")
    notes = {e.notes for e in got if isinstance(e, Finished)}
    assert notes == {("trained with the static-shape step run eagerly: no memory left to "
                      "check the recorded step against the eager one",)}  # fmt: skip
    strip = [dataclasses.replace(e, notes=()) if isinstance(e, Finished) else e for e in got]
    assert_same_runs(strip, want)


def test_a_population_out_of_memory_mid_run_fails_each_member_in_one_line(monkeypatch):
    """A GPU's memory taken by another job mid-run (--jobs): the population's trials fail
    with a line that says what to change; nothing is raised."""
    calls = 0
    real = step.PopulationStep.__call__

    def short_of_memory(self, *args):
        nonlocal calls
        calls += 1
        if calls > 50:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return real(self, *args)

    monkeypatch.setattr(step.PopulationStep, "__call__", short_of_memory)
    events = train(monkeypatch, mixed(), "eager")
    failed = [e for e in events if isinstance(e, Failed)]
    diverged = [e for e in events if isinstance(e, Finished)]  # at step 43: it keeps that
    assert [e.run_id for e in diverged] == ["m2"] and diverged[0].status == "diverged"
    assert sorted(e.run_id for e in failed) == ["m0", "m1", "m3", "m4", "m5"]
    assert {e.reason for e in failed} == {
        "out of memory on cpu while training (CUDA out of memory. Tried to allocate 20.00 "
        "MiB): fewer --jobs on the device, or a smaller population or batch, would fit"
    }
