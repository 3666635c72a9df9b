"""Search that learns: a batch-TPE sweep asks, records and trains its trials a batch at a
time, resumes with the same next batch, and is refused clearly without Optuna."""

import subprocess
import sys

import pytest

from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import ConfigError, HypertuiError
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps import search
from hypertui.engine.sweeps.presets import parse_preset, preset_to_toml
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep

pytest.importorskip("optuna")

TPE = """
description = "tiny batch TPE"
search = "tpe"
trials = 6
batch = 3
sweep_seed = 7
[config]
problem = "house"
hidden = [4]
batch_size = 128
epochs = 2
train_samples = 256
[sweep]
lr = { log_uniform = [1e-4, 1e-1] }
activation = ["relu", "tanh"]
optimizer = ["sgd", "adam"]
"""


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "runs.sqlite")


def points(store, sweep_id):
    return [r.point for r in sorted(store.runs(sweep_id), key=lambda r: r.idx)]


def test_batches_are_asked_recorded_and_trained(store):
    preset = parse_preset(TPE, "tpe.toml")
    assert parse_preset(preset_to_toml(preset), "again.toml") == parse_preset(
        preset_to_toml(preset), "again.toml"
    )
    sweep_id = create_sweep(store, preset)
    assert store.sweep(sweep_id).n_runs == 0  # nothing stored up front
    events = list(run_sweep(store, sweep_id))
    runs = store.runs(sweep_id)
    assert len(runs) == 6 and all(r.status == "finished" for r in runs)
    assert store.sweep(sweep_id).status == "done"
    assert {e.n_trials for e in events} == {6}  # the runs to come counted from the start
    for p in points(store, sweep_id):
        assert 1e-4 <= p["lr"] <= 1e-1 and p["activation"] in ("relu", "tanh")


def test_a_stopped_sweep_resumes_with_the_same_next_batch(store, tmp_path):
    preset = parse_preset(TPE, "tpe.toml")
    whole = create_sweep(store, preset)
    list(run_sweep(store, whole))
    stopped = create_sweep(store, preset)
    controls = Controls()
    for item in run_sweep(store, stopped, controls):
        if item.trial == 1:
            controls.stop.set()  # mid-way through the first batch
    assert store.sweep(stopped).status == "cancelled"
    assert len(store.runs(stopped)) == 3
    list(run_sweep(store, stopped))  # resume: the first batch's rest, then the second
    assert store.sweep(stopped).status == "done"
    # the same seed, the same history: the same configs, resumed or not
    assert points(store, stopped) == points(store, whole)


def test_a_sweep_stopped_between_batches_is_resumable_and_counts_its_trials(store):
    """All it stored is done, yet it is not: its next batches were never asked."""
    from hypertui.engine.core.events import Finished

    sweep_id = create_sweep(store, parse_preset(TPE, "tpe.toml"))
    controls = Controls()
    for item in run_sweep(store, sweep_id, controls):
        if isinstance(item.event, Finished) and store.sweep(sweep_id).n_done == 3:
            controls.stop.set()  # the first batch has ended: no second is asked
    sweep = store.sweep(sweep_id)
    assert (sweep.n_done, sweep.n_runs, sweep.n_planned) == (3, 3, 6)
    assert sweep.status == "cancelled" and sweep.resumable
    list(run_sweep(store, sweep_id))
    assert store.sweep(sweep_id).status == "done" and len(store.runs(sweep_id)) == 6


def test_refusals_are_one_line():
    with pytest.raises(ConfigError, match="search = 'bayes'.*one of random, tpe, gp"):
        parse_preset(TPE.replace('"tpe"', '"bayes"'), "t.toml")
    with pytest.raises(ConfigError, match="needs trials"):
        parse_preset(TPE.replace("trials = 6\n", ""), "t.toml")
    with pytest.raises(ConfigError, match="gp.*activation, optimizer"):
        parse_preset(TPE.replace('"tpe"', '"gp"'), "t.toml")
    with pytest.raises(ConfigError, match="batch counts"):
        parse_preset(TPE.replace('search = "tpe"\n', ""), "t.toml")


def test_without_optuna_the_message_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    with pytest.raises(HypertuiError, match=r'pip install "hypertui\[tpe\]"') as exc:
        search.optuna()
    assert "\n" not in str(exc.value)


@pytest.mark.slow
def test_a_random_sweep_imports_no_optuna(tmp_path):
    plain = TPE.replace('search = "tpe"', "").replace("batch = 3", "")
    code = (
        "import sys\n"
        "from hypertui.engine.store.store import Store\n"
        "from hypertui.engine.sweeps.presets import parse_preset\n"
        "from hypertui.engine.sweeps.sweep import create_sweep, run_sweep\n"
        f"p = parse_preset({plain!r}, 't')\n"
        f"s = Store({str(tmp_path / 'r.sqlite')!r})\n"
        "list(run_sweep(s, create_sweep(s, p)))\n"
        "assert 'optuna' not in sys.modules, 'optuna imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_several_objectives_search_their_front(store):
    text = TPE.replace('search = "tpe"', 'search = "tpe"\nobjectives = ["val_mse", "train_s"]')
    preset = parse_preset(
        text.replace("trials = 6", "trials = 4").replace("batch = 3", "batch = 2"), "t"
    )
    assert search.goal(preset) == (["val_mse", "train_s"], ["minimize", "minimize"])
    sweep_id = create_sweep(store, preset)
    list(run_sweep(store, sweep_id))
    runs = store.runs(sweep_id)
    state, values = search.trial_values(runs[:1], ["val_mse", "train_s"])
    assert len(runs) == 4 and state == "complete" and len(values) == 2


def test_the_estimate_counts_batches_not_the_grid():
    from hypertui.engine.sweeps.estimate import estimate_seconds

    one_batch = parse_preset(TPE.replace("batch = 3", "batch = 6"), "t")
    assert len(one_batch.expand()) == 24  # the grid x draws a random sweep would hold
    assert one_batch.n_trials == 6
    sequential = parse_preset(TPE.replace("batch = 3", "batch = 1"), "t")
    assert estimate_seconds(sequential) > estimate_seconds(one_batch)


@pytest.mark.slow
def test_your_own_function_is_searched_one_trial_at_a_time(tmp_path):
    import textwrap

    from hypertui.engine.sweeps.presets import load_preset_file
    from tests.test_function_sweep import MODULE, PRESET

    (tmp_path / "userfn.py").write_text(textwrap.dedent(MODULE))
    sweep = 'lr = { log_uniform = [0.01, 0.3] }\nhow = ["log"]'
    text = PRESET.format(seeds=1, sweep=sweep).replace(
        'description = "your own function"',
        'description = "your own function"\nsearch = "tpe"\ntrials = 3',
    )
    (tmp_path / "fn.toml").write_text(text)
    try:
        preset = load_preset_file(tmp_path / "fn.toml")
        assert preset.n_trials == 3 and search.batch_size(preset) == 1
        assert search.goal(preset) == (["val_acc"], ["maximize"])
        store = Store(tmp_path / "s.sqlite")
        sweep_id = create_sweep(store, preset)
        assert store.sweep(sweep_id).n_runs == 0
        list(run_sweep(store, sweep_id))
        runs = store.runs(sweep_id)
        assert [r.status for r in runs] == ["finished"] * 3
        values = [search.trial_values([r], ["val_acc"]) for r in runs]
        assert all(state == "complete" for state, _ in values)
        assert all(0.01 <= r.point["lr"] <= 0.3 for r in runs)
    finally:
        sys.modules.pop("userfn", None)


def test_a_field_that_means_nothing_for_the_asked_optimizer_is_left_out(store):
    """Momentum asked beside adam trains the [config]'s momentum and is not in the trial's
    point (Results would group adam runs by a momentum they never used); the next batch is
    asked, from the store, with those trials told without it."""
    text = TPE.replace('optimizer = ["sgd", "adam"]', 'optimizer = { choice = ["sgd", "adam"] }')
    text += "momentum = { uniform = [0.0, 0.95] }\n"
    sweep_id = create_sweep(store, parse_preset(text, "tpe.toml"))
    list(run_sweep(store, sweep_id))
    runs = store.runs(sweep_id)
    adam = [r for r in runs if r.config["optimizer"] == "adam"]
    sgd = [r for r in runs if r.config["optimizer"] == "sgd"]
    assert adam and sgd and len(runs) == 6
    assert all("momentum" not in r.point and r.config["momentum"] == 0.0 for r in adam)
    assert all(r.point["momentum"] == r.config["momentum"] for r in sgd)
