"""The runner: the one process that trains a sweep and writes its rows to the store.

    python -m hypertui.engine.sweeps.runner --store PATH SWEEP_ID

It belongs to no terminal (`launch` starts it in its own session, stdin from /dev/null,
output to a log file beside the store), so a closed laptop lid, a dropped SSH link or a
killed tmux session never stops training. Viewers (the app, `hypertui runs`, `attach`)
only read the store; they ask for pause, skip and cancel by writing a request there, which
the runner's watch thread reads every CONTROL_POLL_S and turns into `Controls`, which the
training loop obeys between two steps. The same thread refreshes the sweep's heartbeat:
a sweep whose heartbeat stops is shown as interrupted and can be resumed.

Start-up order matters. Signal handlers come first, so a signal in the first moment never
kills the runner. Then torch is imported (seconds on a loaded machine, holding the GIL
while it loads its libraries, so no heartbeat could be written meanwhile); the sweep stays
`pending` until the claim that follows, which starts the heartbeat and reads every request
already made, so a pause or cancel sent in the runner's first moments is in force before
its first step.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.own_model import add_import_dir
from hypertui.engine.store.liveness import HEARTBEAT_S, RUNNER
from hypertui.engine.store.store import Store

TICK_S = 0.25  # how often the training thread reads viewers' requests, between two steps
CONTROL_POLL_S = 0.5  # the watch thread, for the moments with no steps (loading, pause)


@dataclass(frozen=True)
class Launched:
    sweep_id: str
    pid: int
    log: Path


def log_path(store_path: Path, sweep_id: str) -> Path:
    return Path(store_path).resolve().parent / "logs" / f"{sweep_id}.log"


def launch(store_path: Path, sweep_id: str) -> Launched:
    """Start a detached runner for a sweep and return at once; the sweep records the
    runner's pid (it reads `interrupted` should the runner die before its claim)."""
    log = log_path(store_path, sweep_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The runner runs in the user's folder, which comes first on its import path, as it does
    # for `python -m`: `model = "mymodels:build"` and whatever that module imports (its own
    # engine.py or tui/, say) are the user's. The folder that holds this very `hypertui`
    # comes last, so the runner imports the same hypertui even from a checkout that is not
    # installed; nothing of ours but `hypertui` can be shadowed or shadow theirs.
    here = os.getcwd()
    root = str(Path(sys.modules["hypertui"].__file__).resolve().parents[1])
    paths = (here, env.get("PYTHONPATH"), root)
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    with open(log, "a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", RUNNER, "--store", str(store_path), sweep_id],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # no terminal's SIGHUP, no tmux session's kill reaches it
            cwd=here,
            env=env,
        )
    store = Store(store_path)
    try:
        store.launched(sweep_id, proc.pid)
    finally:
        store.close()
    return Launched(sweep_id, proc.pid, log)


class Watch:
    """The runner's watch thread: viewers' requests in, heartbeat out.

    It has its own store connection (sqlite connections stay in their thread) and takes
    the write lock only for the heartbeat, a few bytes every HEARTBEAT_S. The training
    thread reads requests every TICK_S but beats, as this thread does, only when the last
    beat of either is HEARTBEAT_S old or the pause changed: each beat is a write that
    waits on any viewer holding the store's lock, and waiting 4 times a second stalled
    training."""

    def __init__(self, store_path: Path, sweep_id: str, controls: Controls):
        self.store_path = store_path
        self.sweep_id = sweep_id
        self.controls = controls
        self.skips_seen: int | None = None
        self.lock = threading.Lock()  # two threads poll: each skip request acts once
        self.paused_s = 0.0  # seconds held on pauses that ended
        self.pause_began: float | None = None  # monotonic time the pause now held began
        self.last_beat = -HEARTBEAT_S  # monotonic time of the last heartbeat, either thread's
        self.last_paused = False  # what that heartbeat said of the pause
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="hypertui-watch", daemon=True)

    def start(self) -> Watch:
        self.main_store = Store(self.store_path)  # the training thread's own connection
        self.poll(self.main_store)  # requests made before this runner existed: from step one
        self.last_tick = time.monotonic()
        self.controls.tick = self.tick
        self.thread.start()
        return self

    def stop(self) -> None:
        self.done.set()
        self.controls.tick = lambda: None
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.main_store.close()

    def tick(self) -> None:
        """From the training loop, before a step: every TICK_S, read requests and beat."""
        now = time.monotonic()
        if now - self.last_tick < TICK_S:
            return
        self.last_tick = now
        try:
            self.poll(self.main_store)
            self.beat(self.main_store)
        except HypertuiError as exc:  # a busy or full store: the watch thread tries too
            print(f"hypertui runner: {exc}", file=sys.stderr, flush=True)

    def poll(self, store: Store) -> None:
        with self.lock:
            self._apply(*store.controls(self.sweep_id))

    def beat(self, store: Store) -> None:
        """The heartbeat, when the last one (from either thread) is HEARTBEAT_S old or
        said another pause state than now holds."""
        with self.lock:
            paused = self.controls.pause.is_set()
            now = time.monotonic()
            if paused == self.last_paused and now - self.last_beat < HEARTBEAT_S:
                return
            self.last_beat, self.last_paused = now, paused
        store.beat(self.sweep_id, paused, self.held_s())

    def held_s(self) -> float:
        """Seconds this runner has held on pauses so far (the current one included), so
        that viewers can leave them out of its pace."""
        with self.lock:
            began = self.pause_began
            return self.paused_s + (time.monotonic() - began if began is not None else 0.0)

    def _apply(self, control: str, skips: list[str]) -> None:
        if control == "cancel":
            self.controls.cancel()
        elif control == "pause":
            if self.pause_began is None:
                self.pause_began = time.monotonic()
            self.controls.pause.set()
        else:
            if self.pause_began is not None:
                self.paused_s += time.monotonic() - self.pause_began
                self.pause_began = None
            self.controls.pause.clear()
        for named in skips[self.skips_seen :] if self.skips_seen is not None else ():
            if named == "*":
                self.controls.skip.set()
            else:
                self.controls.skip_runs.add(named)
        self.skips_seen = len(skips)

    def _loop(self) -> None:
        self.store = Store(self.store_path)  # this thread's own connection
        while not self.done.wait(CONTROL_POLL_S):
            try:
                self.poll(self.store)
                self.beat(self.store)
            except HypertuiError as exc:  # a busy or full store: try again next time
                print(f"hypertui runner: {exc}", file=sys.stderr, flush=True)
        self.store.close()


def run_watched(
    store: Store, sweep_id: str, controls: Controls, retry_failed: bool = False
) -> Iterator:
    """Claim a sweep, watch for requests, then train it with the options it was stored with.

    Yields the sweep's events (hypertui.engine.sweeps.sweep.SweepEvent) as they are recorded."""
    from hypertui.engine.sweeps.backends import make_backend
    from hypertui.engine.sweeps.sweep import (
        run_sweep,  # torch: before the claim starts the heartbeat
    )

    gc.freeze()  # torch's objects live as long as we do: no collection need walk them again

    sweep = store.sweep(sweep_id)
    options = sweep.options
    if isinstance(options.get("import_dir"), str):  # the preset's folder: its own model
        add_import_dir(options["import_dir"])
    backend = make_backend(options)  # Ray: connected before the claim; missing: one line
    pending = store.claim_sweep(sweep.id, retry_failed=retry_failed)
    watch = Watch(store.path, sweep.id, controls).start()
    try:
        data_dir = Path(options["data_dir"]) if options.get("data_dir") else None
        yield from run_sweep(
            store,
            sweep.id,
            controls,
            data_dir=data_dir,
            population=options.get("population", True),
            backend=backend,
            pending=pending,
        )
    finally:
        watch.stop()


def main(argv: list[str] | None = None) -> int:
    controls = Controls()
    controls.install_signals()
    # No terminal sends a detached runner SIGINT; someone who does (`kill -INT`) means stop,
    # as SIGTERM does: a graceful cancel, not a KeyboardInterrupt traceback in the log.
    signal.signal(signal.SIGINT, lambda signum, frame: controls.cancel())
    parser = argparse.ArgumentParser(prog="python -m hypertui.engine.sweeps.runner")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("sweep_id")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{started} runner {os.getpid()} for sweep {args.sweep_id}", flush=True)
    try:
        store = Store(args.store)
        from hypertui.engine.sweeps.backends import jobs_line

        with contextlib.suppress(HypertuiError):  # a bad stored option: run_watched says it
            print(jobs_line(store.sweep(args.sweep_id).options), flush=True)
        for item in run_watched(store, args.sweep_id, controls):
            if type(item.event).__name__ in ("Finished", "Failed"):
                status = getattr(item.event, "status", "failed")
                reason = getattr(item.event, "reason", "")
                line = f"trial {item.trial + 1}/{item.n_trials}: {status} {reason}"
                print(line.rstrip(), flush=True)
        sweep = store.sweep(args.sweep_id)
    except HypertuiError as exc:
        print(f"hypertui: {exc}", flush=True)
        with contextlib.suppress(HypertuiError):
            Store(args.store).failed_to_start(args.sweep_id, str(exc))  # viewers say why
        return 2
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} sweep {sweep.id} {sweep.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
