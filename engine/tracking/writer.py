"""The thread that writes a tracked run: points in batches, the heartbeat, the controls.

`Run.log` only appends to a deque (microseconds in the training thread); this daemon thread
drains it every FLUSH_S in one transaction, beats the run's heartbeat and reads what viewers
asked (pause, skip, cancel). A store that is busy, full, read-only or damaged never stops
the training: the points wait for the next flush (at most MAX_WAITING of them), a warning
is printed once, and the run's notes say what was not stored.
"""

from __future__ import annotations

import collections
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Progress
from hypertui.engine.store.liveness import HEARTBEAT_S
from hypertui.engine.tracking.summary import Summary, guess_mode, pick_metric

if TYPE_CHECKING:
    from hypertui.engine.store.store import Store

FLUSH_S = 0.2  # a logged point is in the store this long after `log`, at most (± a write)
CONTROL_S = 0.5  # viewers' requests are read this often
MAX_WAITING = 200_000  # points kept while the store cannot be written; older ones dropped
STORE_WAIT_S = 2.0  # a write waits this long for another process's lock, then tries later


@dataclass
class Point:
    epoch: int | None  # as the script gave them, or None
    step: int | None
    samples: int | None
    count: int  # the how-manieth `log` of the run (1-based): the step when none is given
    by_epoch: bool  # an epoch given and no step: charted against the epoch
    elapsed_s: float
    values: dict[str, float]


@dataclass
class Identity:
    """Who the run is: what `join` needs."""

    run_id: str
    group: str
    config: dict[str, Any]
    seed: int
    metric: str | None
    mode: str | None
    env: dict[str, Any] = field(default_factory=dict)


class Writer(threading.Thread):
    def __init__(
        self, path: Path, who: Identity, warn: Callable[[str, str], None], notes: list[str]
    ):
        super().__init__(name=f"hypertui-run-{who.run_id}", daemon=True)
        self.path = path
        self.who = who
        self.warn = warn  # one warning per kind on stderr, and a line in the run's notes
        self.notes = notes  # the run's notes (the Run's list), stored with its end
        self.points: collections.deque[Point] = collections.deque()
        self.summary = Summary(who.metric, who.mode or "min")
        self.sweep_id: str | None = None
        self.joined = threading.Event()  # set once the run is in the store, or cannot be
        self.wake = threading.Event()
        self.ending: tuple[str, str, float] | None = None  # status, reason, wall seconds
        # what viewers asked, read by Run.log in the training thread
        self.stop_reason = ""
        self.pause = threading.Event()
        self.paused_s = 0.0
        self.dropped = 0
        self.waiting: list[Progress] = []  # points not stored yet (the store was busy)
        self.elapsed_s = 0.0  # training seconds as of the last point (the Run sets it)
        self.store: Store | None = None
        self.tracked: ModuleType  # engine.store.tracked, imported by this thread
        self.broken = False  # the run could not be stored at all: `log` keeps nothing

    # -- in the training thread -------------------------------------------------------

    def end(self, status: str, reason: str, wall_s: float, timeout_s: float) -> None:
        self.ending = (status, reason, wall_s)
        self.wake.set()
        self.join(timeout_s)
        if self.is_alive():
            self.warn("end", f"could not store the end of run {self.who.run_id} in time")

    # -- in this thread ---------------------------------------------------------------

    def run(self) -> None:
        try:
            self.track()
        except Exception as exc:  # a bug of ours: never the user's training's end
            self.broken = True
            self.warn("bug", f"tracking stopped: {type(exc).__name__}: {exc}")

    def track(self) -> None:
        # the store's modules load here, off the training thread: `import hypertui` stays light
        from hypertui.engine.store import tracked
        from hypertui.engine.store.store import Store

        self.tracked = tracked
        self.who.env["git_rev"] = _git_revision()
        try:
            self.store = Store(self.path, lock_wait_s=STORE_WAIT_S)
            joined = tracked.join(self.store, **vars(self.who))
        except HypertuiError as exc:
            self.warn("store", f"not tracking this run: {exc}")
            self.broken = True
            self.joined.set()
            while self.ending is None:  # until the run ends: nothing can be stored
                self.points.clear()
                self.wake.wait()
                self.wake.clear()
            return
        self.sweep_id = joined.sweep_id
        if joined.metric and joined.metric != self.who.metric:
            if self.who.metric:
                self.warn(
                    "metric",
                    f"group {self.who.group!r} ranks by {joined.metric} ({joined.mode});"
                    f" metric={self.who.metric!r} is not used",
                )
            self.summary.metric, self.summary.mode = joined.metric, joined.mode or "min"
        self.joined.set()
        self.loop(joined.skips_before)
        self.store.close()

    def loop(self, skips_before: int) -> None:
        next_beat = next_controls = 0.0
        while True:
            ending = self.ending
            self.flush()
            now = time.monotonic()
            if ending is not None:
                self.finish(*ending)
                return
            if now >= next_controls:
                next_controls = now + CONTROL_S
                self.read_controls(skips_before)
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S
                paused, paused_s = self.pause.is_set(), self.paused_s
                self.attempt(
                    self.tracked.beat, self.store, self.sweep_id, self.who.run_id, paused, paused_s
                )
            self.wake.wait(FLUSH_S)
            self.wake.clear()

    def flush(self) -> None:
        if not self.points and not self.dropped:
            return
        batch = []
        while self.points:
            p = self.points.popleft()
            if self.summary.metric is None and p.values:
                metric = pick_metric(list(p.values))
                self.summary.metric, self.summary.mode = metric, guess_mode(metric)
                mode = self.summary.mode
                self.attempt(self.tracked.set_metric, self.store, self.sweep_id, metric, mode)
            step = p.step if p.step is not None else p.count
            self.summary.add(p.epoch, step, p.samples, p.values)
            train_loss = p.values.get("train_loss")
            metrics = {k: v for k, v in p.values.items() if k != "train_loss"}
            batch.append(
                Progress(
                    self.who.run_id,
                    p.epoch if p.epoch is not None else 0,
                    step,
                    p.samples or 0,
                    p.elapsed_s,
                    train_loss,
                    metrics,
                    end_of_epoch=p.by_epoch,
                )
            )
        self.waiting += batch
        if self.attempt(self.store.add_points, self.waiting):
            self.waiting = []
            # what it reached so far: `runs` shows it live, and a killed script keeps it
            columns = self.summary.columns(self.elapsed_s)
            self.attempt(self.tracked.progress, self.store, self.who.run_id, **columns)
        elif len(self.waiting) > MAX_WAITING:
            self.dropped += len(self.waiting) - MAX_WAITING
            self.waiting = self.waiting[-MAX_WAITING:]

    def read_controls(self, skips_before: int) -> None:
        try:
            control, skips = self.store.controls(self.sweep_id)
        except HypertuiError:
            return  # a busy or damaged store: ask again next time
        if control == "cancel":
            self.stop_reason = "cancelled from hypertui"
        elif any(s in (self.who.run_id, "*") for s in skips[skips_before:]):
            self.stop_reason = "skipped from hypertui"
        (self.pause.set if control == "pause" and not self.stop_reason else self.pause.clear)()

    def finish(self, status: str, reason: str, wall_s: float) -> None:
        s = self.summary
        if status == "finished" and s.diverged:
            status, reason = "diverged", f"{s.metric} is not finite"
        if self.waiting:
            self.warn("lost", f"{len(self.waiting)} points could not be stored")
        if self.dropped:
            self.notes.append(f"{self.dropped} points dropped while the store could not be written")
        summary = {**s.columns(self.elapsed_s), "wall_s": wall_s, "notes": self.notes}
        run_id = self.who.run_id
        done = self.attempt(
            self.tracked.end, self.store, self.sweep_id, run_id, status, reason, **summary
        )
        if not done:
            self.warn("end", f"could not store the end of run {self.who.run_id}")

    def attempt(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> bool:
        """A write that may fail without stopping anything: False (and a warning, once)."""
        try:
            write(*args, **kwargs)
        except (HypertuiError, sqlite3.Error, OSError) as exc:
            self.warn(f"write {type(exc).__name__}", f"cannot write the run store: {exc}")
            return False
        return True


def _git_revision() -> str | None:
    """The revision of the git checkout the script runs in (its working folder's)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
