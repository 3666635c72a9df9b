"""Several units at once on one machine: `hypertui run --jobs N` (or `jobs = N` in a preset).

Each unit (a population, or a single trial) trains in a child process of its own, forked
from the forkserver that apart.py keeps (torch imported once); this process stays the only
writer of the store and the one that hears the viewers. A thread per unit carries its
child's events into one queue, which `run_jobs` drains in order of arrival, so the store,
the follower, halving inside populations and resume see what they see from one process.

Controls act as on Ray (engine/sweeps/ray/backend.py): pause holds the units in flight
between two steps and starts no new one; a skip ends every unit in flight when it is
pressed (one named trial ends alone, its population goes on); a cancel ends them all and
starts no more. An error that stops the sweep (data missing, a device gone) ends the other
units first: their trials go back to pending, as after a cancel.

Units start longest first (the sweep's estimate), so the last to end is a short one.
Threads: each child gets `cores // jobs` torch threads (at least one). GPUs: on a box with
several, unit i trains on GPU i mod n (a unit whose device is "auto" or "cuda"); several
units share a GPU when there are more jobs than GPUs.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from hypertui.engine.core.config import make_config
from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Event
from hypertui.engine.core.records import RunRow
from hypertui.engine.sweeps.apart import train_apart
from hypertui.engine.sweeps.estimate import population_seconds
from hypertui.engine.sweeps.function import is_function_trial

POLL_S = 0.1  # how often the loop reads the controls while every unit is busy


def default_jobs() -> tuple[int, str]:
    """What this machine makes sensible, and why (the run's first line says it): one unit
    per GPU; on a CPU one, whose threads use every core."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus > 1:
        return gpus, f"one unit per GPU ({gpus} GPUs)"
    return 1, "one GPU" if gpus else "a CPU: one unit's threads use every core"


def run_jobs(
    units: list[list[RunRow]],
    controls: Controls,
    data_dir: Path | None,
    jobs: int,
    rung_history: Callable[[RunRow], dict] | None = None,
) -> Iterator[Event]:
    """Train `units`, up to `jobs` at once, yielding their events as they arrive."""
    events: queue.Queue = queue.Queue()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    gpus = _gpus_for(units)
    todo = deque(longest_first(units))
    flying: dict[int, Controls] = {}  # unit -> its own controls
    skipping: set[int] = set()  # the units in flight when a skip was pressed
    failure: BaseException | None = None
    slot = 0
    try:
        while flying or (todo and not controls.stop.is_set() and failure is None):
            controls.tick()  # a runner reads requests and beats its heartbeat here
            if controls.skip.is_set() and not skipping:
                skipping = set(flying)
                for u in skipping:
                    flying[u].skip.set()
                if not skipping:  # nothing to skip between two units
                    controls.skip.clear()
            if controls.stop.is_set() or failure is not None:
                for own in flying.values():
                    own.stop.set()
            while todo and len(flying) < jobs and not _held(controls) and failure is None:
                u = todo.popleft()
                unit = _on_gpu(units[u], slot % gpus) if gpus > 1 else units[u]
                slot += 1
                # a function trial's halving reads the store: here, in the store's thread
                function = rung_history is not None and is_function_trial(unit[0])
                history = rung_history(unit[0]) if function else None
                flying[u] = _start(u, unit, controls, data_dir, history, threads, events)
            try:
                u, item = events.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if isinstance(item, _Ended):
                del flying[u]
                if item.error is not None and failure is None:
                    failure = item.error
                if u in skipping:
                    skipping.discard(u)
                    if not skipping:  # every unit running at the key press has ended
                        controls.skip.clear()
                continue
            yield item
    finally:
        for own in flying.values():  # the consumer stopped early, or an error: end the rest
            own.stop.set()
    if failure is not None:
        raise failure


def longest_first(units: list[list[RunRow]]) -> list[int]:
    """The units' order, the longest first by the sweep's estimate (ties in sweep order):
    two jobs over the house grid's 9 populations otherwise end with a long one alone."""

    def cost(unit: list[RunRow]) -> float:
        try:
            configs = [make_config(r.config) for r in unit]
        except (HypertuiError, KeyError, TypeError):  # your own function: no estimate
            return 0.0
        # the estimate prices a step whatever the depth; a step is launch-bound, about
        # one more of each operation a layer (the grid's 4-layer populations took 3-5x
        # its 1-layer ones, and ran last when ordered without it)
        return population_seconds(configs, "cpu") * (1 + len(configs[0].hidden))

    costs = [cost(unit) for unit in units]
    return sorted(range(len(units)), key=lambda u: -costs[u])


@dataclasses.dataclass(frozen=True)
class _Ended:
    error: BaseException | None  # what stopped the unit, if it raised (a HypertuiError)


def _held(controls: Controls) -> bool:
    return controls.stop.is_set() or controls.pause.is_set()


def _start(u, unit, controls, data_dir, history, threads, events) -> Controls:
    """The unit in a child process, its events carried into `events` by a thread."""
    own = Controls(pause=controls.pause, skip_runs=controls.skip_runs)  # its stop, its skip

    def carry() -> None:
        error = None
        try:
            for event in train_apart(unit, own, data_dir, history, threads=threads):
                events.put((u, event))
        except BaseException as exc:  # handed to the loop, which raises it
            error = exc
        events.put((u, _Ended(error)))

    threading.Thread(target=carry, name=f"hypertui-job-{u}", daemon=True).start()
    return own


def _gpus_for(units: list[list[RunRow]]) -> int:
    """GPUs to spread units over: this machine's, where a unit may use any."""
    if not any(str(r.config.get("device", "auto")) in ("auto", "cuda") for u in units for r in u):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _on_gpu(unit: list[RunRow], index: int) -> list[RunRow]:
    return [
        dataclasses.replace(r, config={**r.config, "device": f"cuda:{index}"})
        if str(r.config.get("device", "auto")) in ("auto", "cuda")
        else r
        for r in unit
    ]
