"""The run store: one SQLite file (stdlib sqlite3, WAL) holding sweeps, runs and curves.

A sweep's trials are inserted as `pending` rows when it is created, so a killed process
leaves a store that says exactly what is left to do. Each engine report (once per epoch,
or every few seconds inside long epochs) is one short transaction; nothing is written per
step. WAL lets a TUI and a CLI read while another process writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Finished, Progress, RunStarted
from hypertui.engine.core.paths import checkpoints_dir
from hypertui.engine.core.records import (
    FINAL_STATUSES,
    OWN_LOOP_PROBLEMS,
    SCRIPT,
    TENSORBOARD,
    RunRow,
    SweepRow,
)
from hypertui.engine.store.liveness import is_live
from hypertui.engine.store.schema import POINT_COLUMNS, SWEEP_COLUMNS, upgrade
from hypertui.engine.store.transaction import Transaction, damaged, is_damage, read_error

TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,31}")  # what `hypertui tag` takes
MIN_ID_PREFIX = 4  # a sweep or run id is found from this many of its first characters
UI_LOCK_WAIT_S = 0.25  # a viewer waits this long for the write lock, then says "busy"
WRITER_LOCK_WAIT_S = 60.0  # a runner waits this long before it gives up a write


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The project's git revision when it runs from a checkout, else None."""
    root = Path(__file__).resolve().parents[2]  # engine/store/store.py -> the checkout
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


class Store:
    """A connection to one store file; make one per thread or process.

    Readers never take the write lock: opening, listing and following a sweep only read
    (WAL), so a viewer never slows a runner, and a read-only copy of a store can be
    browsed. `create=False` (read commands) refuses a path that does not exist instead of
    creating an empty store there. `lock_wait_s` bounds how long a write waits for another
    process's lock: short for the UI, long for runners.
    """

    def __init__(
        self, path: Path | str, create: bool = True, lock_wait_s: float = WRITER_LOCK_WAIT_S
    ):
        self.path = Path(path)
        self.damaged: list[str] = []  # rows skipped on reading, one line each
        try:
            self.path.exists()
        except OSError as exc:  # a name too long, a loop of links
            raise HypertuiError(f"run store {str(path)[:80]!r}…: {exc.strerror or exc}") from None
        if not self.path.exists() and not create:
            raise HypertuiError(
                f"no run store at {self.path}: check --store or $HYPERTUI_HOME "
                "(a store is created by `hypertui run`)"
            )
        if self.path.exists() and not self.path.is_file():
            raise HypertuiError(f"run store {self.path} is not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HypertuiError(f"cannot create the run store's folder: {exc}") from None
        try:
            self.db = self._connect(lock_wait_s)
            upgrade(self.db, self.path, create, self.readonly)
        except sqlite3.DatabaseError as exc:
            # The header is checked by sqlite, never by reading the file here: closing any
            # other descriptor of the file drops this process's sqlite locks (POSIX), and
            # a viewer closing its connection then deleted a live runner's WAL.
            if "not a database" in str(exc):
                raise HypertuiError(
                    f"{self.path} is not a hypertui run store (not an SQLite database,"
                    " or a damaged one)"
                ) from None
            if is_damage(exc):
                raise damaged(self.path, str(exc)) from None
            raise HypertuiError(f"{self.path} is not a usable hypertui run store: {exc}") from None

    def _connect(self, lock_wait_s: float) -> sqlite3.Connection:
        writable = os.access(self.path.parent, os.W_OK) and (
            not self.path.exists() or os.access(self.path, os.W_OK)
        )
        self.readonly = not writable
        if writable:
            db = sqlite3.connect(self.path, timeout=lock_wait_s, isolation_level=None)
        else:  # a read-only copy: no -wal/-shm can be made beside it
            uri = f"{self.path.resolve().as_uri()}?immutable=1"
            db = sqlite3.connect(uri, uri=True, timeout=lock_wait_s, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _tx(self):
        return Transaction(self.db, self.path)

    def _query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """A read's rows: all of them, or one line (StoreDamaged) when the file is damaged.

        Text that is not UTF-8 (a damaged overflow page, a hand edit) comes back as
        `Garbled`, so that the row's reader skips that row alone. A page that sqlite cannot
        walk stops the read instead: no query can tell which rows it held, and a listing or
        an export that quietly lacked them would mislead; `sqlite3 .recover` salvages them.
        """
        try:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "decode" not in str(exc):
                    raise
            self.db.text_factory = _text_or_garbled
            try:
                return self.db.execute(sql, params).fetchall()
            finally:
                self.db.text_factory = str
        except sqlite3.DatabaseError as exc:
            raise read_error(self.path, exc) from None

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------

    def create_sweep(
        self,
        sweep_id: str,
        preset: str,
        problem: str,
        description: str,
        swept: list[str],
        trials: Iterable[tuple[str, int, int, dict, dict]],  # run_id, idx, seed, config, point
        preset_toml: str = "",
        options: dict[str, Any] | None = None,
    ) -> None:
        now = time.time()
        with self._tx():
            self.db.execute(
                "INSERT INTO sweeps (id, preset, problem, description, swept, preset_toml,"
                " created_at, updated_at, status, options) VALUES (?,?,?,?,?,?,?,?, 'pending', ?)",
                (
                    sweep_id,
                    preset,
                    problem,
                    description,
                    _json(swept),
                    preset_toml,
                    now,
                    now,
                    _json(options or {}),
                ),
            )
            self.db.executemany(
                "INSERT INTO runs (id, sweep_id, idx, seed, config, point, status)"
                " VALUES (?,?,?,?,?,?, 'pending')",
                [(r, sweep_id, i, s, _json(c), _json(p)) for r, i, s, c, p in trials],
            )

    def add_runs(self, sweep_id: str, trials: Iterable[tuple[str, int, int, dict, dict]]) -> None:
        """Record more pending runs of a sweep (a learned search's next batch), as
        create_sweep records the first: run_id, idx, seed, config, point."""
        with self._tx():
            self.db.executemany(
                "INSERT INTO runs (id, sweep_id, idx, seed, config, point, status)"
                " VALUES (?,?,?,?,?,?, 'pending')",
                [(r, sweep_id, i, s, _json(c), _json(p)) for r, i, s, c, p in trials],
            )
            self.db.execute("UPDATE sweeps SET updated_at=? WHERE id=?", (time.time(), sweep_id))

    def claim_sweep(self, sweep_id: str, retry_failed: bool = False) -> list[RunRow]:
        """Mark a sweep as run by this process; return its unfinished runs, reset.

        A run left `running` by a killed process, or `cancelled`, is reset to `pending` and
        its partial curve deleted, so resuming never duplicates a point or a run; with
        `retry_failed`, so is a `failed` one (a transient out-of-memory, say). A sweep whose
        runner still beats its heartbeat cannot be claimed twice. Requests already made
        (a pause pressed before the runner started) stay and are honoured.
        """
        sweep = self.sweep(sweep_id)
        refuse_runner(sweep)
        with self._tx():
            (status, heartbeat, pid, host) = self.db.execute(
                "SELECT status, heartbeat, pid, host FROM sweeps WHERE id=?", (sweep.id,)
            ).fetchone()
            sweep_now = {"id": sweep.id, "heartbeat": heartbeat, "pid": pid, "host": host}
            if status == "running" and is_live(sweep_now):
                raise HypertuiError(
                    f"sweep {sweep.id} is being run by process {pid} on {host}; "
                    f"`hypertui attach {sweep.id}` follows it"
                )
            redo = ("running", "cancelled", "failed") if retry_failed else ("running", "cancelled")
            stale = self.db.execute(
                f"SELECT id FROM runs WHERE sweep_id=? AND status IN ({_marks(redo)})",
                (sweep.id, *redo),
            ).fetchall()
            self._reset([r for (r,) in stale])
            now = time.time()
            self.db.execute(
                "UPDATE sweeps SET status='running', pid=?, host=?, heartbeat=?,"
                " runner_started=?, paused=0, paused_s=0, error='', updated_at=? WHERE id=?",
                (os.getpid(), socket.gethostname(), now, now, now, sweep.id),
            )
        return [r for r in self.runs(sweep.id) if r.status == "pending"]

    def launched(self, sweep_id: str, pid: int) -> None:
        """A runner process was started for this pending sweep: record it, with a first
        heartbeat, so that viewers can tell when it dies before it claims the sweep
        (loading torch takes seconds; a kill or the OOM killer may come first)."""
        with self._tx():
            self.db.execute(
                "UPDATE sweeps SET pid=?, host=?, heartbeat=? WHERE id=? AND status='pending'",
                (pid, socket.gethostname(), time.time(), sweep_id),
            )

    def failed_to_start(self, sweep_id: str, error: str) -> None:
        """A runner that stopped before it claimed the sweep: say why on the sweep (left
        alone if another runner has it)."""
        with self._tx():
            self.db.execute(
                "UPDATE sweeps SET status='interrupted', error=? WHERE id LIKE ?"
                " AND status='pending'",
                (error, sweep_id + "%"),
            )

    def beat(self, sweep_id: str, paused: bool, paused_s: float) -> None:
        """The runner's heartbeat: it is alive, whether it holds on a pause, and for how
        many seconds in all it has held."""
        with self._tx():
            self.db.execute(
                "UPDATE sweeps SET heartbeat=?, paused=?, paused_s=? WHERE id=? AND pid=?",
                (time.time(), int(paused), paused_s, sweep_id, os.getpid()),
            )

    def set_options(self, sweep_id: str, options: dict[str, Any]) -> None:
        """How the sweep runs from now on (a resume can change device or population)."""
        with self._tx():
            self.db.execute("UPDATE sweeps SET options=? WHERE id=?", (_json(options), sweep_id))

    def set_device(self, sweep_id: str, device: str, retry_failed: bool = False) -> None:
        """Train the sweep's unfinished runs on another device (a resume on a host
        without the GPU it was created for), and its failed ones too when they are to be
        retried; the runs that stay as they are keep the device they used."""
        kept = [s for s in FINAL_STATUSES if not (retry_failed and s == "failed")]
        with self._tx():
            rows = self.db.execute(
                f"SELECT id, config FROM runs WHERE sweep_id=? AND status NOT IN ({_marks(kept)})",
                (sweep_id, *kept),
            ).fetchall()
            for run_id, config in rows:
                self.db.execute(
                    "UPDATE runs SET config=? WHERE id=?",
                    (_json({**json.loads(config), "device": device}), run_id),
                )

    def request(self, sweep_id: str, action: str, run_id: str = "") -> None:
        """A viewer's request, read by the runner between steps: pause, resume, skip,
        cancel; or `clear` as a runner is launched for a resume: no old request holds, and
        the sweep reads `pending` (starting) until the runner claims it. A skip names the
        run it ends (one member of a population leaves it), or none: the running unit."""
        sql = {
            "pause": "control='pause'",
            "resume": "control=''",
            "clear": "control='', paused=0, status='pending', pid=NULL, error=''",
            "cancel": "control='cancel'",
            "skip": "skip_seq=skip_seq+1, skip_runs=skip_runs || ' ' || ?",
        }[action]
        args = (run_id or "*", sweep_id) if action == "skip" else (sweep_id,)
        with self._tx():
            self.db.execute(f"UPDATE sweeps SET {sql} WHERE id=?", args)

    def controls(self, sweep_id: str) -> tuple[str, list[str]]:
        """What viewers asked of the sweep: (control, what each skip request so far named:
        a run id, or * for the running unit)."""
        rows = self._query("SELECT control, skip_runs FROM sweeps WHERE id=?", (sweep_id,))
        if not rows:
            return ("cancel", [])
        control, skips = rows[0]
        return control, str(skips).split()

    def delete_sweep(self, sweep_id: str) -> None:
        """A sweep, its runs and curves, gone for good (refused while it runs)."""
        sweep = self.sweep(sweep_id)
        if sweep.running:
            raise HypertuiError(
                f"sweep {sweep.id} is running; cancel it first (`hypertui cancel {sweep.id}`)"
            )
        with self._tx():
            self.db.execute(
                "DELETE FROM points WHERE run_id IN (SELECT id FROM runs WHERE sweep_id=?)",
                (sweep.id,),
            )
            self.db.execute("DELETE FROM runs WHERE sweep_id=?", (sweep.id,))
            self.db.execute("DELETE FROM sweeps WHERE id=?", (sweep.id,))
        shutil.rmtree(checkpoints_dir(sweep.id), ignore_errors=True)  # its weights too

    def label(
        self,
        sweep_id: str,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        note: str | None = None,
        name: str | None = None,
    ) -> SweepRow:
        """Tag a sweep, untag it, write its note or give it a name ("" takes the note or
        the name away); every value is checked before anything is stored."""
        sweep = self.sweep(sweep_id)
        add, remove = list(add), set(remove)
        for tag in [*add, *remove]:
            if not TAG.fullmatch(tag):
                raise HypertuiError(
                    f"tag {tag!r}: 1-32 letters, digits and _ . : + - (starting with a letter"
                    " or digit)"
                )
        for what, text, most in (("note", note, 500), ("name", name, 64)):
            if text is not None and (len(text) > most or any(_control(c) for c in text)):
                raise HypertuiError(f"{what}: at most {most} characters, no control characters")
        tags = [t for t in dict.fromkeys([*sweep.tags, *add]) if t not in remove]
        with self._tx():
            self.db.execute(
                "UPDATE sweeps SET tags=?, note=?, name=? WHERE id=?",
                (
                    _json(tags),
                    sweep.note if note is None else note.strip(),
                    sweep.name if name is None else name.strip(),
                    sweep.id,
                ),
            )
        return self.sweep(sweep.id)

    def reset_failed(self, sweep_id: str) -> None:
        """Failed trials back to `pending`: the next runner tries them again."""
        with self._tx():
            self._reset(self._ids(sweep_id, "failed"))

    def reset_running(self, sweep_id: str) -> None:
        """Running trials back to `pending`, partial curves deleted (a unit that hit a
        HypertuiError, such as missing data, runs afresh once the user fixed it)."""
        with self._tx():
            self._reset(self._ids(sweep_id, "running"))

    def reset_runs(self, run_ids: Iterable[str]) -> None:
        """These runs back to `pending`, partial curves deleted (a unit retried on Ray)."""
        with self._tx():
            self._reset(list(run_ids))

    def _ids(self, sweep_id: str, status: str) -> list[str]:
        rows = self.db.execute(
            "SELECT id FROM runs WHERE sweep_id=? AND status=?", (sweep_id, status)
        ).fetchall()
        return [r for (r,) in rows]

    def _reset(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self.db.execute("DELETE FROM points WHERE run_id=?", (run_id,))
            self.db.execute(
                "UPDATE runs SET status='pending', reason='', started_at=NULL, ended_at=NULL,"
                " final=NULL, best=NULL, test=NULL, analysis=NULL, epochs_done=NULL, steps=NULL,"
                " samples=NULL, elapsed_s=NULL, wall_s=NULL, best_epoch=NULL WHERE id=?",
                (run_id,),
            )

    def interrupt_running(self, sweep_id: str) -> None:
        """Trials still running when their process stops (Ctrl-C, cancel): `cancelled`,
        rerun on resume."""
        with self._tx():
            self.db.execute(
                "UPDATE runs SET status='cancelled', reason='interrupted', ended_at=?"
                " WHERE sweep_id=? AND status='running'",
                (time.time(), sweep_id),
            )

    def end_sweep(self, sweep_id: str, status: str, error: str = "") -> None:
        with self._tx():
            self.db.execute(
                "UPDATE sweeps SET status=?, pid=NULL, paused=0, error=?, updated_at=? WHERE id=?",
                (status, error, time.time(), sweep_id),
            )

    def run_started(self, event: RunStarted) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE runs SET status='running', device=?, device_name=?, n_params=?, env=?,"
                " git_rev=?, started_at=? WHERE id=?",
                (
                    event.device,
                    event.device_name,
                    event.n_params,
                    _json({**event.env, "notes": list(event.notes), "sizes": event.sizes}),
                    git_revision(),
                    time.time(),
                    event.run_id,
                ),
            )

    def add_points(self, events: list[Progress]) -> None:
        """Append curve points (one transaction for the batch)."""
        if not events:
            return
        with self._tx():
            seqs: dict[str, int] = {}
            rows = []
            for e in events:
                if e.run_id not in seqs:
                    (last,) = self.db.execute(
                        "SELECT COALESCE(MAX(seq), -1) FROM points WHERE run_id=?", (e.run_id,)
                    ).fetchone()
                    seqs[e.run_id] = last
                seqs[e.run_id] += 1
                rows.append(
                    (
                        e.run_id,
                        seqs[e.run_id],
                        e.epoch,
                        e.step,
                        e.samples,
                        e.elapsed_s,
                        e.train_loss,
                        _json(e.metrics),
                        int(e.end_of_epoch),
                    )
                )
            self.db.executemany(
                f"INSERT INTO points ({POINT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows
            )

    def run_ended(self, event: Finished) -> None:
        with self._tx():
            if event.notes:  # after the start's notes (data loading), in the run's env
                (env,) = self.db.execute(
                    "SELECT env FROM runs WHERE id=?", (event.run_id,)
                ).fetchone()
                env = json.loads(env) if env else {}
                env["notes"] = [*env.get("notes", []), *event.notes]
                self.db.execute("UPDATE runs SET env=? WHERE id=?", (_json(env), event.run_id))
            self.db.execute(
                "UPDATE runs SET status=?, reason=?, ended_at=?, epochs_done=?, steps=?,"
                " samples=?, elapsed_s=?, wall_s=?, best_epoch=?, final=?, best=?, test=?,"
                " analysis=? WHERE id=?",
                (
                    event.status,
                    event.reason,
                    time.time(),
                    event.epochs_done,
                    event.steps,
                    event.samples,
                    event.elapsed_s,
                    event.wall_s,
                    event.best_epoch,
                    _json(event.final),
                    _json(event.best),
                    _json(event.test),
                    _json(event.analysis),
                    event.run_id,
                ),
            )

    def run_failed(self, run_id: str, reason: str) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE runs SET status='failed', reason=?, ended_at=? WHERE id=?",
                (reason, time.time(), run_id),
            )

    # -- reading -------------------------------------------------------------------------

    def sweeps(self, limit: int | None = None) -> list[SweepRow]:
        """Sweeps, newest first (a damaged row is skipped and named in `damaged`)."""
        query = f"SELECT {SWEEP_COLUMNS} FROM sweeps ORDER BY created_at DESC"
        rows = self._query(query + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
        counts: dict[str, dict[str, int]] = {}
        for sid, status, n in self._query(
            "SELECT sweep_id, status, COUNT(*) FROM runs GROUP BY sweep_id, status"
        ):
            counts.setdefault(sid, {})[status] = n
        sweeps = (self._sweep_row(r, counts.get(r[0], {})) for r in rows)
        return [s for s in sweeps if s is not None]

    def sweep(self, sweep_id: str) -> SweepRow:
        """A sweep by id or by a unique prefix of it."""
        row = self._find("sweeps", "sweep", sweep_id, SWEEP_COLUMNS)
        counts = dict(
            self._query(
                "SELECT status, COUNT(*) FROM runs WHERE sweep_id=? GROUP BY status", (row[0],)
            )
        )
        sweep = self._sweep_row(row, counts)
        if sweep is None:  # said here, not again among the rows skipped
            reason = self.damaged.pop().removesuffix("; skipped")
            raise HypertuiError(f"{self.path} holds a damaged sweep: {reason}")
        return sweep

    def _find(self, table: str, what: str, key: str, columns: str = "*") -> sqlite3.Row:
        rows = self._query(f"SELECT {columns} FROM {table} WHERE id=?", (key,))
        if rows:
            return rows[0]
        if len(key.strip()) < MIN_ID_PREFIX:  # `delete "$ID" --yes` with an empty $ID
            raise HypertuiError(
                f"{what} id {key!r} is too short: give at least {MIN_ID_PREFIX} of its "
                "characters (`hypertui runs` lists them)"
            )
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = self._query(
            f"SELECT {columns} FROM {table} WHERE id LIKE ? ESCAPE '\\' LIMIT 6",
            (escaped + "%",),
        )
        if len(matches) > 1:
            ids = ", ".join(m[0] for m in matches[:5])
            raise HypertuiError(f"{what} id {key!r} is ambiguous: it starts {ids}…; type more")
        if not matches:
            lister = "hypertui runs" if what == "sweep" else "hypertui runs SWEEP_ID"
            raise HypertuiError(f"no {what} {key!r} in {self.path}; `{lister}` lists them")
        return matches[0]

    def latest_sweep(self) -> SweepRow:
        rows = self.sweeps(limit=1)
        if not rows:
            raise HypertuiError(f"no sweeps in {self.path} yet; try `hypertui run quickstart`")
        return rows[0]

    def running_sweeps(self) -> list[SweepRow]:
        """Sweeps a live runner is training now, newest first."""
        return [s for s in self.sweeps() if s.running]

    def _sweep_row(self, r: sqlite3.Row, counts: dict[str, int]) -> SweepRow | None:
        """A sweep's row as a SweepRow; None (named in `damaged`) when a field it runs by is
        unreadable. A creation or update time that is not a number is only shown, so it
        reads as blank (None) rather than hide the sweep."""
        values = dict(zip(r.keys(), r, strict=True))
        try:
            if any(type(v) is Garbled for v in values.values()):
                raise ValueError("text that is not UTF-8")
            values["swept"] = json.loads(values["swept"])
            values["options"] = _loads(values["options"], {})
            if not isinstance(values["swept"], list) or not isinstance(values["options"], dict):
                raise ValueError("not a list/dict")
            values["tags"] = _loads(values["tags"], [])
            if not isinstance(values["tags"], list):
                values["tags"] = []  # only shown: a damaged list of tags hides nothing
            for name in SWEEP_NUMBERS:
                _check_number(name, values[name])
        except ValueError as exc:
            self.damaged.append(f"sweep {values['id']}: unreadable ({exc}); skipped")
            return None
        for name in ("created_at", "updated_at"):
            if not _is_number(values[name]):
                reason = _not_a_number(name, values[name])
                self.damaged.append(f"sweep {values['id']}: {reason} (shown blank)")
                values[name] = None
        values["paused"] = bool(values["paused"])
        if values["status"] == "running" and not is_live(values):
            values["status"] = "interrupted"  # resumable
        elif values["status"] == "pending" and values["pid"] is not None and not is_live(values):
            values["status"] = "interrupted"  # its launched runner died before the claim
        return SweepRow(counts=counts, **values)

    def runs(self, sweep_id: str, analysis: bool = True) -> list[RunRow]:
        """A sweep's runs in trial order; `analysis=False` leaves out the per-run
        predictions (the heaviest column) for views that only compare metrics."""
        columns = "*"
        if not analysis:
            names = [r[1] for r in self._query("PRAGMA table_info(runs)")]
            columns = ", ".join(n if n != "analysis" else "NULL AS analysis" for n in names)
        rows = self._query(f"SELECT {columns} FROM runs WHERE sweep_id=? ORDER BY idx", (sweep_id,))
        decode = _RowDecoder(own_loop=self._own_loop(sweep_id))
        runs = (self._run_row(r, decode) for r in rows)
        return [r for r in runs if r is not None]

    def _run_row(self, row: sqlite3.Row, decode: _RowDecoder | None = None) -> RunRow | None:
        try:
            return (decode or _RowDecoder())(row)
        except (ValueError, TypeError) as exc:
            self.damaged.append(f"run {row['id']}: unreadable ({exc}); skipped")
            return None

    def run(self, run_id: str) -> RunRow:
        """A run by id or by a unique prefix of it."""
        found = self._find("runs", "run", run_id)
        row = self._run_row(found, _RowDecoder(own_loop=self._own_loop(found["sweep_id"])))
        if row is None:  # said here, not again among the rows skipped
            reason = self.damaged.pop().removesuffix("; skipped")
            raise HypertuiError(f"{self.path} holds a damaged run: {reason}")
        return row

    def _own_loop(self, sweep_id: str) -> bool:
        """Whether a sweep's runs come from the user's own loop: their configs are the
        user's, with none of our fields' defaults filled in."""
        rows = self._query("SELECT problem FROM sweeps WHERE id=?", (sweep_id,))
        return bool(rows) and rows[0][0] in OWN_LOOP_PROBLEMS

    def points(self, run_id: str) -> list[dict[str, Any]]:
        """A run's curve points in order; a damaged one is skipped (named in `damaged`), so
        the rest of the curve stays readable."""
        rows = self._query(
            "SELECT seq, epoch, step, samples, elapsed_s, train_loss, metrics, end_of_epoch"
            " FROM points WHERE run_id=? ORDER BY seq",
            (run_id,),
        )
        points = []
        for s, e, st, n, t, tl, m, eoe in rows:
            try:
                for name, value in (("epoch", e), ("step", st), ("samples", n), ("elapsed_s", t)):
                    _check_number(name, value, none=False)
                _check_number("train_loss", tl)
                metrics = _metrics("metrics", json.loads(m) if type(m) is str else m)
            except (ValueError, TypeError) as exc:
                self.damaged.append(f"run {run_id}: curve point {s} unreadable ({exc}); skipped")
                continue
            points.append(
                {
                    "seq": s,
                    "epoch": e,
                    "step": st,
                    "samples": n,
                    "elapsed_s": t,
                    "train_loss": tl,
                    **metrics,
                    "end_of_epoch": bool(eoe),
                }
            )
        return points


@lru_cache(maxsize=1)
def config_defaults() -> dict[str, Any]:
    """Every Config field's default: a run stored before a field existed ran with it.
    (Imported on first use: a script that only tracks its runs never needs our Config.)"""
    from hypertui.engine.core.config import Config

    missing = dataclasses.MISSING
    return {f.name: f.default for f in dataclasses.fields(Config) if f.default is not missing}


JSON_COLUMNS = ("config", "point", "env", "final", "best", "test", "analysis")
METRIC_COLUMNS = ("final", "best", "test")  # JSON objects of metric name -> number
RUN_INTEGERS = ("idx", "seed")  # a run's place in its sweep: never NULL
RUN_NUMBERS = (
    "n_params", "started_at", "ended_at", "epochs_done", "steps", "samples", "elapsed_s",
    "wall_s", "best_epoch", "pid", "heartbeat",
)  # fmt: skip
SWEEP_NUMBERS = ("pid", "heartbeat", "runner_started", "skip_seq", "paused", "paused_s")


def refuse_runner(sweep: SweepRow) -> None:
    """A HypertuiError for a sweep no runner may train: its runs come from the user's
    script, or from TensorBoard logs."""
    if sweep.problem == SCRIPT:
        raise HypertuiError(
            f"sweep {sweep.id} holds the runs of your own script (group {sweep.preset!r});"
            " run the script again to add runs to it"
        )
    if sweep.problem == TENSORBOARD:
        raise HypertuiError(
            f"sweep {sweep.id} holds TensorBoard logs; `hypertui import-tb` their folder"
            " again to read what they gained"
        )


class Garbled(str):
    """Text the store held that is not UTF-8 (decoded with replacement characters)."""


def _text_or_garbled(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return Garbled(data.decode(errors="replace"))


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _not_a_number(name: str, value: Any) -> str:
    return f"{name} is {str(value)[:40]!r}, not a number"


def _check_number(name: str, value: Any, none: bool = True) -> None:
    if not (_is_number(value) or (none and value is None)):
        raise ValueError(_not_a_number(name, value))


def _metrics(name: str, value: Any) -> dict:
    """A JSON object of metrics, each a number (NaN and inf included) or null."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} is not a JSON object")
    for metric, number in value.items():
        _check_number(f"{name} {metric}", number)
    return value


class _RowDecoder:
    """Run rows to RunRows: columns map to fields by name, JSON columns are decoded ({} when
    NULL). A sweep's runs repeat a few texts, so each distinct text is decoded once, and a
    config once per text with its seed left out: the 10^4 runs of a sweep of 4 points
    differ in their seed alone (decoding every one of them took 0.4 s before training).

    A row with a value of the wrong kind (a metric or a seed stored as text, JSON that
    does not parse, text that is not UTF-8) raises ValueError: the store skips that row
    and names it, and every other row stays readable. A run is skipped whole rather than
    shown with a blank: its metrics feed the means, ranks and tests of the comparison,
    where a blank would pass for a run that never reported the metric.
    """

    def __init__(self, own_loop: bool = False):
        self.decoded: dict[tuple[str, str], dict] = {}  # (column, text) -> its value
        self.names: list[str] | None = None  # the columns, the same in every row
        self.own_loop = own_loop  # configs are the user's: no defaults of ours filled in

    def __call__(self, row: sqlite3.Row) -> RunRow:
        self.names = self.names or row.keys()
        values = dict(zip(self.names, row, strict=True))
        for name in JSON_COLUMNS:
            values[name] = self._object(name, values[name])
        for name in RUN_INTEGERS:
            if type(values[name]) is not int:
                raise ValueError(_not_a_number(name, values[name]))
        for name in RUN_NUMBERS:
            _check_number(name, values[name])
        if any(type(v) is Garbled for v in values.values()):
            raise ValueError("text that is not UTF-8")
        if values.get("pid") is not None and values["status"] == "running":
            if not is_live({"id": None, **values}):  # its script was killed
                values["status"] = "interrupted"
        return RunRow(**values)

    def _object(self, name: str, text: str | None) -> dict:
        key, seed = text or "", None
        if name == "config" and key.count('"seed":') == 1 and (found := _SEED.search(key)):
            key, seed = key[: found.start()] + key[found.end() :], int(found.group(1))
        key = (name, key)
        if key not in self.decoded:
            if type(text) is Garbled:
                raise ValueError(f"{name} is text that is not UTF-8")
            value = json.loads(text) if text else {}
            if not isinstance(value, dict):
                raise ValueError(f"{name} is not a JSON object")
            if name in METRIC_COLUMNS:
                _metrics(name, value)
            # A run stored before a config field existed ran with that field's default
            # (schedule and precision came later): every row gets every field.
            defaults = name == "config" and not self.own_loop
            self.decoded[key] = {**config_defaults(), **value} if defaults else value
        value = dict(self.decoded[key])  # each row its own dict: a caller may change it
        if seed is not None:
            value["seed"] = seed
        return value


_SEED = re.compile(r'"seed": (-?\d+)(?=[,}])')  # as json.dumps writes a config's seed


def _marks(values: tuple) -> str:
    return ",".join("?" * len(values))


def _control(c: str) -> bool:
    """A control character (C0, DEL, C1) or a format one (a bidi override, a zero-width
    joiner: text that shows other than it reads) has no place in a name or a note."""
    import unicodedata

    return unicodedata.category(c) in ("Cc", "Cf")
