"""Sweeps on Ray: every unit (a population, or a single trial) is one Ray task.

    backend = RayBackend()                 # a local Ray instance: every CPU and GPU here
    backend = RayBackend(address="auto")   # the cluster this machine is a node of
    for item in run_sweep(store, sweep_id, backend=backend): ...

The driver (the process running `run_sweep`) stays the only writer of the store; workers
never open it. Why Ray Core tasks and one actor, and not Ray Tune or generator tasks:

- The unit is what the local runner trains, never one model of a population: a Tune trial
  costs seconds of set-up, a population is hundreds of models in one tensor.
- Workers send their events to one `Mailbox` actor per sweep, a batch per report of the
  unit (engine/sweeps/ray/worker.py); the driver drains it every POLL_S. Streaming generator tasks
  would need `ray.wait` on generators, which Ray Client (`ray://` addresses) does not
  support, and a generator retried by Ray replays from its start while the caller skips
  the items it had already read, splicing two attempts into one curve.
- The same actor carries the controls to the workers and numbers each unit's attempts: when
  Ray retries a unit whose worker died (`max_retries`), the new attempt's first call makes
  the mailbox drop the dead attempt's late batches and tells the driver, which resets the
  unit's runs in the store (`UnitRestarted`) before the new attempt's events arrive.

Controls on Ray: pause holds the units in flight between two steps and starts no new one;
skip ends every unit in flight when it is pressed (a population ends as a whole, as it does
locally); stop ends them and starts no more. Each acts within CONTROL_POLL_S plus a step.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import ray
from ray.exceptions import RayError, RayTaskError

import hypertui
from hypertui.engine.core.errors import HypertuiError, first_line
from hypertui.engine.core.events import Event, Failed, Finished
from hypertui.engine.core.records import RunRow
from hypertui.engine.sweeps.ray.mailbox import Mailbox
from hypertui.engine.sweeps.ray.worker import mnist_for_workers, train_unit_task
from hypertui.engine.sweeps.sweep import Controls, UnitRestarted

RAY_OPTIONS = ("gpus_per_unit", "cpus_per_unit", "max_retries")  # a sweep's stored options
POLL_S = 0.1  # how often the driver takes the workers' events and passes controls on
GPUS_PER_UNIT = 0.25  # four small populations share a GPU (they use a fraction of one)
CONNECT_TIMEOUT_S = 5.0  # a cluster address that does not answer a TCP connect in this


class RayBackend:
    """Units as Ray tasks, as many at once as the cluster's CPUs (and GPUs) hold.

    `gpus_per_unit` applies to units whose device is not "cpu", on a cluster with GPUs
    (device "auto" then means the GPU Ray gave the task); `cpus_per_unit` is also each
    unit's torch thread count. `max_retries`: how often Ray runs a unit again when its
    worker process or node dies; after that its unfinished trials are `failed`.
    """

    def __init__(
        self,
        address: str | None = None,
        gpus_per_unit: float = GPUS_PER_UNIT,
        cpus_per_unit: float = 1.0,
        max_retries: int = 2,
        import_dir: str = "",
    ):
        self.address = address
        self.import_dir = import_dir  # the preset's folder: its own model or function
        self.gpus_per_unit = gpus_per_unit
        self.cpus_per_unit = cpus_per_unit
        self.max_retries = max_retries
        connect(address)
        self._resources: dict[str, float] = {}
        self._resources_at = 0.0

    def run(
        self, units: list[list[RunRow]], controls: Controls, data_dir: Path | None
    ) -> Iterator[Event | UnitRestarted]:
        mailbox = Mailbox.remote()
        data = mnist_for_workers(units, data_dir)
        todo = deque(range(len(units)))
        flying: dict[ray.ObjectRef, int] = {}
        ended: dict[int, set[str]] = {}  # unit -> runs its current attempt ended
        skipping: set[int] = set()
        try:
            while flying or (todo and not controls.stop.is_set()):
                controls.tick()  # a runner reads requests and beats its heartbeat here
                if controls.skip.is_set() and not skipping:
                    skipping = set(flying.values())
                    if not skipping:  # nothing to skip between two units
                        controls.skip.clear()
                stop, pause = controls.stop.is_set(), controls.pause.is_set()
                while todo and not (stop or pause) and len(flying) < self._capacity(units[todo[0]]):
                    u = todo.popleft()
                    flying[self._submit(u, units[u], mailbox, data)] = u
                    ended[u] = set()
                done: list = []
                if flying:
                    done, _ = ray.wait(list(flying), num_returns=1, timeout=POLL_S)
                else:
                    time.sleep(POLL_S)  # paused between two units
                state = (stop, pause, tuple(sorted(skipping)), tuple(sorted(controls.skip_runs)))
                for unit, attempt, batch in ray.get(mailbox.take.remote(state)):
                    if batch is None:
                        ended[unit] = set()
                        ids = tuple(row.id for row in units[unit])
                        yield UnitRestarted(ids, f"attempt {attempt}: the previous worker died")
                        continue
                    for event in pickle.loads(batch):  # our own workers' bytes
                        if isinstance(event, (Finished, Failed)):
                            ended[unit].add(event.run_id)
                        yield event
                for ref in done:
                    u = flying.pop(ref)
                    yield from self._outcome(ref, units[u], ended[u])
                    if u in skipping:
                        skipping.discard(u)
                        if not skipping:  # every unit running at the key press has ended
                            controls.skip.clear()
        finally:
            for ref in flying:  # the consumer stopped early (Ctrl-C, an error): end the rest
                ray.cancel(ref)
            ray.kill(mailbox)

    def _submit(self, u: int, unit: list[RunRow], mailbox, data) -> ray.ObjectRef:
        cpus, gpus = self._needs(unit)
        return train_unit_task.options(
            num_cpus=cpus,
            num_gpus=gpus,
            max_retries=self.max_retries,
            name=f"hypertui unit {u} ({len(unit)} trial{'s' if len(unit) > 1 else ''})",
        ).remote(u, unit, mailbox, data, max(1, int(cpus)), self.import_dir)

    def _outcome(self, ref, unit: list[RunRow], ended: set[str]) -> Iterator[Event]:
        """Nothing when the task ended well; a HypertuiError (data missing...) stops the sweep
        as it does locally; a worker that died once too often fails its unfinished trials."""
        try:
            ray.get(ref)
        except RayTaskError as exc:
            if isinstance(exc.cause, HypertuiError):
                raise exc.cause from None
            raise
        except RayError as exc:
            reason = f"Ray gave up on it after {self.max_retries + 1} attempts: {first_line(exc)}"
            for row in unit:
                if row.id not in ended:
                    yield Failed(row.id, reason)

    def _needs(self, unit: list[RunRow]) -> tuple[float, float]:
        on_cpu = unit[0].config.get("device") == "cpu" or not self._cluster().get("GPU")
        return self.cpus_per_unit, 0.0 if on_cpu else self.gpus_per_unit

    def _capacity(self, unit: list[RunRow]) -> int:
        """Units of this kind the cluster runs at once (re-read: clusters grow and shrink)."""
        cluster = self._cluster()
        fits = [
            int(cluster.get(name, 0.0) / need + 1e-9)
            for name, need in zip(("CPU", "GPU"), self._needs(unit), strict=True)
            if need > 0
        ]
        return max(1, min(fits, default=1))

    def _cluster(self) -> dict[str, float]:
        if time.monotonic() - self._resources_at > 5.0:
            self._resources = ray.cluster_resources()
            self._resources_at = time.monotonic()
        return self._resources


def make_backend(options: dict) -> RayBackend:
    """A RayBackend from a sweep's stored options (engine/sweeps/backends.py names them)."""
    return RayBackend(
        options.get("address"),
        **{k: options[k] for k in RAY_OPTIONS if k in options},
        import_dir=options.get("import_dir", ""),
    )


def connect(address: str | None) -> None:
    """Join the cluster at `address` ("auto", "HOST:PORT", "ray://HOST:PORT"), or start a
    local instance; a process that called ray.init itself keeps its connection."""
    if ray.is_initialized():
        return
    if address is None:
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
        return
    check_reachable(address)
    address = resolve_auto(address)
    try:
        # The cluster's nodes run this checkout's engine, whatever hypertui they have
        # installed (they need torch); house data ships inside it.
        ray.init(
            address=address,
            runtime_env={"py_modules": [hypertui_package()]},
            logging_level=logging.WARNING,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise HypertuiError(f"no Ray cluster at {address}: {first_line(exc)}") from None


def hypertui_package() -> str:
    """A folder named `hypertui` that holds the whole package, for Ray to ship to the
    cluster's nodes: the installed package itself, or, in a checkout (whose top-level
    `engine/`, `tui/`, `presets/` sit beside `hypertui/`), a copy assembled once."""
    here = Path(hypertui.__file__).resolve().parent
    if (here / "engine").is_dir():
        return str(here)
    staged = Path(tempfile.mkdtemp(prefix="hypertui-ray-")) / "hypertui"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(here, staged, ignore=skip)
    for name in ("engine", "tui", "presets"):
        shutil.copytree(here.parent / name, staged / name, ignore=skip)
    return str(staged)


def resolve_auto(address: str) -> str:
    """`--address auto` as its user means it: $RAY_ADDRESS, else the cluster that this
    user's `ray start --head` recorded on this machine (Ray's ray_current_cluster file).
    Ray's own "auto" also joins any instance it finds among the machine's processes:
    another user's local Ray, which then left the sweep waiting minutes. Never that."""
    if address != "auto":
        return address
    named = os.environ.get("RAY_ADDRESS", "")
    if named and named != "auto":
        return named
    temp = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    recorded = Path(temp) / "ray" / "ray_current_cluster"
    start = "start one with `ray start --head`, or give its address (--address HOST:PORT)"
    try:
        owner = recorded.stat().st_uid
        found = recorded.read_text().strip()
    except OSError:
        why = f"--address auto: no Ray cluster of yours on this machine; {start}"
        raise HypertuiError(why) from None
    if owner != os.getuid():
        raise HypertuiError(
            f"--address auto: the Ray cluster on this machine ({found}) was started by another "
            f"user (uid {owner}), not joined; {start}"
        )
    return found


def check_reachable(address: str) -> None:
    """Ray waits minutes on an address where nothing listens; a TCP connect says at once."""
    address = resolve_auto(address)
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise HypertuiError(
            f"no Ray cluster at {address}: {exc.strerror or exc} (on the head node, "
            "`ray start --head` starts one; `ray status` shows its address)"
        ) from None
