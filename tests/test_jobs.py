"""`--jobs N`: several units at once, each in its own process, the store written by one.

Results equal one unit at a time; units really overlap (seen from the events, not a
clock); a named skip ends one member of a population trained in a child; bad counts are
refused in one line."""

import threading

import pytest

from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.events import Finished, Progress, RunStarted
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.backends import check_backend, make_backend
from hypertui.engine.sweeps.presets import parse_preset, preset_to_toml
from hypertui.engine.sweeps.sweep import LocalBackend, create_sweep, run_sweep

GRID = """
description = "two populations of two"
seeds = 2
[config]
problem = "house"
epochs = {epochs}
batch_size = 256
train_samples = 256
[sweep]
hidden = [[4], [6]]
"""
LONG = 200_000  # epochs no test waits for: it acts mid-way, then cancels


def grid(epochs: int, jobs: str = ""):
    return parse_preset(jobs + GRID.format(epochs=epochs), "grid.toml")


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "runs.sqlite")


def test_two_jobs_train_what_one_trains(store):
    one = create_sweep(store, grid(3))
    two = create_sweep(store, grid(3))
    list(run_sweep(store, one, population=False))
    list(run_sweep(store, two, population=False, backend=LocalBackend(jobs=2)))
    finals = [
        [(r.idx, r.status, r.final, r.epochs_done) for r in store.runs(s)] for s in (one, two)
    ]
    assert finals[0] == finals[1] and len(finals[0]) == 4
    assert all(status == "finished" for _, status, _, _ in finals[1])
    assert store.sweep(two).status == "done"
    for a, b in zip(store.runs(one), store.runs(two), strict=True):  # the curves too
        assert curve(store, a.id) == curve(store, b.id)


def curve(store, run_id):
    return [{k: v for k, v in p.items() if k != "elapsed_s"} for p in store.points(run_id)]


def cancel_after(controls: Controls, seconds: float) -> None:
    """A guard: a broken feature ends in a failed assertion, not a test that hangs."""
    timer = threading.Timer(seconds, controls.cancel)
    timer.daemon = True
    timer.start()


@pytest.mark.slow
def test_units_overlap_and_a_cancel_ends_them_all(store):
    sweep_id = create_sweep(store, grid(LONG))
    controls = Controls()
    cancel_after(controls, 120)
    started, ended_before_both = set(), False
    for item in run_sweep(store, sweep_id, controls, backend=LocalBackend(jobs=2)):
        e = item.event
        if isinstance(e, Finished) and len(started) < 4:
            ended_before_both = True
        if isinstance(e, RunStarted):
            started.add(e.run_id)
            if len(started) == 4:  # both populations train at once: cancel
                controls.cancel()
    assert len(started) == 4 and not ended_before_both
    assert store.sweep(sweep_id).status == "cancelled"
    assert {r.status for r in store.runs(sweep_id)} == {"cancelled"}


@pytest.mark.slow
def test_a_named_skip_ends_one_member_of_a_population_in_a_child(store):
    sweep_id = create_sweep(store, grid(LONG))
    first, second = store.runs(sweep_id)[:2]  # the first population's members
    controls = Controls()
    cancel_after(controls, 120)
    points = {first.id: 0, second.id: 0}
    for item in run_sweep(store, sweep_id, controls, backend=LocalBackend(jobs=2)):
        e = item.event
        if isinstance(e, Progress) and e.run_id in points:
            points[e.run_id] += 1
            if points[first.id] == 1 and first.id not in controls.skip_runs:
                controls.skip_runs.add(first.id)
            if points[second.id] >= points[first.id] + 3:  # it goes on without the first
                controls.cancel()
    runs = {r.id: r for r in store.runs(sweep_id)}
    assert (runs[first.id].status, runs[first.id].reason) == ("cancelled", "skipped")
    assert points[second.id] >= points[first.id] + 3
    assert runs[second.id].reason != "skipped"


@pytest.mark.parametrize("jobs", [0, -1, 65, "2", True, 1.5])
def test_bad_job_counts_are_refused_in_one_line(jobs):
    with pytest.raises(ConfigError, match="1 to 64"):
        check_backend({"jobs": jobs})
    with pytest.raises(ConfigError, match="jobs ="):
        grid(2, f"jobs = {jobs!r}\n".replace("'", '"').replace("True", "true"))


def test_jobs_is_for_the_local_runner_and_a_preset_may_set_it(store):
    with pytest.raises(ConfigError, match="only with the local backend"):
        check_backend({"jobs": 2, "backend": "ray"})
    preset = grid(2, "jobs = 3\n")
    assert parse_preset(preset_to_toml(preset), "again.toml").jobs == 3
    assert store.sweep(create_sweep(store, preset)).options["jobs"] == 3
    asked = create_sweep(store, preset, {"jobs": 2})  # `run --jobs 2` overrides the preset
    assert store.sweep(asked).options["jobs"] == 2
    assert make_backend({"jobs": 3}).jobs == 3
    on_ray = create_sweep(store, preset, {"backend": "ray"})  # the preset's jobs: not for Ray
    assert "jobs" not in store.sweep(on_ray).options
