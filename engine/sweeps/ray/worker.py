"""What runs on a Ray worker: one unit of a sweep, its events sent to the sweep's Mailbox.

The worker trains exactly what the local runner trains (`sweeps.unit.train_unit`); it never
opens the store. Its events leave in batches, one per report of the unit (all its members'
points of one epoch), so that a 72-member population costs one actor call per epoch, not 72.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import ray

from hypertui.engine.core.events import Event, Failed, Finished, Progress, RunStarted

CONTROL_POLL_S = 0.2  # how often a worker reads the driver's controls (between two steps)
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
MNIST_FILES += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@ray.remote
def train_unit_task(
    unit_no: int,
    unit: list,  # list[RunRow]
    mailbox: Any,  # the Mailbox actor's handle
    data: dict[str, Any],  # from `mnist_for_workers`
    threads: int,
    import_dir: str = "",  # the preset's folder, where the user's own code lives
) -> None:
    import torch

    from hypertui.engine.core.own_model import add_import_dir
    from hypertui.engine.sweeps.apart import train_apart
    from hypertui.engine.sweeps.function import is_function_trial
    from hypertui.engine.sweeps.unit import train_unit

    attempt = ray.get(mailbox.begin.remote(unit_no))
    # Ray sets OMP_NUM_THREADS to the task's CPUs; torch was imported with a worker's own
    # default. Tiny MLPs still drop to one thread inside train/population, as locally.
    torch.set_num_threads(threads)
    controls = RemoteControls(mailbox, unit_no)
    if import_dir:
        add_import_dir(import_dir)
    if is_function_trial(unit[0]):  # the user's function: in a child of this worker, as
        events = train_apart(unit, controls, None)  # locally (no halving rungs on Ray)
    else:
        events = train_unit(unit, controls, worker_data_dir(data))  # type: ignore[arg-type]
    last = None
    for batch in report_batches(events, len(unit)):
        # Pickled here, unpickled by the driver: the mailbox never imports what events
        # refer to (RunStarted's env holds torch's TorchVersion: torch in the actor took
        # 10 s to import under load and held every batch back until then).
        last = mailbox.put.remote(unit_no, attempt, pickle.dumps(batch))
    if last is not None:
        ray.get(last)  # one caller's actor calls run in order: all of them are in the mailbox


def report_batches(events: Iterable[Event], n_members: int) -> Iterator[list[Event]]:
    """Events grouped as they complete: the starts of all members, each full report of the
    running members, each end. Nothing waits for a later event to be sent (a start is not
    held back until the first epoch ends)."""
    batch: list[Event] = []
    started = running = points = 0
    for event in events:
        batch.append(event)
        if isinstance(event, RunStarted):
            started, running = started + 1, running + 1
            complete = started >= n_members
        elif isinstance(event, Progress):
            points += 1
            complete = points >= running
        else:
            running -= isinstance(event, (Finished, Failed))
            complete = True
        if complete:
            yield batch
            batch, points = [], 0
    if batch:
        yield batch


class _Flag:
    """The `is_set()` of a threading.Event, read from the driver's controls."""

    def __init__(self, read: Callable[[], bool]):
        self.is_set = read


class RemoteControls:
    """Controls as `train_unit` reads them, polled from the Mailbox at most every
    CONTROL_POLL_S without ever blocking a step (a reply not yet back keeps the old state)."""

    def __init__(self, mailbox: Any, unit_no: int):
        self.mailbox, self.unit_no = mailbox, unit_no
        self.state: tuple[bool, bool, tuple[int, ...], tuple[str, ...]] = (False, False, (), ())
        self.pending = mailbox.controls.remote()
        self.next_poll = 0.0
        self.stop = _Flag(lambda: self.read()[0])
        self.pause = _Flag(lambda: self.read()[1])
        self.skip = _Flag(lambda: self.unit_no in self.read()[2])

    @property
    def skip_runs(self) -> tuple[str, ...]:
        """Runs a viewer skipped, each alone (one member leaves its population)."""
        return self.read()[3]

    def tick(self) -> None:  # the driver beats the heartbeat; nothing to do here
        pass

    def halted(self) -> bool:
        """Whether this unit should stop now (the sweep cancelled, or this unit skipped)."""
        stop, _, skip, _ = self.read()
        return stop or self.unit_no in skip

    def read(self) -> tuple[bool, bool, tuple[int, ...], tuple[str, ...]]:
        now = time.monotonic()
        if now >= self.next_poll:
            self.next_poll = now + CONTROL_POLL_S
            ready, _ = ray.wait([self.pending], timeout=0)
            if ready:
                self.state = ray.get(self.pending)
                self.pending = self.mailbox.controls.remote()
        return self.state


# -- MNIST on workers that do not share the driver's filesystem ---------------------------


def mnist_for_workers(units: list[list], data_dir: Path | None) -> dict[str, Any]:
    """What workers need to find MNIST: the driver's folder, and (when the driver has the
    files) their bytes in Ray's object store, put once per sweep.

    A worker uses the driver's folder when it sees the files there (this machine, or a
    shared filesystem); otherwise it writes the shipped bytes once into a folder of its
    node's temp dir; with nothing shipped (the driver has no MNIST) it falls back to its
    own `$HYPERTUI_DATA` and the usual chain (torchvision download, then the wheel)."""
    from hypertui.engine.data.load import default_data_dir
    from hypertui.engine.data.mnist import raw_folder

    if not any(row.config.get("problem") == "mnist" for unit in units for row in unit):
        return {}
    folder = data_dir or default_data_dir()
    raw = raw_folder(folder)
    if raw is None:
        return {"driver_dir": str(folder)}
    paths = [p for p in sorted(raw.iterdir()) if p.name.startswith(MNIST_FILES)]
    files = {p.name: p.read_bytes() for p in paths}
    digest = hashlib.sha256(b"".join(files[name] for name in sorted(files))).hexdigest()[:16]
    return {"driver_dir": str(folder), "files": [ray.put(files)], "digest": digest}


def worker_data_dir(data: dict[str, Any]) -> Path | None:
    """The MNIST folder on this worker (see `mnist_for_workers`); None: the worker's own."""
    from hypertui.engine.data.mnist import raw_folder

    if not data:
        return None
    driver_dir = Path(data["driver_dir"])
    if raw_folder(driver_dir) is not None:
        return driver_dir
    if "files" not in data:
        return None
    folder = Path(tempfile.gettempdir()) / "hypertui-ray" / data["digest"]
    raw = folder / "MNIST" / "raw"
    if raw_folder(folder) is None:
        raw.mkdir(parents=True, exist_ok=True)
        for name, content in ray.get(data["files"][0]).items():
            part = raw / f".{name}.{os.getpid()}"
            part.write_bytes(content)
            part.replace(raw / name)  # atomic: two workers of one node may race here
    return folder
