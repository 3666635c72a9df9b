"""One write to the store: BEGIN IMMEDIATE ... COMMIT, sqlite's errors as one line each."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypertui.engine.core.errors import HypertuiError


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection).

    sqlite's own errors (a lock held past the wait, a full disk, a read-only file) become
    one-line HypertuiErrors; nothing half-written is kept."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db = db
        self.path = path

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise store_error(self.path, exc) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type:
            self._rollback()
            if issubclass(exc_type, sqlite3.OperationalError) or (
                issubclass(exc_type, sqlite3.DatabaseError) and is_damage(exc)
            ):
                raise store_error(self.path, exc) from None
            return
        try:
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._rollback()
            raise store_error(self.path, exc) from None

    def _rollback(self) -> None:
        if self.db.in_transaction:  # sqlite already rolled back after some errors (disk full)
            self.db.execute("ROLLBACK")


def store_error(path: Path, exc: sqlite3.Error) -> HypertuiError:
    text = str(exc)
    if is_damage(exc):
        return damaged(path, text)
    if "locked" in text or "busy" in text:
        return StoreBusy(f"the run store {path} is busy (another process holds its lock)")
    if "full" in text:
        return HypertuiError(f"cannot write the run store {path}: the disk is full")
    if "readonly" in text:
        return HypertuiError(f"cannot write the run store {path}: it is read-only")
    return HypertuiError(f"cannot write the run store {path}: {text}")


def read_error(path: Path, exc: sqlite3.Error) -> HypertuiError:
    if is_damage(exc):
        return damaged(path, str(exc))
    return HypertuiError(f"cannot read the run store {path}: {exc}")


def is_damage(exc: sqlite3.Error) -> bool:
    """sqlite's word for a file it cannot trust: a damaged page, a header that is not one."""
    text = str(exc)
    return "malformed" in text or "not a database" in text or "corrupt" in text


def damaged(path: Path, detail: str) -> StoreDamaged:
    return StoreDamaged(
        f"{path} is damaged: {detail}; try `sqlite3 {path} '.recover'` into a new file, "
        "or move it aside to start a new store"
    )


class StoreDamaged(HypertuiError):
    """The store file is damaged where sqlite must read it (an overwritten page, say): no
    query can say which rows are lost, so a command stops and says how to salvage them."""


class StoreBusy(HypertuiError):
    """Another process held the store's write lock for longer than this one waits."""
