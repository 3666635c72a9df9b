"""The store's schema: numbered migrations, applied in place when a store is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.store.transaction import Transaction, damaged

# Numbered migrations: MIGRATIONS[n] takes a store from `pragma user_version` n to n + 1.
# Append, never edit: a store written by any earlier hypertui upgrades in place.
MIGRATIONS = (
    """
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
        status TEXT NOT NULL,  -- pending | running | done | incomplete | cancelled | interrupted
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
        status TEXT NOT NULL,  -- pending | running | finished | diverged | cancelled | failed
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
    """,
    # 2: runners that outlive the terminal: who runs a sweep and since when, its heartbeat,
    # the options it runs with, requests from viewers, and why it stopped.
    """
    ALTER TABLE sweeps ADD COLUMN heartbeat REAL;            -- runner's last sign of life
    ALTER TABLE sweeps ADD COLUMN runner_started REAL;
    ALTER TABLE sweeps ADD COLUMN options TEXT NOT NULL DEFAULT '{}';  -- JSON: population..
    ALTER TABLE sweeps ADD COLUMN control TEXT NOT NULL DEFAULT '';   -- '' | pause | cancel
    ALTER TABLE sweeps ADD COLUMN skip_seq INTEGER NOT NULL DEFAULT 0; -- skip requests made
    ALTER TABLE sweeps ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;  -- runner holds
    ALTER TABLE sweeps ADD COLUMN error TEXT NOT NULL DEFAULT '';     -- why it stopped
    """,
    # 3: the seconds the current runner has held on pauses (a viewer's ETA leaves them out)
    """
    ALTER TABLE sweeps ADD COLUMN paused_s REAL NOT NULL DEFAULT 0;
    """,
    # 4: curve points get ids that are never reused (AUTOINCREMENT). A resumed trial's old
    # points are deleted; with plain rowids its new points took the same ids again, and a
    # follower that had read past them (it reads points by id) never saw the new curve.
    """
    CREATE TABLE points_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- also the rowid: followers read by it
        run_id TEXT NOT NULL REFERENCES runs(id),
        seq INTEGER NOT NULL,
        epoch INTEGER NOT NULL, step INTEGER NOT NULL, samples INTEGER NOT NULL,
        elapsed_s REAL NOT NULL, train_loss REAL, metrics TEXT NOT NULL,
        end_of_epoch INTEGER NOT NULL,
        UNIQUE (run_id, seq)
    );
    INSERT INTO points_v4 (id, run_id, seq, epoch, step, samples, elapsed_s, train_loss,
                           metrics, end_of_epoch)
        SELECT rowid, run_id, seq, epoch, step, samples, elapsed_s, train_loss, metrics,
               end_of_epoch FROM points ORDER BY rowid;
    DROP TABLE points;
    ALTER TABLE points_v4 RENAME TO points;
    """,
    # 5: what each skip request names, in order: a run id (one trial, even inside a
    # population), or * (whatever unit is running), separated by spaces
    """
    ALTER TABLE sweeps ADD COLUMN skip_runs TEXT NOT NULL DEFAULT '';
    """,
    # 6: runs that a script of the user's writes itself (`hypertui.init`): each such run has
    # a process of its own, so the liveness a runner keeps per sweep is kept per run too
    """
    ALTER TABLE runs ADD COLUMN pid INTEGER;                  -- the script, while it runs
    ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN heartbeat REAL;
    """,
    # 7: what a user says of a sweep: tags (a JSON list), a note, a name of its own
    """
    ALTER TABLE sweeps ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sweeps ADD COLUMN note TEXT NOT NULL DEFAULT '';
    ALTER TABLE sweeps ADD COLUMN name TEXT NOT NULL DEFAULT '';   -- '' = the preset's
    """,
)
POINT_COLUMNS = "run_id, seq, epoch, step, samples, elapsed_s, train_loss, metrics, end_of_epoch"
SCHEMA_VERSION = len(MIGRATIONS)
SWEEP_COLUMNS = (
    "id, preset, problem, description, swept, preset_toml, created_at, updated_at, status,"
    " pid, host, heartbeat, runner_started, options, control, skip_seq, paused, error,"
    " paused_s, tags, note, name"
)
TABLES = ("meta", "sweeps", "runs", "points")


def read_version(db: sqlite3.Connection, path: Path) -> int:
    """The schema version: `pragma user_version`, or 1 for a store written before
    migrations were numbered (its version lived in the meta table)."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version < 0:  # never written by hypertui: the header was damaged or edited
        raise damaged(path, f"its schema version is {version}")
    if version:
        return version
    if not has_table(db, "meta"):
        return 0
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    text = row[0] if row else "1"
    if not str(text).isdigit():
        raise HypertuiError(f"{path}: schema version {text!r} is not a number")
    return int(text)


def has_table(db: sqlite3.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
    row = db.execute(query, (name,)).fetchone()
    return row is not None


def upgrade(db: sqlite3.Connection, path: Path, create: bool, readonly: bool) -> None:
    """Bring the store to SCHEMA_VERSION in one transaction, or refuse it in one line."""
    version = read_version(db, path)
    if version > SCHEMA_VERSION:
        raise HypertuiError(
            f"{path} was written by a newer hypertui (schema {version}, "
            f"this one reads {SCHEMA_VERSION}); upgrade hypertui or use --store"
        )
    if version == 0 and not create:
        raise HypertuiError(f"{path} is not a hypertui run store (no schema in it)")
    if version < SCHEMA_VERSION:
        if readonly:
            raise HypertuiError(
                f"{path} is read-only and written by an older hypertui "
                f"(schema {version}); open a writable copy once to upgrade it"
            )
        if version == 0:
            db.execute("PRAGMA journal_mode=WAL")  # once: the file keeps it
        with Transaction(db, path):
            version = read_version(db, path)  # another process may have just done it
            for n in range(version, SCHEMA_VERSION):
                for statement in statements(MIGRATIONS[n]):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            # Kept too for hypertui releases before user_version: they refuse a newer store.
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
    if not readonly:
        db.execute("PRAGMA synchronous=NORMAL")
    missing = [t for t in TABLES if not has_table(db, t)]
    if missing:
        raise HypertuiError(
            f"{path} is damaged: table {', '.join(missing)} is missing; "
            "move it aside and let hypertui start a new store"
        )


def statements(script: str) -> list[str]:
    """A migration's statements, one by one: executescript would commit the transaction."""
    lines = [line.split("--")[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
