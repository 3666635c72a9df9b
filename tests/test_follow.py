"""Following a sweep through the store (engine/store/follow.py) while a runner writes it."""

from __future__ import annotations

from collections.abc import Callable

from hypertui.engine.core.events import Progress, RunStarted
from hypertui.engine.store.follow import Follower
from hypertui.engine.store.store import Store
from tests.fakes import pending_sweep, start_trial, train_epochs

SWEEP = "5eed0005"


class Interleaved:
    """A viewer's connection that lets the runner commit right after one of its reads
    (`after`, a piece of the SQL): the moment a poll cannot choose."""

    def __init__(self, db, after: str, write: Callable[[], None]):
        self.db, self.after, self.write = db, after, write

    def execute(self, sql: str, *args):
        cursor = self.db.execute(sql, *args)  # sqlite has run the statement's first step
        if self.write and self.after in sql:
            write, self.write = self.write, None
            write()
        return cursor

    def __getattr__(self, name: str):
        return getattr(self.db, name)


def test_a_trial_never_reports_progress_before_it_starts(tmp_path):
    runner = Store(tmp_path / "runs.sqlite")
    first, second = pending_sweep(runner, SWEEP, 2)
    runner.claim_sweep(SWEEP)
    start_trial(runner, first)
    train_epochs(runner, first, [1])
    viewer = Store(runner.path, create=False)
    follower = Follower(viewer, SWEEP)
    events = [e.event for e in follower.poll().events]

    def second_starts() -> None:  # the runner, between the poll's read of the trials...
        start_trial(runner, second)
        train_epochs(runner, second, [1])  # ...and its read of the new points

    viewer.db = Interleaved(viewer.db, "SELECT id, idx, status FROM runs", second_starts)
    events += [e.event for e in follower.poll().events]
    events += [e.event for e in follower.poll().events]
    started: set[str] = set()
    for event in events:
        if isinstance(event, RunStarted):
            started.add(event.run_id)
        if isinstance(event, Progress):
            assert event.run_id in started, events
    assert started == {first, second}
