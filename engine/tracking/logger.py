"""What `run.log` does, wherever the run goes: a script's run into the store
(`hypertui.init`, run.py), a swept function's trial back to its runner (sweeps/function.py).

`log` checks the values in the calling thread (microseconds: the user's training loop waits
on it), hands the point on, and is where hypertui's requests reach the loop: a pause holds
inside it, a skip or a cancel raises `Stop`, halting a trial raises `Pruned`.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from hypertui.engine.tracking.writer import Point

HOLD_POLL_S = 0.1  # a paused `log` looks this often whether it may go on


class Stop(Exception):
    """Raised by `run.log` when the run is to stop: skipped or cancelled from hypertui.
    Inside `with hypertui.init(...)` it ends the run `cancelled` and the `with` block
    quietly; catch it to save first (or poll `run.should_stop`)."""


class Pruned(Stop):
    """Raised by `run.log` when halving stops the trial: it ends `pruned`."""


class Logger:
    """The part of a run its training loop calls. A subclass says where points go
    (`emit`) and what hypertui asks (`stop_reason`, `paused`)."""

    def __init__(self) -> None:
        self.notes: list[str] = []  # what could not be stored, said to the user once each
        self._warned: set[str] = set()
        self._started = time.monotonic()
        self._paused_s = 0.0  # seconds held on pauses: not training time
        self._count = 0  # `log` calls so far
        self._epoch: int | None = None  # the last epoch given
        self._ended = False

    # -- what a subclass says ----------------------------------------------------------

    def emit(self, point: Point) -> None:
        raise NotImplementedError

    def stop_reason(self) -> str:
        """Why the loop must stop ('' while it may go on); "pruned ..." for halving."""
        return ""

    def paused(self) -> bool:
        return False

    def closed(self) -> bool:
        """Whether points are no longer kept (the run ended, or cannot be stored)."""
        return self._ended

    # -- the training loop's calls -----------------------------------------------------

    def log(
        self,
        values: dict[str, Any],
        epoch: int | None = None,
        step: int | None = None,
        samples: int | None = None,
    ) -> None:
        """Record metrics (any names: val_acc, lr, grad_norm). Numbers, or anything
        `float()` takes (a 0-d tensor, a numpy scalar); other values are left out with a
        warning. `epoch`, `step` and `samples` place the point on the x axis (default:
        the epoch given before, and the count of `log` calls as the step)."""
        self._obey()
        if self.closed():
            if self._ended:
                self.warn("ended", "run.log after the run ended: not stored")
            return
        numbers: dict[str, float] = {}
        try:
            items = values.items()
        except AttributeError:
            self.warn("values", f"run.log takes a dict of metrics, not {type(values).__name__}")
            return
        for key, value in items:
            kind = type(value)
            if type(key) is not str:
                self.warn(f"key {key!r}", f"metric name {key!r} is not a string; left out")
            elif kind is float or kind is int:
                numbers[key] = value
            elif (number := self._number(key, value)) is not None:
                numbers[key] = number
        self._count += 1
        if epoch is not None:
            epoch = self._count_arg("epoch", epoch)
        given = epoch is not None
        self._epoch = epoch if given else self._epoch
        self.emit(
            Point(
                epoch=self._epoch,
                step=self._count_arg("step", step) if step is not None else None,
                samples=self._count_arg("samples", samples) if samples is not None else None,
                count=self._count,
                by_epoch=given and step is None,
                elapsed_s=self.elapsed_s,
                values=numbers,
            )
        )

    @property
    def should_stop(self) -> bool:
        """True once the run was skipped or cancelled from hypertui: save, then return
        (the next `log` raises `Stop`)."""
        return bool(self.stop_reason())

    @property
    def elapsed_s(self) -> float:
        """Training seconds so far: since the start, less the time held on pauses."""
        return time.monotonic() - self._started - self._paused_s

    def warn(self, key: str, text: str) -> None:
        """One warning on stderr per kind of trouble, and the same line in the notes."""
        if key not in self._warned:
            self._warned.add(key)
            self.notes.append(text)
            print(f"hypertui: {text} (training goes on)", file=sys.stderr, flush=True)

    # -- inside ------------------------------------------------------------------------

    def _obey(self) -> None:
        """Raise Stop (or Pruned) when hypertui asks; hold while it pauses the run (the
        time held is not training time)."""
        if self.paused():
            since = time.monotonic()
            while self.paused() and not self.stop_reason() and not self._ended:
                time.sleep(HOLD_POLL_S)
            self._paused_s += time.monotonic() - since
        reason = self.stop_reason()
        if reason:
            raise (Pruned if reason.startswith("pruned") else Stop)(reason)

    def _number(self, key: str, value: Any) -> float | None:
        try:
            return float(value)
        except (TypeError, ValueError, RuntimeError):  # a string, a list, a tensor of many
            self.warn(
                f"value {key}",
                f"{key} = {str(value)[:40]!r} is not a number; its values are left out",
            )
            return None

    def _count_arg(self, name: str, value: Any) -> int | float | None:
        try:
            number = float(value)
        except (TypeError, ValueError, RuntimeError):
            number = math.nan
        if not math.isfinite(number) or number < 0:
            self.warn(name, f"{name}={repr(value)[:40]} is not a count; left out")
            return None
        return int(number) if number == int(number) else number
