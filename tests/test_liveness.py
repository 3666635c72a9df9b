"""Is a sweep's runner alive (engine/store/liveness.py)? Viewers answer from the store and,
on the runner's host, its process; a dead runner's sweep reads `interrupted`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from hypertui.engine.store.liveness import is_live
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.runner import launch
from tests.fakes import pending_sweep

SWEEP = "5eed0006"


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def a_zombie() -> subprocess.Popen:
    """A child killed and not yet reaped: its pid is still in the process table."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.send_signal(signal.SIGKILL)
    wait_until(lambda: state(child.pid) == "Z")
    return child


def test_a_killed_runner_not_yet_reaped_is_dead():
    zombie = a_zombie()  # `pause` right after a kill answered "pause requested"
    try:
        sweep = {"id": SWEEP, "pid": zombie.pid, "host": socket.gethostname()}
        assert not is_live({**sweep, "heartbeat": time.time()})
    finally:
        zombie.wait()


def test_a_pending_sweep_whose_runner_is_gone_reads_interrupted(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    pending_sweep(store, SWEEP, 2)
    assert store.sweep(SWEEP).status == "pending"  # no runner yet: `hypertui run` in-process
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()
    store.db.execute(
        "UPDATE sweeps SET pid=?, host=?, heartbeat=? WHERE id=?",
        (gone.pid, socket.gethostname(), time.time(), SWEEP),
    )
    assert store.sweep(SWEEP).status == "interrupted"
    assert store.sweep(SWEEP).resumable


@pytest.mark.slow  # a signal to a real runner
def test_a_runner_killed_before_it_claims_its_sweep_leaves_it_interrupted(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    pending_sweep(store, SWEEP, 2)
    launched = launch(store.path, SWEEP)
    assert store.sweep(SWEEP).status == "pending"  # starting: it loads torch, then claims
    os.kill(launched.pid, signal.SIGKILL)  # the OOM killer, a user's kill -9
    wait_until(lambda: store.sweep(SWEEP).status == "interrupted", timeout=STALE_WAIT_S)
    assert store.sweep(SWEEP).resumable


STALE_WAIT_S = 10.0  # a dead pid on this host says so at once: no heartbeat to wait out
