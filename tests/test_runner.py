"""Sweeps that outlive the terminal: real runner processes, viewers that only read the store.

Every test here starts real processes: a detached runner (engine/sweeps/runner.py), the CLI, a
shell whose process group gets the SIGHUP a closed terminal sends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hypertui.engine.store.follow import Follower
from hypertui.engine.store.liveness import STALE_S, is_live
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.runner import launch
from hypertui.engine.sweeps.sweep import create_sweep
from tests.fakes import stored_epochs

ROOT = Path(__file__).resolve().parents[1]
SLOW = """
name = "slow"
description = "two populations of two, long enough to act on"
seeds = 2
[config]
problem = "house"
epochs = {epochs}
batch_size = 256
[sweep]
hidden = [[4], [6]]
"""


LONG = 200_000  # epochs no test waits for (5,000 took ~18 s): it acts mid-way, then cancels


def preset(epochs: int):
    return parse_preset(SLOW.format(epochs=epochs), "slow.toml")


def hypertui(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hypertui", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def wait_until(condition, timeout: float = 90.0, what: str = "the runner") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    yield store
    for sweep in store.sweeps():  # never leave a runner behind
        if sweep.running:
            store.request(sweep.id, "cancel")


def assert_every_trial_stored_once(store: Store, sweep_id: str, epochs: int) -> None:
    runs = store.runs(sweep_id)
    assert [r.status for r in runs] == ["finished"] * len(runs)
    for r in runs:
        assert stored_epochs(store, r.id) == list(range(1, epochs + 1))


@pytest.mark.slow
def test_a_detached_sweep_survives_the_sighup_of_a_closed_terminal(tmp_path, store):
    preset_file = tmp_path / "slow.toml"
    preset_file.write_text(SLOW.format(epochs=150))
    shell = subprocess.Popen(  # a terminal's session: the CLI, then the shell waits on
        [
            "bash",
            "-c",
            f"{sys.executable} -m hypertui run {preset_file} --detach --store {store.path};"
            " sleep 60",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    said = shell.stdout.readline() + shell.stdout.readline()
    assert "runs in the background" in said
    wait_until(lambda: store.sweeps() and store.sweeps()[0].running)
    sweep = store.sweeps()[0]
    wait_until(lambda: store.sweep(sweep.id).counts.get("running"), what="a trial")
    os.killpg(shell.pid, signal.SIGHUP)  # the terminal closes
    shell.wait(timeout=120)  # a loaded machine delivers and acts on SIGHUP late
    wait_until(lambda: store.sweep(sweep.id).status == "done", timeout=120)
    assert_every_trial_stored_once(store, sweep.id, 150)
    log = store.path.parent / "logs" / f"{sweep.id}.log"
    # the store says done first; the runner's last line follows (a busy machine: later)
    wait_until(lambda: f"sweep {sweep.id} done" in log.read_text(), what="the log's last line")


@pytest.mark.slow
def test_sigint_to_a_runner_cancels_the_sweep_without_a_traceback(store):
    sweep_id = create_sweep(store, preset(epochs=LONG))
    launched = launch(store.path, sweep_id)
    wait_until(lambda: store.sweep(sweep_id).counts.get("running"), what="a trial")
    os.kill(launched.pid, signal.SIGINT)
    wait_until(lambda: store.sweep(sweep_id).status == "cancelled", what="the cancel")
    log = launched.log.read_text()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    assert f"sweep {sweep_id} cancelled" in log


def test_a_request_made_before_the_runner_claims_the_sweep_is_honoured(store):
    sweep_id = create_sweep(store, preset(epochs=3))
    launched = launch(store.path, sweep_id)
    store.request(sweep_id, "pause")
    assert store.sweep(sweep_id).status == "pending"  # made before the runner's claim
    wait_until(lambda: store.sweep(sweep_id).paused, what="the runner to hold")
    time.sleep(1.5)  # it holds: not one curve point while paused
    assert store.sweep(sweep_id).running
    n_points = store.db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    assert n_points == 0
    # its heartbeats count the pause it holds, as the pauses it ended (a viewer's ETA
    # leaves them out)
    wait_until(lambda: store.sweep(sweep_id).paused_s >= 1.5, what="a heartbeat", timeout=5)

    done = hypertui("resume", sweep_id, store=store.path)  # no viewer: the CLI resumes it
    assert done.returncode == 0 and "resume requested" in done.stdout
    wait_until(lambda: not store.sweep(sweep_id).paused, what="the runner to go on")
    assert store.sweep(sweep_id).paused_s >= 1.5
    wait_until(lambda: store.sweep(sweep_id).status == "done")
    assert_every_trial_stored_once(store, sweep_id, 3)
    # The runner logs its end just after it records it in the store: wait for that line.
    last_line = f"sweep {sweep_id} done"
    wait_until(lambda: launched.log.read_text().strip().endswith(last_line), timeout=10)


def test_a_cancel_in_the_first_moment_trains_nothing(store):
    sweep_id = create_sweep(store, preset(epochs=3))
    launch(store.path, sweep_id)
    store.request(sweep_id, "cancel")
    wait_until(lambda: store.sweep(sweep_id).status == "cancelled")
    assert store.sweep(sweep_id).n_done == 0


def test_a_paused_runner_with_no_viewer_is_cancelled_from_the_cli(store):
    sweep_id = create_sweep(store, preset(epochs=LONG))
    launch(store.path, sweep_id)
    wait_until(lambda: store.db.execute("SELECT COUNT(*) FROM points").fetchone()[0] > 0)
    assert hypertui("pause", sweep_id, store=store.path).returncode == 0
    wait_until(lambda: store.sweep(sweep_id).paused)
    listed = hypertui("runs", store=store.path)
    assert "running (paused)" in listed.stdout
    cancelled = hypertui("cancel", sweep_id, store=store.path)
    assert cancelled.returncode == 0
    wait_until(lambda: store.sweep(sweep_id).status == "cancelled")
    assert {r.status for r in store.runs(sweep_id)} == {"cancelled", "pending"}
    again = hypertui("cancel", sweep_id, store=store.path)  # nothing runs any more
    assert again.returncode == 2 and "is not running" in again.stderr


def test_skip_from_the_cli_ends_the_running_unit_only(store):
    sweep_id = create_sweep(store, preset(epochs=LONG))
    launch(store.path, sweep_id)
    wait_until(lambda: store.db.execute("SELECT COUNT(*) FROM points").fetchone()[0] > 0)
    assert hypertui("skip", sweep_id, store=store.path).returncode == 0
    wait_until(lambda: store.sweep(sweep_id).counts.get("cancelled") == 2)
    assert store.sweep(sweep_id).running  # the second population goes on
    store.request(sweep_id, "cancel")
    wait_until(lambda: not store.sweep(sweep_id).running)
    assert [r.reason for r in store.runs(sweep_id)][:2] == ["skipped", "skipped"]


def test_skip_of_one_trial_from_the_cli_ends_it_alone_and_its_population_goes_on(store):
    sweep_id = create_sweep(store, preset(epochs=LONG))
    launch(store.path, sweep_id)
    wait_until(lambda: store.db.execute("SELECT COUNT(*) FROM points").fetchone()[0] > 0)
    first, second = store.runs(sweep_id)[:2]  # the first population's two members
    said = hypertui("skip", sweep_id, "1", store=store.path)
    assert said.returncode == 0 and f"trial 1 ({first.id}) ends" in said.stdout
    wait_until(lambda: store.run(first.id).status == "cancelled")
    assert store.run(first.id).reason == "skipped"
    points = len(store.points(second.id))
    wait_until(lambda: len(store.points(second.id)) > points, what="the other member")
    assert store.run(second.id).status == "running"
    again = hypertui("skip", sweep_id, "1", store=store.path)
    assert again.returncode == 2 and "trial 1" in again.stderr and "is not running" in again.stderr
    store.request(sweep_id, "cancel")
    wait_until(lambda: not store.sweep(sweep_id).running)


def test_two_viewers_see_the_same_sweep_as_the_store(store, tmp_path):
    sweep_id = create_sweep(store, preset(epochs=40))
    seen: dict[int, list] = {0: [], 1: []}

    def view(k: int) -> None:  # each viewer: its own connection, its own thread
        follower = Follower(Store(store.path, create=False), sweep_id)
        while True:
            update = follower.poll()
            seen[k] += update.events
            if update.sweep.status == "done":
                seen[k] += follower.poll().events  # whatever came with the last commit
                return
            time.sleep(0.05)

    viewers = [threading.Thread(target=view, args=(k,)) for k in (0, 1)]
    for v in viewers:
        v.start()
    launch(store.path, sweep_id)
    for v in viewers:
        v.join(timeout=120)

    def summary(events):
        kinds: dict[tuple[str, str], int] = {}
        for e in events:
            key = (e.event.run_id, type(e.event).__name__)
            kinds[key] = kinds.get(key, 0) + 1
        return kinds

    assert summary(seen[0]) == summary(seen[1])
    for run in store.runs(sweep_id):
        assert summary(seen[0])[(run.id, "Progress")] == len(store.points(run.id)) == 40
        assert summary(seen[0])[(run.id, "RunStarted")] == 1
        assert summary(seen[0])[(run.id, "Finished")] == 1


def test_a_second_process_reads_consistent_data_while_a_runner_writes(store):
    """Two real processes: WAL lets this one read whole transactions only."""
    sweep_id = create_sweep(store, preset(epochs=200))
    launch(store.path, sweep_id)
    reader = Store(store.path, create=False)
    reads = 0
    while reader.sweep(sweep_id).status in ("pending", "running"):
        reader.db.execute("BEGIN")  # the runs and their points from one snapshot
        for r in reader.runs(sweep_id):
            n = len(reader.points(r.id))
            if r.status == "finished":
                assert r.final and r.ended_at and n == 200
            elif r.status == "pending":
                assert n == 0
        counts = dict(  # one statement: one snapshot of the store
            reader.db.execute("SELECT run_id, COUNT(*) FROM points GROUP BY run_id").fetchall()
        )
        first = [counts.get(r.id, 0) for r in reader.runs(sweep_id)[:2]]
        assert first[0] == first[1]  # one population's report is one transaction
        reader.db.execute("COMMIT")
        reads += 1
    assert reads > 5
    assert_every_trial_stored_once(reader, sweep_id, 200)


def test_a_sweep_whose_runner_stopped_beating_is_interrupted_even_if_its_pid_lives(store):
    sweep_id = create_sweep(store, preset(epochs=3))
    store.claim_sweep(sweep_id)  # "runs" in this (live) process
    assert store.sweep(sweep_id).status == "running"
    store.db.execute("UPDATE sweeps SET heartbeat = heartbeat - 60")  # it stopped beating
    assert store.sweep(sweep_id).status == "interrupted"
    assert store.claim_sweep(sweep_id)  # and can be resumed


def test_resume_refuses_a_sweep_that_a_live_runner_trains(store):
    sweep_id = create_sweep(store, preset(epochs=LONG))
    launch(store.path, sweep_id)
    # held: a busy machine's slow `hypertui` start must not find the sweep already done
    # (5,000 epochs of this population take ~18 s; the resume took longer to start)
    store.request(sweep_id, "pause")
    wait_until(lambda: store.sweep(sweep_id).paused, what="the runner to hold")
    done = hypertui("run", "--resume", sweep_id, store=store.path)
    assert done.returncode == 2 and f"attach {sweep_id}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_detached_runner_whose_heartbeat_is_late_still_counts_as_live(store):
    # A runner whose heartbeat is held back (a machine too busy to run its thread) is
    # alive while its process is that sweep's runner: a resume must not take it over.
    sweep_id = create_sweep(store, preset(epochs=LONG))
    launched = launch(store.path, sweep_id)
    wait_until(lambda: store.sweep(sweep_id).running)
    late = {"id": sweep_id, "pid": launched.pid, "host": socket.gethostname()}
    late["heartbeat"] = time.time() - 10 * STALE_S
    assert is_live(late)
    # any other process under a pid, or another sweep's id: the heartbeat decides
    assert not is_live({**late, "id": "0ther5ee"})
    assert not is_live({**late, "pid": os.getpid()})
    assert is_live({**late, "pid": os.getpid(), "heartbeat": time.time()})


def test_attach_with_nothing_running_says_so(store):
    done = hypertui("attach", store=store.path)
    assert done.returncode == 2 and "no sweep is running" in done.stderr


def test_read_commands_on_a_mistyped_store_do_not_create_it(tmp_path):
    missing = tmp_path / "typo.sqlite"
    for args in (("runs",), ("export",), ("attach",), ("pause", "abc")):
        done = hypertui(*args, store=missing)
        assert done.returncode == 2 and "no run store at" in done.stderr, args
    assert not missing.exists()
