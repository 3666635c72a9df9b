"""The runner's watch (engine/sweeps/runner.py): how often it writes the store.

Each heartbeat is a write: it takes the store's lock, so a viewer that holds that lock
stalls the training thread that beats. On a fake clock, no real process or thread."""

from __future__ import annotations

import threading
import types

from hypertui.engine.core.controls import Controls
from hypertui.engine.store.liveness import HEARTBEAT_S
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps import runner
from tests.fakes import pending_sweep

SWEEP = "5eed0004"


def test_the_training_thread_beats_once_per_heartbeat_not_per_tick(tmp_path, monkeypatch):
    store = Store(tmp_path / "runs.sqlite")
    pending_sweep(store, SWEEP, 2)
    store.claim_sweep(SWEEP)
    now = [1000.0]
    monkeypatch.setattr(runner, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    watch = runner.Watch(store.path, SWEEP, Controls())
    watch.thread = threading.Thread(target=lambda: None)  # only the training thread here
    watch.start()
    beats = []
    monkeypatch.setattr(watch.main_store, "beat", lambda *args: beats.append(now[0]))
    seconds = 10.0
    while now[0] < 1000.0 + seconds:  # a step every 50 ms, as a quick model trains
        now[0] += 0.05
        watch.tick()
    watch.stop()
    assert seconds / HEARTBEAT_S - 1 <= len(beats) <= seconds / HEARTBEAT_S + 1, beats
    assert all(b - a >= HEARTBEAT_S for a, b in zip(beats, beats[1:], strict=False)), beats
