"""The training clock shared by single runs and populations.

It counts training seconds only: evaluation and pauses are left out, so a time budget
means the same thing whatever the reports cost. On an accelerator it synchronises before
reading the time (an honest GPU clock), but only every `GPU_CLOCK_EVERY` steps, so the
device is not drained after every step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

REPORT_EVERY_S = 2.0  # wall seconds between reports inside an epoch
GPU_CLOCK_EVERY = 16  # steps between synchronised clock reads on an accelerator
PAUSE_POLL_S = 0.05  # how often a paused run checks whether to go on


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
        self.train_s = 0.0  # training seconds in closed segments
        self.seg0: float | None = None  # start of the running segment
        self.last_report = time.perf_counter()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        """Training (re)starts: open a segment."""
        self.sync()
        self.seg0 = time.perf_counter()

    def stop(self) -> None:
        """Training stops (a report, the end of an epoch): close the segment."""
        if self.seg0 is not None:
            self.sync()
            self.train_s += time.perf_counter() - self.seg0
            self.seg0 = None

    def reported(self) -> None:
        self.last_report = time.perf_counter()

    def hold_while_paused(self) -> None:
        """Wait out a pause between two steps; the wait is not training time."""
        if self.should_pause() and not self.should_stop():
            self.stop()
            while self.should_pause() and not self.should_stop():
                time.sleep(PAUSE_POLL_S)
            self.start()

    def after_step(self, step: int, last_batch: bool) -> str:
        """ "budget" when the budget is spent, "report" when an interval report is due."""
        if step % self.every and not last_batch:
            return ""
        if self.device.type != "cpu":
            self.sync()
        now = time.perf_counter()
        if self.train_s + now - self.seg0 >= self.budget:
            return "budget"
        if now - self.last_report >= self.report_every_s and not last_batch:
            return "report"
        return ""

    @property
    def budget_spent(self) -> bool:
        return self.train_s >= self.budget

    @property
    def budget_reason(self) -> str:
        return f"time budget of {self.budget:g} s reached"
