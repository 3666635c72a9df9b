"""The training clock shared by single runs and populations.

It counts training seconds only: evaluation and pauses are left out, so a time budget
means the same thing whatever the reports cost. On an accelerator it synchronises before
reading the time (an honest GPU clock), but only every `GPU_CLOCK_EVERY` steps, so the
device is not drained after every step.

A single-threaded CPU run counts the thread's CPU time, not wall time: under contention
the same 2 s budget gave one trial 2719, 1471, 77 and 102 steps on wall time, so the same
preset gave different results in the app and headless. Multi-threaded CPU runs and
accelerators count wall time (a thread's CPU clock misses the other threads' work).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

REPORT_EVERY_S = 2.0  # wall seconds between reports inside an epoch
GPU_CLOCK_EVERY = 16  # steps between synchronised clock reads on an accelerator
PAUSE_POLL_S = 0.05  # how often a paused run checks whether to go on


def budget_clock(device: torch.device) -> str:
    """What a time budget counts on `device` with the current torch thread setting."""
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return "thread CPU time"
    return "wall time" + (" (synchronised)" if device.type != "cpu" else "")


def budget_env(budget_s: float | None, device: torch.device, members: int = 1) -> dict[str, str]:
    """What a run stores about its budget: what it counted, and who shared it."""
    if budget_s is None:
        return {}
    env = {"budget_counts": budget_clock(device)}
    if members > 1:  # one clock for the whole population: each member got the same seconds
        env["budget_shared_by"] = f"{members} population members"
    return env


class TrainClock:
    def __init__(
        self,
        device: torch.device,
        budget_s: float | None,
        should_pause: Callable[[], bool],
        should_stop: Callable[[], bool],
    ):
        self.device = device
        self.budget = budget_s if budget_s is not None else math.inf
        self.should_pause = should_pause
        self.should_stop = should_stop
        self.report_every_s = REPORT_EVERY_S  # read now: tests shorten it
        self.every = GPU_CLOCK_EVERY if device.type != "cpu" else 1
        self.counts = budget_clock(device)
        self.now = time.thread_time if self.counts == "thread CPU time" else time.perf_counter
        self.train_s = 0.0  # training seconds in closed segments
        self.seg0: float | None = None  # start of the running segment
        self.last_report = time.perf_counter()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    def start(self) -> None:
        """Training (re)starts: open a segment."""
        self.sync()
        self.seg0 = self.now()

    def stop(self) -> None:
        """Training stops (a report, the end of an epoch): close the segment."""
        if self.seg0 is not None:
            self.sync()
            self.train_s += self.now() - self.seg0
            self.seg0 = None

    def reported(self) -> None:
        self.last_report = time.perf_counter()

    def hold_while_paused(self) -> None:
        """Wait out a pause between two steps; the wait is not training time."""
        if self.should_pause() and not self.should_stop():
            self.stop()
            held = time.perf_counter()
            while self.should_pause() and not self.should_stop():
                time.sleep(PAUSE_POLL_S)
            self.last_report += time.perf_counter() - held  # nor does it make a report due
            self.start()

    def after_step(self, step: int, last_batch: bool) -> str:
        """ "budget" when the budget is spent, "report" when an interval report is due."""
        if step % self.every and not last_batch:
            return ""
        if self.device.type != "cpu":
            self.sync()
        if self.train_s + self.now() - self.seg0 >= self.budget:
            return "budget"
        if time.perf_counter() - self.last_report >= self.report_every_s and not last_batch:
            return "report"
        return ""

    @property
    def budget_spent(self) -> bool:
        return self.train_s >= self.budget

    @property
    def budget_reason(self) -> str:
        return f"time budget of {self.budget:g} s reached ({self.counts})"
