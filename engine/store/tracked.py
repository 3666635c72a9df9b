"""Runs that a user's own script writes (`hypertui.init`): one run per script, a group of
them one sweep.

A script is the only writer of its run row, but the runs of one group may come from several
scripts at once (three seeds in three terminals), so each run keeps its own pid and
heartbeat, and the group's sweep reads `running` while any of them lives. The sweep's
`swept` fields are the config keys whose values differ between its runs, recomputed as each
run joins: runs are compared by them, with mean ± std over the rest (the seed).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.ids import new_id
from hypertui.engine.core.records import SCRIPT
from hypertui.engine.store.liveness import is_live
from hypertui.engine.store.store import Store
from hypertui.engine.store.transaction import Transaction

KILLED = "the script stopped without ending its run (killed, or its machine went down)"


@dataclass(frozen=True)
class Joined:
    sweep_id: str
    idx: int  # the run's place in its group
    metric: str | None  # the group's ranking metric, once one is known
    mode: str | None  # "min" or "max"
    skips_before: int  # skip requests made before this run joined: none of them is for it


def join(
    store: Store,
    run_id: str,
    group: str,
    config: dict[str, Any],
    seed: int,
    metric: str | None,
    mode: str | None,
    env: dict[str, Any],
    problem: str = SCRIPT,
    description: str = "runs of your own script",
) -> Joined:
    """Add a running run to its group's sweep (made on the group's first run), in one
    transaction: two scripts of one group started at once find one sweep."""
    now, pid, host = time.time(), os.getpid(), socket.gethostname()
    db = store.db
    with Transaction(db, store.path):
        if db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone():
            raise HypertuiError(f"run {run_id} exists already in {store.path}; give another id")
        row = db.execute(
            "SELECT id, options, skip_runs FROM sweeps WHERE preset=? AND problem=?"
            " ORDER BY created_at DESC LIMIT 1",
            (group, problem),
        ).fetchone()
        if row is None:
            sweep_id, options, skips = new_id(8), {}, ""
            db.execute(
                "INSERT INTO sweeps (id, preset, problem, description, swept, created_at,"
                " updated_at, status, options) VALUES (?,?,?,?, '[]', ?,?, 'running', '{}')",
                (sweep_id, group, problem, description, now, now),
            )
        else:
            sweep_id, options, skips = row[0], _object(row[1]), row[2] or ""
            _interrupt_dead(db, sweep_id)
        if metric and not options.get("metric"):  # the group's first metric stays its metric
            options = {**options, "metric": metric, "mode": mode}
        live = db.execute(
            "SELECT 1 FROM runs WHERE sweep_id=? AND status='running'", (sweep_id,)
        ).fetchone()
        db.execute(
            "UPDATE sweeps SET status='running', pid=?, host=?, heartbeat=?, options=?,"
            " updated_at=?, error='', runner_started=?, paused=0"
            + ("" if live else ", control='', paused_s=0")  # an old cancel is not for it
            + " WHERE id=?",
            (pid, host, now, json.dumps(options), now, now, sweep_id),
        )
        (idx,) = db.execute(
            "SELECT COALESCE(MAX(idx), -1) + 1 FROM runs WHERE sweep_id=?", (sweep_id,)
        ).fetchone()
        db.execute(
            "INSERT INTO runs (id, sweep_id, idx, seed, config, point, status, pid, host,"
            " heartbeat, started_at, env, git_rev) VALUES (?,?,?,?,?, '{}', 'running',"
            " ?,?,?,?,?,?)",
            (run_id, sweep_id, idx, seed, json.dumps(config), pid, host, now, now,
             json.dumps(env), env.get("git_rev")),
        )  # fmt: skip
        _update_swept(db, sweep_id)
    return Joined(
        sweep_id, idx, options.get("metric"), options.get("mode"), len(str(skips).split())
    )


def rejoin(store: Store, sweep_id: str, run_id: str) -> None:
    """A run stored before goes on (a log folder imported again): running, in this process."""
    now, pid, host = time.time(), os.getpid(), socket.gethostname()
    with Transaction(store.db, store.path):
        store.db.execute(
            "UPDATE runs SET status='running', reason='', pid=?, host=?, heartbeat=? WHERE id=?",
            (pid, host, now, run_id),
        )
        store.db.execute(
            "UPDATE sweeps SET status='running', pid=?, host=?, heartbeat=?, updated_at=?"
            " WHERE id=?",
            (pid, host, now, now, sweep_id),
        )


def set_metric(store: Store, sweep_id: str, metric: str, mode: str) -> None:
    """The group's ranking metric, chosen from the first values logged (unless a run named
    one first)."""
    with Transaction(store.db, store.path):
        (text,) = store.db.execute("SELECT options FROM sweeps WHERE id=?", (sweep_id,)).fetchone()
        options = _object(text)
        if not options.get("metric"):
            options = {**options, "metric": metric, "mode": mode}
            store.db.execute(
                "UPDATE sweeps SET options=? WHERE id=?", (json.dumps(options), sweep_id)
            )


def beat(store: Store, sweep_id: str, run_id: str, paused: bool, paused_s: float) -> None:
    """The script lives (and holds on a pause, or not)."""
    now = time.time()
    with Transaction(store.db, store.path):
        store.db.execute("UPDATE runs SET heartbeat=? WHERE id=?", (now, run_id))
        store.db.execute(
            "UPDATE sweeps SET heartbeat=?, pid=?, host=?, paused=?, paused_s=? WHERE id=?",
            (now, os.getpid(), socket.gethostname(), int(paused), paused_s, sweep_id),
        )


def progress(store: Store, run_id: str, **summary: Any) -> None:
    """What a running run reached so far (the runs columns epochs_done ... test)."""
    columns = ", ".join(f"{name}=?" for name in summary)
    values = [json.dumps(v) if isinstance(v, dict) else v for v in summary.values()]
    with Transaction(store.db, store.path):
        store.db.execute(
            f"UPDATE runs SET {columns} WHERE id=? AND status='running'", (*values, run_id)
        )


def end(store: Store, sweep_id: str, run_id: str, status: str, reason: str, **summary: Any) -> None:
    """The run's end and what it reached (`summary`: the runs columns epochs_done ... test,
    notes); the group's sweep ends with its last running run."""
    now = time.time()
    db = store.db
    with Transaction(db, store.path):
        (env,) = db.execute("SELECT env FROM runs WHERE id=?", (run_id,)).fetchone()
        notes = summary.pop("notes", [])
        env = {**_object(env), "notes": notes}
        columns = ", ".join(f"{name}=?" for name in summary)
        values = [json.dumps(v) if isinstance(v, dict) else v for v in summary.values()]
        db.execute(
            f"UPDATE runs SET status=?, reason=?, ended_at=?, heartbeat=?, env=?, {columns}"
            " WHERE id=?",
            (status, reason, now, now, json.dumps(env), *values, run_id),
        )
        _interrupt_dead(db, sweep_id)
        running = db.execute(
            "SELECT 1 FROM runs WHERE sweep_id=? AND status='running'", (sweep_id,)
        ).fetchone()
        if not running:
            db.execute(
                "UPDATE sweeps SET status=CASE WHEN control='cancel' THEN 'cancelled'"
                " ELSE 'done' END, pid=NULL, paused=0, updated_at=? WHERE id=?",
                (now, sweep_id),
            )


def _interrupt_dead(db, sweep_id: str) -> None:
    """Runs left `running` by a script that is gone: `interrupted`, for good."""
    rows = db.execute(
        "SELECT id, pid, host, heartbeat FROM runs WHERE sweep_id=? AND status='running'"
        " AND pid IS NOT NULL",
        (sweep_id,),
    ).fetchall()
    for run_id, pid, host, heartbeat in rows:
        if not is_live({"id": None, "pid": pid, "host": host, "heartbeat": heartbeat}):
            db.execute(
                "UPDATE runs SET status='interrupted', reason=?, ended_at=? WHERE id=?",
                (KILLED, heartbeat, run_id),
            )


def _update_swept(db, sweep_id: str) -> None:
    """The keys whose values differ between the group's runs (seed aside) are its swept
    fields; each run's point is its values of them."""
    rows = db.execute("SELECT id, config FROM runs WHERE sweep_id=? ORDER BY idx", (sweep_id,))
    configs = {run_id: _object(text) for run_id, text in rows.fetchall()}
    keys = list(dict.fromkeys(k for c in configs.values() for k in c if k != "seed"))
    swept = [
        k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs.values()}) > 1
    ]
    db.execute("UPDATE sweeps SET swept=? WHERE id=?", (json.dumps(swept), sweep_id))
    db.executemany(
        "UPDATE runs SET point=? WHERE id=?",
        [(json.dumps({k: c.get(k) for k in swept}), run_id) for run_id, c in configs.items()],
    )


def _object(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
