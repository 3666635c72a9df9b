"""Is a sweep's runner alive? Its heartbeat, and on this host its process.

A runner refreshes its sweep's heartbeat every HEARTBEAT_S; a viewer that finds a `running`
sweep whose runner is gone shows it as interrupted (and `--resume` takes it over).
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


def is_live(sweep: dict[str, Any]) -> bool:
    """Whether a `running` sweep's runner is alive: its heartbeat is fresh, and on this
    host its process still exists. A live pid alone proves nothing (it may have been
    reused); a dead one on this host is proof the runner is gone (SIGKILL, OOM)."""
    beat = sweep["heartbeat"]
    if beat is None or time.time() - beat > STALE_S:
        return False
    if sweep["host"] != socket.gethostname() or sweep["pid"] is None:
        return True
    try:
        os.kill(sweep["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
