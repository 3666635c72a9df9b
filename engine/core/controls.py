"""Switches a running sweep obeys: cancel, pause, skip (thread-safe, no torch import).

The training loop reads them between steps. What flips them is the runner's watch thread
(requests viewers wrote to the store, see engine/sweeps/runner.py), a signal handler, or a test.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Controls:
    stop: threading.Event = field(default_factory=threading.Event)  # cancel the sweep
    pause: threading.Event = field(default_factory=threading.Event)  # hold between two steps
    skip: threading.Event = field(default_factory=threading.Event)  # end the current unit
    # runs to end, each alone: one member leaves its population, the rest go on
    skip_runs: set[str] = field(default_factory=set)
    # Called by the training loop before every step (cheap: a clock read). A runner sets
    # it to read requests and beat its heartbeat from the training thread itself, which a
    # watch thread starved of the GIL on a loaded machine cannot be relied on to do.
    tick: Callable[[], None] = lambda: None

    def halted(self) -> bool:
        """Whether the current unit should stop now (a cancel or a skip)."""
        self.tick()
        return self.stop.is_set() or self.skip.is_set()

    def cancel(self) -> None:
        self.stop.set()
        self.pause.clear()

    def install_signals(self) -> None:
        """SIGTERM/SIGHUP cancel gracefully, SIGUSR1 toggles pause, SIGUSR2 skips.

        Installed before torch is imported: a signal in a runner's first second must not
        kill it with the default action."""

        def toggle_pause(signum, frame):
            (self.pause.clear if self.pause.is_set() else self.pause.set)()

        signal.signal(signal.SIGTERM, lambda signum, frame: self.cancel())
        signal.signal(signal.SIGHUP, lambda signum, frame: self.cancel())
        signal.signal(signal.SIGUSR1, toggle_pause)
        signal.signal(signal.SIGUSR2, lambda signum, frame: self.skip.set())
