"""Is a sweep's runner alive? Its heartbeat, and on this host its process.

A runner refreshes its sweep's heartbeat every HEARTBEAT_S; a viewer that finds a `running`
sweep whose runner is gone shows it as interrupted (and `--resume` takes it over). So it
does for a `pending` sweep whose launched runner died before it claimed the sweep: `launch`
records the runner's pid and host, with a first heartbeat, as it starts it.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

HEARTBEAT_S = 2.0  # a runner refreshes its sweep's heartbeat this often
# Older than this, the runner is gone: the sweep is interrupted. (On this host a dead pid
# says so at once; the heartbeat is what tells for other hosts and reused pids. Generous,
# because a loaded machine can hold a runner's threads off the CPU for many seconds.)
STALE_S = 15 * HEARTBEAT_S


RUNNER = "hypertui.engine.sweeps.runner"  # a detached runner's module (`python -m RUNNER`)


def is_live(sweep: dict[str, Any]) -> bool:
    """Whether a `running` sweep's runner is alive.

    On this host the process table answers first: no process with the runner's pid means
    it is gone (SIGKILL, OOM); a detached runner of this very sweep under that pid means it
    lives, even when a loaded machine has held its heartbeat back (loading torch's
    libraries holds the GIL: the heartbeat thread waited past STALE_S under 4 busy loops
    on 2 cores). Otherwise (another host, a runner that is not detached, no /proc) a fresh
    heartbeat decides; a live pid alone proves nothing, as pids are reused."""
    here = sweep["host"] == socket.gethostname() and sweep["pid"] is not None
    if here:
        runner = _detached_runner(sweep["pid"], sweep.get("id"))
        if runner is not None:
            return runner
    beat = sweep["heartbeat"]
    return beat is not None and time.time() - beat <= STALE_S


def _detached_runner(pid: int, sweep_id: str | None) -> bool | None:
    """False when no process has `pid`, or only a zombie does; True when it is the detached
    runner of `sweep_id`; None when the process table cannot tell (any other process, no
    /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _zombie(pid):  # killed, not yet reaped by its parent (the app that launched it)
        return False
    if not sweep_id:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    return True if RUNNER in args and sweep_id in args else None


def _zombie(pid: int) -> bool:
    """Whether `pid` has exited and waits for its parent to reap it (state Z, or X)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    fields = stat.rsplit(b")", 1)[-1].split()  # the name in (...) may hold spaces
    return bool(fields) and fields[0] in (b"Z", b"X")
