"""Models too big to build are refused or fail with a reason, never an OOM traceback."""

import numpy as np
import pytest

from hypertui.engine.core import memory
from hypertui.engine.core.config import make_config
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.events import Failed, Finished, RunStarted
from hypertui.engine.data.sources import checked_config
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps import sweep
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep
from hypertui.engine.training import devices
from hypertui.engine.training.models import build_model, count_parameters
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run
from tests.fakes import write_image_folder


@pytest.mark.parametrize(
    "values",
    [
        {"hidden": [8]},
        {"hidden": [64, 32], "loss": "gaussian_nll"},
        {"problem": "mnist", "model": "mlp", "hidden": [128]},
        {"problem": "mnist", "channels": [16, 32, 64, 128]},
        {"problem": "mnist", "channels": [8]},
    ],
)
def test_the_parameter_count_matches_the_built_model(values):
    config = make_config(values)
    assert memory.parameters(config) == count_parameters(build_model(config))


def test_a_model_past_the_limit_is_refused_when_the_config_is_made():
    with pytest.raises(ConfigError, match="10,000,600,001 parameters"):
        make_config(hidden=[100000, 100000])


def test_a_run_that_does_not_fit_fails_with_the_estimate_before_building(monkeypatch):
    monkeypatch.setattr(devices, "available_bytes", lambda device: 1000)
    events = list(run(make_config(hidden=[8], epochs=1), run_id="r1"))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert "not enough memory" in events[0].reason and "GiB" in events[0].reason


def test_a_population_that_does_not_fit_fails_every_member(monkeypatch):
    monkeypatch.setattr(devices, "available_bytes", lambda device: 1000)
    members = [Member(f"m{i}", make_config(hidden=[8], epochs=1, seed=i)) for i in range(3)]
    events = list(run_population(members))
    assert [type(e) for e in events] == [Failed] * 3
    assert "3 members need" in events[0].reason


def test_a_population_counts_its_members_but_one_evaluation_chunk():
    # A population evaluates EVAL_ELEMENTS floats at a time whatever its size: 64 study
    # CNNs need about 0.5 GiB, not 64 single runs' 12 GiB (128 would have been refused on
    # a 24 GiB machine).
    cnn = make_config(problem="mnist", model="cnn", time_budget_s=None, batch_size=32)
    one, many = memory.estimate_bytes(cnn), memory.estimate_bytes(cnn, members=64)
    assert many < 2**30 < 64 * one
    assert memory.estimate_bytes(cnn, members=128) > many  # each member's weights and batch


def test_an_image_folders_size_counts_in_the_estimate(tmp_path):
    # The estimate reads no image: image_size counts, with 3 channels at most.
    write_image_folder(tmp_path)
    small, large = (
        make_config(problem="images", path=str(tmp_path), image_size=side, time_budget_s=None)
        for side in (28, 224)
    )
    assert memory.estimate_bytes(large) > 50 * memory.estimate_bytes(small)
    mnist = make_config(problem="mnist", model="cnn", time_budget_s=None)
    assert memory.estimate_bytes(small) > memory.estimate_bytes(mnist)  # RGB


def test_a_sweep_splits_cnn_populations_at_max_cnn_members(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    preset = parse_preset(
        """
        description = "many CNN seeds"
        seeds = 70
        [config]
        problem = "mnist"
        model = "cnn"
        time_budget_s = "none"
        [sweep]
        lr = [0.1]
        """,
        "cnn.toml",
    )
    rows = store.runs(create_sweep(store, preset))
    assert [len(b) for b in sweep._batches(rows, population=True)] == [64, 6]


def test_a_population_too_big_for_the_device_trains_in_parts_that_fit(monkeypatch):
    config = make_config(hidden=[8], epochs=1)
    fits_two = memory.estimate_bytes(config, members=2)
    monkeypatch.setattr(devices, "available_bytes", lambda device: fits_two)
    members = [Member(f"m{i}", config.replace(seed=i)) for i in range(4)]
    sizes = []
    events = list(run_population(members, inspect=lambda model: sizes.append(model.size)))
    assert sizes == [2, 2]
    done = [e for e in events if isinstance(e, Finished)]
    assert sorted(e.run_id for e in done) == ["m0", "m1", "m2", "m3"]
    assert {e.status for e in done} == {"finished"}


def test_a_run_that_fits_starts(monkeypatch):
    monkeypatch.setattr(devices, "available_bytes", lambda device: 10**12)
    first = next(iter(run(make_config(hidden=[8], epochs=1))))
    assert isinstance(first, RunStarted)


@pytest.mark.parametrize("population", [False, True], ids=["single", "population"])
def test_a_batch_past_the_tables_size_is_estimated_at_that_size(tmp_path, monkeypatch, population):
    # batch_size 4096 on a 300-row table trains on batches of its 210 training rows: a
    # device with room for 300 rows must not refuse it for 4096 rows' activations.
    values = np.random.default_rng(0).normal(size=300)
    (tmp_path / "t.csv").write_text("a,y\n" + "".join(f"{a},{2 * a}\n" for a in values))
    config = checked_config(
        problem="table", path=str(tmp_path / "t.csv"), target="y", hidden=[2048],
        batch_size=4096, epochs=1, time_budget_s=None,
    )  # fmt: skip
    room = memory.estimate_bytes(config.replace(batch_size=300))
    monkeypatch.setattr(devices, "available_bytes", lambda device: room)
    if population:
        events = list(run_population([Member("r1", config)]))
    else:
        events = list(run(config, run_id="r1"))
    assert isinstance(events[-1], Finished), events[-1]
