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
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from engine.config import Config
from engine.errors import HypertuiError
from engine.events import Finished, Progress, RunStarted

SCHEMA_VERSION = 1
FINAL_STATUSES = ("finished", "diverged", "failed", "pruned")  # a resumed sweep never reruns these
UNFINISHED = ("pending", "running", "cancelled")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    preset TEXT NOT NULL,           -- preset name
    problem TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    swept TEXT NOT NULL,            -- JSON list of swept field names (seed excluded)
    preset_toml TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,           -- running | done | cancelled | interrupted
    pid INTEGER,                    -- the process running it, while running
    host TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    sweep_id TEXT NOT NULL REFERENCES sweeps(id),
    idx INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,           -- JSON of the resolved Config
    point TEXT NOT NULL,            -- JSON of the swept values
    status TEXT NOT NULL,           -- pending | running | finished | diverged | cancelled | failed
    reason TEXT NOT NULL DEFAULT '',
    device TEXT, device_name TEXT, n_params INTEGER, env TEXT, git_rev TEXT,
    started_at REAL, ended_at REAL,
    epochs_done REAL, steps INTEGER, samples INTEGER, elapsed_s REAL, wall_s REAL,
    best_epoch INTEGER,
    final TEXT, best TEXT, test TEXT, -- JSON metric dicts
    analysis TEXT,                  -- JSON: validation predictions or confusion matrix
    UNIQUE (sweep_id, idx)
);
CREATE TABLE IF NOT EXISTS points (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL, step INTEGER NOT NULL, samples INTEGER NOT NULL,
    elapsed_s REAL NOT NULL, train_loss REAL, metrics TEXT NOT NULL,
    end_of_epoch INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs (sweep_id, idx);
"""


@dataclass(frozen=True)
class SweepRow:
    id: str
    preset: str
    problem: str
    description: str
    swept: list[str]
    preset_toml: str
    created_at: float
    updated_at: float
    status: str
    counts: dict[str, int]  # runs per status

    @property
    def n_runs(self) -> int:
        return sum(self.counts.values())

    @property
    def n_done(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINAL_STATUSES)

    @property
    def resumable(self) -> bool:
        return self.status != "running" and self.n_done < self.n_runs


@dataclass(frozen=True)
class RunRow:
    id: str
    sweep_id: str
    idx: int
    seed: int
    config: dict[str, Any]
    point: dict[str, Any]
    status: str
    reason: str
    device: str | None
    device_name: str | None
    n_params: int | None
    env: dict[str, str]
    git_rev: str | None
    started_at: float | None
    ended_at: float | None
    epochs_done: float | None
    steps: int | None
    samples: int | None
    elapsed_s: float | None
    wall_s: float | None
    best_epoch: int | None
    final: dict[str, float]
    best: dict[str, float]
    test: dict[str, float]
    analysis: dict[str, list]


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The project's git revision when it runs from a checkout, else None."""
    root = Path(__file__).resolve().parents[1]
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
    """A connection to one store file; make one per thread or process."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if self._version() is None:
                self.db.executescript(SCHEMA)  # IF NOT EXISTS: safe if another process races
            with self._tx():
                version = self._version()
                if version is None:
                    self.db.execute(
                        "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                    )
                elif int(version) > SCHEMA_VERSION:
                    raise HypertuiError(
                        f"{self.path} was written by a newer hypertui (schema {version}, "
                        f"this one reads {SCHEMA_VERSION}); upgrade hypertui or use --store"
                    )
        except sqlite3.DatabaseError as exc:
            raise HypertuiError(f"cannot open run store {self.path}: {exc}") from None

    def _version(self) -> str | None:
        has_meta = self.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return row[0] if row else None

    def _tx(self):
        return _Transaction(self.db)

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
    ) -> None:
        now = time.time()
        with self._tx():
            self.db.execute(
                "INSERT INTO sweeps (id, preset, problem, description, swept, preset_toml,"
                " created_at, updated_at, status) VALUES (?,?,?,?,?,?,?,?, 'pending')",
                (sweep_id, preset, problem, description, _json(swept), preset_toml, now, now),
            )
            self.db.executemany(
                "INSERT INTO runs (id, sweep_id, idx, seed, config, point, status)"
                " VALUES (?,?,?,?,?,?, 'pending')",
                [(r, sweep_id, i, s, _json(c), _json(p)) for r, i, s, c, p in trials],
            )

    def claim_sweep(self, sweep_id: str) -> list[RunRow]:
        """Mark a sweep as running in this process; return its unfinished runs, reset.

        A run left `running` by a killed process, or `cancelled`, is reset to `pending` and
        its partial curve deleted, so resuming never duplicates a point or a run.
        """
        with self._tx():
            row = self.db.execute(
                "SELECT status, pid, host FROM sweeps WHERE id=?", (sweep_id,)
            ).fetchone()
            if row is None:
                raise HypertuiError(
                    f"no sweep {sweep_id!r} in {self.path}; `hypertui runs` lists them"
                )
            status, pid, host = row
            if status == "running" and _alive(pid, host):
                raise HypertuiError(f"sweep {sweep_id} is being run by process {pid} on {host}")
            stale = self.db.execute(
                "SELECT id FROM runs WHERE sweep_id=? AND status IN ('running', 'cancelled')",
                (sweep_id,),
            ).fetchall()
            self._reset([r for (r,) in stale])
            self.db.execute(
                "UPDATE sweeps SET status='running', pid=?, host=?, updated_at=? WHERE id=?",
                (os.getpid(), socket.gethostname(), time.time(), sweep_id),
            )
        return [r for r in self.runs(sweep_id) if r.status == "pending"]

    def reset_runs(self, run_ids: list[str]) -> None:
        """Back to `pending`, partial curve deleted: the run starts afresh next time."""
        with self._tx():
            self._reset(run_ids)

    def _reset(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self.db.execute("DELETE FROM points WHERE run_id=?", (run_id,))
            self.db.execute(
                "UPDATE runs SET status='pending', reason='', started_at=NULL, ended_at=NULL,"
                " final=NULL, best=NULL, test=NULL, analysis=NULL, epochs_done=NULL, steps=NULL,"
                " samples=NULL, elapsed_s=NULL, wall_s=NULL, best_epoch=NULL WHERE id=?",
                (run_id,),
            )

    def run_interrupted(self, run_id: str) -> None:
        """A run whose process was interrupted mid-trial (Ctrl-C): cancelled, rerun on resume."""
        with self._tx():
            self.db.execute(
                "UPDATE runs SET status='cancelled', reason='interrupted', ended_at=?"
                " WHERE id=? AND status IN ('pending', 'running')",
                (time.time(), run_id),
            )

    def end_sweep(self, sweep_id: str, status: str) -> None:
        with self._tx():
            self.db.execute(
                "UPDATE sweeps SET status=?, pid=NULL, updated_at=? WHERE id=?",
                (status, time.time(), sweep_id),
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
            self.db.executemany("INSERT INTO points VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def run_ended(self, event: Finished) -> None:
        with self._tx():
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
        """Sweeps, newest first."""
        query = "SELECT * FROM sweeps ORDER BY created_at DESC"
        rows = self.db.execute(
            query + (" LIMIT ?" if limit else ""), (limit,) if limit else ()
        ).fetchall()
        return [self._sweep_row(r) for r in rows]

    def sweep(self, sweep_id: str) -> SweepRow:
        """A sweep by id or by a unique prefix of it."""
        hint = "; `hypertui runs` lists them"
        return self._sweep_row(self._find("sweeps", "sweep", sweep_id, hint))

    def _find(self, table: str, what: str, key: str, hint: str = "") -> sqlite3.Row:
        row = self.db.execute(f"SELECT * FROM {table} WHERE id=?", (key,)).fetchone()
        if row is not None:
            return row
        matches = self.db.execute(
            f"SELECT * FROM {table} WHERE id LIKE ? LIMIT 2", (key.replace("%", "") + "%",)
        ).fetchall()
        if len(matches) != 1:
            raise HypertuiError(f"no {what} {key!r} in {self.path}{hint}")
        return matches[0]

    def latest_sweep(self) -> SweepRow:
        rows = self.sweeps(limit=1)
        if not rows:
            raise HypertuiError(f"no sweeps in {self.path} yet; try `hypertui run quickstart`")
        return rows[0]

    def _sweep_row(self, r: tuple) -> SweepRow:
        (sid, preset, problem, desc, swept, toml_text, created, updated, status, pid, host) = r
        counts = dict(
            self.db.execute(
                "SELECT status, COUNT(*) FROM runs WHERE sweep_id=? GROUP BY status", (sid,)
            ).fetchall()
        )
        if status == "running" and not _alive(pid, host):
            status = "interrupted"  # the process running it died (SIGKILL, power, terminal)
        return SweepRow(
            sid,
            preset,
            problem,
            desc,
            json.loads(swept),
            toml_text,
            created,
            updated,
            status,
            counts,
        )

    def runs(self, sweep_id: str) -> list[RunRow]:
        rows = self.db.execute(
            "SELECT * FROM runs WHERE sweep_id=? ORDER BY idx", (sweep_id,)
        ).fetchall()
        return [_run_row(r) for r in rows]

    def run(self, run_id: str) -> RunRow:
        """A run by id or by a unique prefix of it."""
        return _run_row(self._find("runs", "run", run_id))

    def points(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT seq, epoch, step, samples, elapsed_s, train_loss, metrics, end_of_epoch"
            " FROM points WHERE run_id=? ORDER BY seq",
            (run_id,),
        ).fetchall()
        return [
            {
                "seq": s,
                "epoch": e,
                "step": st,
                "samples": n,
                "elapsed_s": t,
                "train_loss": tl,
                **json.loads(m),
                "end_of_epoch": bool(eoe),
            }
            for s, e, st, n, t, tl, m, eoe in rows
        ]


CONFIG_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(Config) if f.default is not dataclasses.MISSING
}
JSON_COLUMNS = ("config", "point", "env", "final", "best", "test", "analysis")


def _run_row(row: sqlite3.Row) -> RunRow:
    """Columns map to RunRow fields by name; JSON columns are decoded ({} when NULL)."""
    values = dict(zip(row.keys(), row, strict=True))
    for name in JSON_COLUMNS:
        values[name] = _loads(values[name], {})
    # A run stored before a config field existed ran with that field's default value
    # (schedule and precision came later); fill it in so every row has every field.
    values["config"] = {**CONFIG_DEFAULTS, **values["config"]}
    return RunRow(**values)


def _alive(pid: int | None, host: str | None) -> bool:
    if pid is None:
        return False
    if host and host != socket.gethostname():
        return True  # cannot tell from here; assume the other machine is still at it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
