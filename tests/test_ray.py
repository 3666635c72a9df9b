"""Sweeps on Ray against a real local instance (2 CPUs, started once for the session).

Units are tiny house populations so that the whole file stays within a few minutes on a
2-core CI machine; what they check is what a user sees: the same numbers as the local
runner, a killed worker's unit trained once more with nothing stored twice, a killed driver
resumed, and one clear line when Ray or the cluster is missing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypertui.engine.core.events import Progress, RunStarted
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.tui.cli.main import main
from tests.fakes import stored_epochs

ROOT = Path(__file__).resolve().parents[1]

# Two populations (batch sizes), 8 trials each; the batch-SLOW one trains for a few seconds.
TWO_UNITS = """
description = "two populations"
seeds = 2
[config]
problem = "house"
hidden = [4]
epochs = {epochs}
optimizer = "sgd"
[sweep]
batch_size = [{slow}, 256]
lr = [0.05, 0.01]
activation = ["relu", "tanh"]
"""


SLOW = 2  # the slow population's batch: ~1,000 steps an epoch, seconds to act on mid-way


def two_units(epochs: int = 3, slow: int = 64):
    return parse_preset(TWO_UNITS.format(epochs=epochs, slow=slow), "two.toml")


@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def backend(ray_address):
    from hypertui.engine.sweeps.ray.backend import RayBackend

    return RayBackend()  # joins the session's instance


def results(store: Store, sweep_id: str) -> list[tuple]:
    """What a user compares: per trial its status, metrics and validation curve, not what
    depends on time: a report inside an epoch comes every 2 s of training (a busy machine
    adds some), and a report's train_loss is the mean since the report before it."""
    out = []
    for r in store.runs(sweep_id):
        points = [p for p in store.points(r.id) if p["end_of_epoch"]]
        curve = [(p["epoch"], p["val_mse"]) for p in points]
        final = {k: v for k, v in r.final.items() if k != "train_loss"}  # as the curve's
        out.append((r.idx, r.status, final, r.best, r.test, curve))
    return out


@pytest.mark.ray
def test_ray_results_equal_the_local_runners(tmp_path, backend):
    store = Store(tmp_path / "runs.sqlite")
    local = create_sweep(store, two_units())
    list(run_sweep(store, local))
    on_ray = create_sweep(store, two_units())
    events = list(run_sweep(store, on_ray, backend=backend))
    assert store.sweep(on_ray).status == "done" and store.sweep(on_ray).counts == {"finished": 16}
    assert results(store, on_ray) == results(store, local)
    assert all(len(curve) == 3 for *_, curve in results(store, on_ray))
    # events stream back while units train: each trial's start, 3 points and end, once
    per_run = {}
    for item in events:
        per_run.setdefault(item.event.run_id, []).append(type(item.event).__name__)
    one_trial = ("RunStarted", "Progress", "Progress", "Progress", "Finished")
    assert {tuple(kinds) for kinds in per_run.values()} == {one_trial}


def _worker_pids(title: bytes) -> list[int]:
    """Ray workers of this test session's instance whose process title is `title`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            grandparent = int(Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if cmdline.startswith(title) and grandparent == os.getpid():  # worker < raylet < us
            pids.append(int(entry))
    return pids


@pytest.mark.ray
def test_a_killed_worker_is_retried_and_nothing_is_stored_twice(tmp_path, backend):
    store = Store(tmp_path / "runs.sqlite")
    sweep_id = create_sweep(store, two_units(epochs=12, slow=SLOW))
    starts: dict[str, int] = {}
    killed = []
    for item in run_sweep(store, sweep_id, backend=backend):
        event = item.event
        if isinstance(event, RunStarted):
            starts[event.run_id] = starts.get(event.run_id, 0) + 1
        if isinstance(event, Progress) and event.epoch == 2 and not killed:
            row = store.run(event.run_id)
            if row.config["batch_size"] == SLOW:  # the slow population, mid-way
                killed = _worker_pids(b"ray::hypertui unit 0 ")
                assert len(killed) == 1
                os.kill(killed[0], signal.SIGKILL)
    assert killed, "the slow unit was never seen training"
    runs = store.runs(sweep_id)
    assert store.sweep(sweep_id).counts == {"finished": 16}
    slow = [r for r in runs if r.config["batch_size"] == SLOW]
    assert all(starts[r.id] == 2 for r in slow)  # trained twice...
    for r in runs:  # ...but stored once: one curve of 12 epochs, its final metrics its last
        assert stored_epochs(store, r.id) == list(range(1, 13))
        assert r.final["val_mse"] == store.points(r.id)[-1]["val_mse"]


@pytest.mark.ray
def test_resume_after_the_driver_is_killed(tmp_path, ray_address, capsys):
    preset = tmp_path / "two.toml"
    preset.write_text(TWO_UNITS.format(epochs=30, slow=10))
    db = tmp_path / "runs.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "hypertui", "run", str(preset), "--json", "--store", str(db)]
    cmd += ["--backend", "ray", "--address", ray_address]
    driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        for line in driver.stdout:  # the fast unit's trials finish while the slow one trains
            if json.loads(line)["event"] == "finished":
                break
        driver.kill()
    finally:
        driver.kill()
        driver.wait()
    store = Store(db)
    sweep = store.latest_sweep()
    assert sweep.status == "interrupted" and 0 < sweep.n_done < 16
    before = {r.id: r.ended_at for r in store.runs(sweep.id) if r.status == "finished"}
    time.sleep(0.5)
    # as a user would: the stored options say Ray at that address (this session's instance)
    assert main(["run", "--resume", sweep.id, "--json", "--store", str(db)]) == 0
    assert store.sweep(sweep.id).counts == {"finished": 16}
    for r in store.runs(sweep.id):
        assert stored_epochs(store, r.id) == list(range(1, 31))
        if r.id in before:
            assert r.ended_at == before[r.id]  # not trained again


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    db = tmp_path / "runs.sqlite"
    code = main(["run", "quickstart", "--backend", "ray", "--store", str(db)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "hypertui: the ray backend needs Ray: pip install 'hypertui[ray]'"
    ]
    assert Store(db).sweeps() == []  # nothing half-made to resume


@pytest.mark.ray
def test_no_cluster_at_the_address_is_one_clear_line(tmp_path):
    pytest.importorskip("ray")
    db = tmp_path / "runs.sqlite"
    cmd = [sys.executable, "-m", "hypertui", "run", "quickstart", "--backend", "ray"]
    cmd += ["--address", "127.0.0.1:1", "--store", str(db)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and time.perf_counter() - t0 < 60
    assert done.stderr.strip().splitlines() == [
        "hypertui: no Ray cluster at 127.0.0.1:1: Connection refused (on the head node, "
        "`ray start --head` starts one; `ray status` shows its address)"
    ]
    assert Store(db).sweeps() == []


@pytest.mark.ray
def test_address_auto_joins_only_a_cluster_this_user_started(tmp_path, monkeypatch):
    """Ray's own "auto" joins any instance among the machine's processes (another user's
    local Ray, which then waited minutes): `auto` is $RAY_ADDRESS or the cluster this
    user's `ray start --head` recorded, and otherwise one line within seconds."""
    pytest.importorskip("ray")
    from hypertui.engine.core.errors import HypertuiError
    from hypertui.engine.sweeps.ray.backend import resolve_auto

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    with pytest.raises(HypertuiError, match="no Ray cluster of yours on this machine"):
        resolve_auto("auto")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.0.0.7:6379\n")
    assert resolve_auto("auto") == "10.0.0.7:6379"
    monkeypatch.setattr(os, "getuid", lambda: os.stat(tmp_path).st_uid + 1)
    with pytest.raises(HypertuiError, match=r"\(10.0.0.7:6379\) was started by another user"):
        resolve_auto("auto")
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")  # named: the user's own choice
    assert resolve_auto("auto") == "head:6379" and resolve_auto("h:1") == "h:1"
    monkeypatch.delenv("RAY_ADDRESS")
    db = tmp_path / "runs.sqlite"  # through the command, which never reaches ray.init
    argv = ["run", "quickstart", "--backend", "ray", "--address", "auto", "--store", str(db)]
    assert main(argv) == 2
    assert Store(db).sweeps() == []


@pytest.mark.ray
def test_mnist_reaches_a_worker_that_cannot_see_the_drivers_folder(
    tmp_path, ray_address, monkeypatch
):
    import tempfile
    from types import SimpleNamespace

    import numpy as np

    from hypertui.engine.data.mnist import MD5, write_idx
    from hypertui.engine.sweeps.ray.worker import mnist_for_workers, worker_data_dir

    raw = tmp_path / "driver" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in MD5:  # tiny stand-ins in the real layout (the loader reads any size)
        shape = (5, 28, 28) if "images" in name else (5,)
        write_idx(raw / name, rng.integers(0, 10, shape, dtype=np.uint8))
    units = [[SimpleNamespace(config={"problem": "mnist"})]]
    data = mnist_for_workers(units, tmp_path / "driver")
    assert worker_data_dir(data) == tmp_path / "driver"  # a shared filesystem: used as is
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "node-tmp"))
    elsewhere = {**data, "driver_dir": str(tmp_path / "not-on-this-node")}
    folder = worker_data_dir(elsewhere)  # written from the object store, once per node
    assert folder.is_relative_to(tmp_path / "node-tmp")
    for name in MD5:
        assert (folder / "MNIST" / "raw" / name).read_bytes() == (raw / name).read_bytes()
    house = [[SimpleNamespace(config={"problem": "house"})]]
    assert mnist_for_workers(house, tmp_path / "driver") == {}  # nothing shipped for house


@pytest.mark.ray
def test_skip_and_cancel_end_the_running_units_and_resume_finishes(tmp_path, backend):
    from hypertui.engine.sweeps.sweep import Controls

    store = Store(tmp_path / "runs.sqlite")
    sweep_id = create_sweep(store, two_units(epochs=12, slow=SLOW))
    controls = Controls()
    for item in run_sweep(store, sweep_id, controls, backend=backend):
        event = item.event
        if isinstance(event, Progress) and event.epoch == 2 and not controls.stop.is_set():
            if store.run(event.run_id).config["batch_size"] == SLOW:
                controls.stop.set()  # as `hypertui cancel` or SIGTERM would
    assert store.sweep(sweep_id).status == "cancelled"
    slow = [r for r in store.runs(sweep_id) if r.config["batch_size"] == SLOW]
    assert {r.status for r in slow} == {"cancelled"}
    assert all(r.epochs_done < 12 for r in slow)  # ended early, not trained to the end

    controls = Controls()
    skipped = False
    for item in run_sweep(store, sweep_id, controls, backend=backend):  # the resume
        event = item.event
        if isinstance(event, Progress) and event.epoch == 2 and not skipped:
            if store.run(event.run_id).config["batch_size"] == SLOW:  # the slow unit runs
                controls.skip.set()
                skipped = True
    runs = store.runs(sweep_id)
    assert store.sweep(sweep_id).status == "incomplete" and not controls.skip.is_set()
    assert {(r.status, r.reason) for r in runs if r.config["batch_size"] == SLOW} == {
        ("cancelled", "skipped")
    }
    list(run_sweep(store, sweep_id, backend=backend))  # skipped trials run on resume
    assert store.sweep(sweep_id).counts == {"finished": 16}
    for r in store.runs(sweep_id):
        assert stored_epochs(store, r.id) == list(range(1, 13))


@pytest.mark.ray
def test_a_sweep_of_your_own_function_trains_on_ray(tmp_path, ray_address):
    """One trial a unit, in a child of the Ray worker; its module comes from the preset's
    folder, which the worker puts on its import path as the runner does."""
    from hypertui.engine.sweeps.presets import load_preset_file
    from hypertui.engine.sweeps.ray.backend import RayBackend

    (tmp_path / "rayfn.py").write_text(
        "def main(config, run):\n"
        "    for epoch in range(3):\n"
        "        run.log({'val_loss': config['lr'] / (epoch + 1)}, epoch=epoch)\n"
    )
    (tmp_path / "fn.toml").write_text(
        'description = "d"\nseeds = 2\n[config]\ntrain = "rayfn:main"\nlr = 1.0\n'
        "[sweep]\nlr = [1.0, 2.0]\n"
    )
    preset = load_preset_file(tmp_path / "fn.toml")
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, preset)
    list(run_sweep(store, sweep_id, backend=RayBackend(import_dir=preset.import_dir)))
    runs = store.runs(sweep_id)
    assert [r.status for r in runs] == ["finished"] * 4, [r.reason for r in runs]
    assert [r.final["val_loss"] for r in runs] == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])


@pytest.mark.ray
def test_a_ray_unit_resumes_from_its_checkpoints(tmp_path, backend):
    """A population cancelled mid-way on Ray goes on from its members' checkpoints on
    resume (the worker's machine keeps them) and ends as the local, uninterrupted sweep."""
    from hypertui.engine.sweeps.sweep import Controls

    preset = parse_preset(
        TWO_UNITS.format(epochs=10, slow=SLOW).replace("[config]", "[config]\nsave_every = 1"),
        "two.toml",
    )
    store = Store(tmp_path / "runs.sqlite")
    local = create_sweep(store, preset)
    list(run_sweep(store, local))
    sweep_id = create_sweep(store, preset)
    controls = Controls()
    # Stop at the slow unit's first checkpoint: the stop reaches the worker within a poll
    # or two, and nine epochs left keep a fast machine from finishing the unit first
    # (two left did: a CI run's unit ended before the stop, with nothing to resume).
    for item in run_sweep(store, sweep_id, controls, backend=backend):
        event = item.event
        if isinstance(event, Progress) and event.epoch == 1 and event.end_of_epoch:
            if store.run(event.run_id).config["batch_size"] == SLOW:
                controls.stop.set()
    assert store.sweep(sweep_id).status == "cancelled"
    stopped = [r for r in store.runs(sweep_id) if r.config["batch_size"] == SLOW]
    assert all(r.status != "finished" for r in stopped), "the slow unit ended before the stop"
    list(run_sweep(store, sweep_id, backend=backend))  # the resume
    slow = [r for r in store.runs(sweep_id) if r.config["batch_size"] == SLOW]
    assert all(any("resumed from its checkpoint" in n for n in r.env["notes"]) for r in slow)
    assert results(store, sweep_id) == results(store, local)
