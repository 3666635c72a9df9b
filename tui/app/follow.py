"""The one adapter between the store and the UI: a followed sweep, as Textual messages.

A thread worker polls the store every POLL_S through store.follow.Follower (only reads:
a viewer never takes the write lock) and posts one `SweepFollower.Update` per poll that
found something new, with the engine's typed events. It stops once the runner has ended
the sweep; an `interrupted` one is still followed, since a starved runner may beat again.
Requests (pause, skip, cancel) are written to the store with a short lock wait, so the UI
never hangs on a busy store.

Widgets never call the engine: screens own a SweepFollower and react to its messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from textual.message import Message
from textual.widget import Widget

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Progress, SweepEvent
from hypertui.engine.core.objective import Objective, objective
from hypertui.engine.core.records import OWN_LOOP_PROBLEMS, SweepRow
from hypertui.engine.store.follow import Follower, Trial, Update, stored_curve
from hypertui.engine.store.store import UI_LOCK_WAIT_S, Store

POLL_S = 0.25  # new points, trial starts and ends show within this (plus a redraw tick)
# set by a runner as it leaves: nothing follows
ENDED = ("done", "incomplete", "cancelled", "failed")


def following(sweep: SweepRow) -> bool:
    """Whether a sweep may still change: not ended by its runner. A script's group never
    ends for good: another run of it may join at any time."""
    return sweep.status not in ENDED or sweep.problem in OWN_LOOP_PROBLEMS


@dataclass(frozen=True)
class Replay:
    """What a viewer attaching to a sweep gets instead of every stored point: what ranks
    its trials, each trial's latest (samples, value) of that metric, and the rowid up to
    which curves are read on demand (`read_curves`) for the few trials it draws."""

    goal: Objective
    upto: int
    latest: dict[str, tuple[float, float]]


class SweepFollower:
    class Update(Message):
        """What was committed since the last poll: the sweep's row, its new events, and
        what a viewer shows beside them (hypertui.engine.store.follow.Update)."""

        def __init__(self, update: Update, replay: Replay | None = None) -> None:
            super().__init__()
            self.sweep: SweepRow = update.sweep
            self.events: list[SweepEvent] = update.events
            self.done_by_runner = update.done_by_runner
            self.neighbours = update.neighbours
            self.trials: list[Trial] | None = update.trials  # when trials joined (and first)
            self.replay = replay  # with the first update only

    class Lost(Message):
        """The store cannot be read any more (deleted, damaged): say so once."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    class Curves(Message):
        """Stored curves read for the trials a viewer draws (run id -> its points)."""

        def __init__(self, curves: dict[str, list[Progress]]) -> None:
            super().__init__()
            self.curves = curves

    def __init__(self, target: Widget, store_path: Path, sweep_id: str):
        self.target = target
        self.store_path = store_path
        self.sweep_id = sweep_id
        self.stopped = False

    def start(self) -> None:
        self.target.run_worker(self._follow, thread=True, group="follow", exit_on_error=False)

    def stop(self) -> None:
        self.stopped = True

    def _follow(self) -> None:
        try:
            store = Store(self.store_path, create=False, lock_wait_s=UI_LOCK_WAIT_S)
            follower = Follower(store, self.sweep_id, replay_points=False)
            update = follower.poll()
            first = [store.run(update.trials[0].id)] if update.trials else []  # a table's task
            goal = objective(update.sweep.problem, first, update.sweep.options)
            replay = Replay(goal, follower.replayed, follower.latest(goal.main))
            self.target.post_message(self.Update(update, replay))
            last_sweep = update.sweep
            while not self.stopped and following(last_sweep):
                time.sleep(POLL_S)
                update = follower.poll()
                if update.events or update.sweep != last_sweep:
                    self.target.post_message(self.Update(update))
                    last_sweep = update.sweep
        except HypertuiError as exc:
            self.target.post_message(self.Lost(str(exc)))
        except Exception as exc:  # a bug or a damaged row: say it, never die in silence
            self.target.post_message(self.Lost(f"{type(exc).__name__}: {exc}"))

    def read_curves(self, run_ids: list[str], upto: int) -> None:
        """The stored curves of these trials up to the replay, read in a thread worker and
        posted as one `Curves` message (the UI thread never waits on the store)."""
        self.target.run_worker(
            lambda: self._read_curves(run_ids, upto),
            thread=True,
            group="curves",
            exit_on_error=False,
        )

    def _read_curves(self, run_ids: list[str], upto: int) -> None:
        try:
            store = Store(self.store_path, create=False, lock_wait_s=UI_LOCK_WAIT_S)
            curves = {run_id: stored_curve(store, run_id, upto) for run_id in run_ids}
            store.close()
        except HypertuiError as exc:
            self.target.post_message(self.Lost(str(exc)))
            curves = {run_id: [] for run_id in run_ids}  # drawn with what came since
        self.target.post_message(self.Curves(curves))

    def request(self, action: str, run_id: str = "") -> str:
        """Ask the sweep's runner to pause, resume, skip (one run, or the running unit) or
        cancel; '' or why it failed."""
        try:
            store = Store(self.store_path, create=False, lock_wait_s=UI_LOCK_WAIT_S)
            store.request(self.sweep_id, action, run_id)
            store.close()
        except HypertuiError as exc:
            return f"{exc}; try again"
        return ""
