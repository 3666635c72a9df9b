"""Follow a sweep through the store: its committed rows, typed again as engine events.

    follower = Follower(store, sweep_id)
    while True:
        update = follower.poll()   # update.sweep: the SweepRow; update.events: SweepEvents
        ...

A runner writes the store; any number of viewers follow it this way, in this process or
another, from the sweep's first trial or from the middle. The first poll replays what is
already stored (every started trial, its curve, its end); later polls return only what
was committed since. Each poll reads the runs' status columns and the curve points added
since the last one (by rowid), never the heavy per-run analysis: its cost stays flat in
the sweep's size. Events are the engine's own dataclasses (engine/core/events.py), so a viewer
handles a live sweep and a stored one with the same code.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from hypertui.engine.core.events import Event, Failed, Finished, Progress, RunStarted, SweepEvent
from hypertui.engine.core.records import SweepRow
from hypertui.engine.store.liveness import STALE_S
from hypertui.engine.store.store import Store

LIGHT_RUN_COLUMNS = (
    "id, idx, seed, config, status, reason, device, device_name, n_params, env,"
    " epochs_done, steps, samples, elapsed_s, wall_s, best_epoch, final, best, test"
)


@dataclass(frozen=True)
class Update:
    sweep: SweepRow
    events: list[SweepEvent]
    done_by_runner: int  # trials the current runner ended (for an honest ETA)
    neighbours: tuple[tuple[str, str], ...]  # (sweep id, device) of others running here
    # every trial, when the sweep has trials this follower had not seen (the first poll;
    # a script's run joining its group, which may change the points of the others)
    trials: list[Trial] | None = None


@dataclass(frozen=True)
class Trial:
    """What a viewer needs of a trial before it starts: no curves, no analysis."""

    id: str
    idx: int
    seed: int
    point: dict
    status: str


class Follower:
    def __init__(self, store: Store, sweep_id: str, replay_points: bool = True):
        """`replay_points=False`: the first poll replays every trial's start and end but
        none of the curve points already stored (a sweep of 648 trials holds 130k); a
        viewer reads `latest` for all and `curve` for the few it draws."""
        self.store = store
        self.sweep_id = store.sweep(sweep_id).id
        self.status: dict[str, str] = {}  # run id -> status last seen
        self.index: dict[str, int] = {}  # run id -> trial index
        self.last_point = 0  # rowid of the last curve point seen
        if not replay_points:
            (last,) = store.db.execute("SELECT MAX(rowid) FROM points").fetchone()
            self.last_point = last or 0
        self.replayed = self.last_point  # points up to here come from `curve`, not `poll`
        self.polled = False  # the first poll says every trial

    def latest(self, metric: str) -> dict[str, tuple[float, float]]:
        """Each trial's latest stored point up to the replay: (samples, metric value).
        (Decoded here, not with sqlite's json_extract: a diverged run's NaN is not JSON.)"""
        rows = self.store.db.execute(
            "SELECT p.run_id, p.samples, p.metrics FROM points p"
            " JOIN (SELECT run_id, MAX(seq) AS seq FROM points WHERE run_id IN"
            " (SELECT id FROM runs WHERE sweep_id=?) GROUP BY run_id) m"
            " ON m.run_id = p.run_id AND m.seq = p.seq WHERE p.rowid <= ?",
            (self.sweep_id, self.replayed),
        ).fetchall()
        values = ((r, n, _obj(m).get(metric)) for r, n, m in rows)
        return {r: (n, v) for r, n, v in values if isinstance(v, (int, float))}

    def curve(self, run_id: str) -> list[Progress]:
        """A trial's stored curve up to the replay (later points come through `poll`)."""
        return stored_curve(self.store, run_id, self.replayed)

    def trials(self) -> list[Trial]:
        rows = self.store.db.execute(
            "SELECT id, idx, seed, point, status FROM runs WHERE sweep_id=? ORDER BY idx",
            (self.sweep_id,),
        ).fetchall()
        return [Trial(r[0], r[1], r[2], _obj(r[3]), r[4]) for r in rows]

    def poll(self) -> Update:
        """What was committed since the last poll, read in one read transaction: one
        snapshot of the store. Read statement by statement, a runner could commit between
        two of them, and a trial's curve points came before its start."""
        db = self.store.db
        if db.in_transaction:  # the caller's own transaction is the snapshot
            return self._poll()
        db.execute("BEGIN")  # deferred: a read takes no lock a writer waits on (WAL)
        try:
            return self._poll()
        finally:
            if db.in_transaction:
                db.execute("COMMIT")

    def _poll(self) -> Update:
        sweep = self.store.sweep(self.sweep_id)
        db = self.store.db
        states = db.execute(
            "SELECT id, idx, status FROM runs WHERE sweep_id=? ORDER BY idx", (self.sweep_id,)
        ).fetchall()
        joined = not self.polled or any(run_id not in self.index for run_id, _, _ in states)
        self.polled = True
        started, ended = [], []
        for run_id, idx, status in states:
            before = self.status.get(run_id, "pending")
            self.index[run_id] = idx
            self.status[run_id] = status
            if status == before or status == "pending":
                continue
            if before in ("pending", "cancelled") or status == "running":
                started.append(run_id)  # a first start, or a fresh one after a reset
            if status != "running":
                ended.append(run_id)
        rows = self._rows(set(started) | set(ended))
        events: list[Event] = [_started(rows[r]) for r in started if r in rows]
        events += self._new_points()
        events += [_ended(rows[r]) for r in ended if r in rows]
        n, sid = sweep.n_runs, self.sweep_id
        return Update(
            sweep,
            [SweepEvent(sid, self.index[e.run_id], n, e) for e in events],
            self._done_by_runner(sweep),
            self._neighbours(sweep) if sweep.running else (),
            self.trials() if joined else None,
        )

    def _done_by_runner(self, sweep: SweepRow) -> int:
        if sweep.runner_started is None:
            return 0
        (n,) = self.store.db.execute(
            "SELECT COUNT(*) FROM runs WHERE sweep_id=? AND ended_at >= ?"
            " AND status IN ('finished', 'diverged', 'failed', 'pruned')",
            (self.sweep_id, sweep.runner_started),
        ).fetchone()
        return n

    def _neighbours(self, sweep: SweepRow) -> tuple[tuple[str, str], ...]:
        """Other sweeps training on this host now, with their devices: they compete for
        the same cores or GPU, so each one's speed (and time budgets) suffer."""
        rows = self.store.db.execute(
            "SELECT DISTINCT s.id, r.device FROM sweeps s JOIN runs r ON r.sweep_id = s.id"
            " WHERE s.status='running' AND s.id != ? AND s.host IS ? AND s.heartbeat > ?"
            " AND r.status='running'",
            (self.sweep_id, sweep.host, time.time() - STALE_S),
        ).fetchall()
        return tuple((sid, device or "") for sid, device in rows)

    def _rows(self, run_ids: set[str]) -> dict[str, dict]:
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        cursor = self.store.db.execute(
            f"SELECT {LIGHT_RUN_COLUMNS} FROM runs WHERE id IN ({marks})", tuple(run_ids)
        )
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor}

    def _new_points(self) -> list[Progress]:
        # By rowid alone: a range read of what was added since, whatever the sweep's size
        # (a join on the sweep's runs made sqlite walk every stored point of the sweep).
        rows = self.store.db.execute(
            "SELECT rowid, run_id, epoch, step, samples, elapsed_s, train_loss, metrics,"
            " end_of_epoch FROM points WHERE rowid > ? ORDER BY rowid",
            (self.last_point,),
        ).fetchall()
        events = []
        for rowid, run_id, epoch, step, samples, elapsed, loss, metrics, eoe in rows:
            self.last_point = rowid
            if run_id not in self.index:
                continue  # another sweep's point
            try:
                values = json.loads(metrics)
            except ValueError:
                continue  # a damaged point: the rest of the curve stays readable
            events.append(Progress(run_id, epoch, step, samples, elapsed, loss, values, bool(eoe)))
        return events


def stored_curve(store: Store, run_id: str, upto: int) -> list[Progress]:
    """A trial's curve points with rowid <= `upto`, as Progress events, in order."""
    rows = store.db.execute(
        "SELECT epoch, step, samples, elapsed_s, train_loss, metrics, end_of_epoch"
        " FROM points WHERE run_id=? AND rowid <= ? ORDER BY seq",
        (run_id, upto),
    ).fetchall()
    return [
        Progress(run_id, e, st, n, t, loss, _obj(m), bool(eoe))
        for e, st, n, t, loss, m, eoe in rows
    ]


def _obj(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _started(row: dict) -> RunStarted:
    env = _obj(row["env"])
    return RunStarted(
        row["id"],
        _obj(row["config"]),
        row["device"] or "",
        row["device_name"] or "",
        row["n_params"] or 0,
        env.pop("sizes", None) or {},
        tuple(env.pop("notes", None) or ()),
        env,
    )


def _ended(row: dict) -> Finished | Failed:
    if row["status"] == "failed":
        return Failed(row["id"], row["reason"])
    return Finished(
        row["id"],
        row["status"],
        row["epochs_done"] or 0.0,
        row["steps"] or 0,
        row["samples"] or 0,
        row["elapsed_s"] or 0.0,
        row["wall_s"] or 0.0,
        _obj(row["final"]),
        _obj(row["best"]),
        row["best_epoch"],
        _obj(row["test"]),
        row["reason"],
    )
