"""The one actor of a Ray sweep: events from workers to the driver, controls back.

Kept apart from the training code so that the actor's process imports Ray and nothing else
(no torch: it starts in a second and holds little memory). One actor is one thread, so the
order in which it sees `begin`, `put` and `take` is the order of the sweep's history.
"""

from __future__ import annotations

import ray

# (stop, pause, units to skip, runs to skip alone): what the driver's Controls say, as
# plain picklable data
ControlState = tuple[bool, bool, tuple[int, ...], tuple[str, ...]]


@ray.remote(num_cpus=0, max_restarts=0)
class Mailbox:
    def __init__(self) -> None:
        self.items: list[tuple[int, int, bytes | None]] = []  # (unit, attempt, pickled batch)
        self.attempts: dict[int, int] = {}  # unit -> its newest attempt
        self.state: ControlState = (False, False, (), ())

    def begin(self, unit: int) -> int:
        """A worker starts training `unit`; returns the attempt's number (1, then retries).

        A retry leaves a marker (batch None) after everything the dead attempt sent, and
        from now on `put` drops what the dead attempt still had in flight."""
        attempt = self.attempts.get(unit, 0) + 1
        self.attempts[unit] = attempt
        if attempt > 1:
            self.items.append((unit, attempt, None))
        return attempt

    def put(self, unit: int, attempt: int, batch: bytes) -> None:
        if attempt == self.attempts.get(unit):
            self.items.append((unit, attempt, batch))

    def take(self, state: ControlState) -> list[tuple[int, int, bytes | None]]:
        """The driver's poll: it leaves the current controls and takes every new batch."""
        self.state = state
        items, self.items = self.items, []
        return items

    def controls(self) -> ControlState:
        return self.state
