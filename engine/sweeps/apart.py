"""The user's own code trains in a process of its own.

A unit whose model is the user's (`model = "mymodels:build"`) is trained by a child process
(`train_apart`), while this process keeps the store, the heartbeat and the viewers'
requests. Whatever that code does stays a fact about its trial:

- `sys.exit`, `os._exit`, a crash or the kernel's OOM killer end the child, not the
  runner: the trial fails with the exit code, and the sweep goes on;
- any exception raised in training (a `TypeError` in `forward`, say) fails the trial with
  its first line; the whole traceback goes to the runner's stderr (its log);
- `print()` in the user's module writes to stderr: stdout stays the `--json` stream;
- a `build()` or `forward` that never returns is killed GRACE_S after a cancel or skip.

Children fork from a forkserver that has imported torch once (0.1 s a child on a busy
2-core box, against ~15 s for a fresh interpreter), and never from this process, whose
threads, store connections and CUDA context a fork must not inherit. Each child imports the
user's module afresh.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hypertui.engine.core.config import MODELS
from hypertui.engine.core.controls import Controls
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Event, Failed, Finished, Progress, RunStarted
from hypertui.engine.core.records import RunRow
from hypertui.engine.sweeps.function import call_function, import_problem, is_function_trial
from hypertui.engine.sweeps.unit import train_unit

GRACE_S = 5.0  # a halted child that has not ended by then is killed
BUILD_TIMEOUT_S = 60.0  # a model check whose build() has not returned by then is refused
POLL_S = 0.25  # how often this process reads requests while the child trains
PRELOAD = ["torch", "hypertui.engine.sweeps.unit"]  # never the user's module


def runs_own_code(unit: list[RunRow]) -> bool:
    """Whether a unit runs the user's code: a model of theirs, or their whole function."""
    return any(is_function_trial(row) or row.config.get("model") not in MODELS for row in unit)


@dataclass(frozen=True)
class _Refused:
    """A HypertuiError in the child (bad data, a model that does not build): the sweep
    stops with it, as it would in this process."""

    message: str


@dataclass(frozen=True)
class _Crashed:
    """The user's code raised or called sys.exit: the unit's open trials fail with it."""

    reason: str


@contextlib.contextmanager
def _stderr_with_a_descriptor() -> Iterator[None]:
    """multiprocessing hands sys.stderr's descriptor to the helper processes it starts;
    under Textual, which captures sys.stderr, that is -1, which fork refuses."""
    saved = sys.stderr
    try:
        usable = saved.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = False
    if not usable and sys.__stderr__ is not None:
        sys.stderr = sys.__stderr__
    try:
        yield
    finally:
        sys.stderr = saved


def train_apart(
    unit: list[RunRow],
    controls: Controls,
    data_dir: Path | None,
    history: dict | None = None,
    threads: int | None = None,
) -> Iterator[Event]:
    """`sweeps.unit.train_unit` (or the user's function) in a child process; yields its
    events as they come. `history`: a function trial's halving rungs so far; `threads`:
    the child's torch threads (--jobs shares the cores). A skip that names one member of a
    population goes to the child, which ends that member alone."""
    ctx = multiprocessing.get_context("forkserver")
    with _stderr_with_a_descriptor():
        halt, pause = ctx.Event(), ctx.Event()
        skips_out, skips_in = ctx.Pipe(duplex=False)
    child, receive = _start(
        _child, unit, data_dir, halt, pause, history, threads, skips_out, daemon=True
    )
    skips_out.close()
    told: set[str] = set()  # the members named to the child so far
    started: set[str] = set()
    ended: set[str] = set()
    last: dict[str, Progress] = {}
    halted_at: float | None = None
    crash = ""
    try:
        while True:
            named = {row.id for row in unit if row.id in controls.skip_runs}
            if len(unit) > 1 and named - told:
                skips_in.send(sorted(named - told))
                told |= named
            skipped = len(unit) == 1 and bool(named)
            if (controls.halted() or skipped) and halted_at is None:
                halt.set()
                halted_at = time.monotonic()
            (pause.set if controls.pause.is_set() else pause.clear)()
            if halted_at is not None and time.monotonic() - halted_at > GRACE_S:
                break  # a build() or forward that never returns: killed below
            if not receive.poll(POLL_S):
                if child.is_alive() or receive.poll():
                    continue
                break
            try:
                message = receive.recv()
            except EOFError:  # the child is gone; its exit code says how
                break
            if isinstance(message, _Refused):
                raise HypertuiError(message.message)
            if isinstance(message, _Crashed):
                crash = message.reason
                break
            if isinstance(message, RunStarted):
                started.add(message.run_id)
            elif isinstance(message, Progress):
                last[message.run_id] = message
            else:
                ended.add(message.run_id)
            yield message
    finally:
        receive.close()
        skips_in.close()
        if child.is_alive():
            child.kill()
        child.join()
    for row in unit:
        if row.id in ended:
            continue
        if halted_at is not None:
            if row.id in started:  # a trial that never started stays pending
                yield _cancelled(row.id, last.get(row.id))
            continue
        yield Failed(row.id, crash or _exit_reason(child.exitcode))


def check_build(config: dict, timeout_s: float = BUILD_TIMEOUT_S) -> str:
    """Why the user's model cannot train with `config` ("" when it builds): built once in a
    child process, as a trial would build it (output shape checked on a batch), before a
    sweep is created, so a model that imports but is wrong leaves nothing behind."""
    child, receive = _start(_build_child, config)
    try:
        if receive.poll(timeout_s):
            return receive.recv()
        if child.is_alive():
            return f"model = {config.get('model')!r}: build() did not return within {timeout_s:g} s"
        return _exit_reason(child.exitcode)
    except EOFError:  # it ended without a word: os._exit, a signal
        child.join()
        return _exit_reason(child.exitcode)
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


def check_function(spec: str, timeout_s: float = BUILD_TIMEOUT_S) -> str:
    """Why `train = spec` cannot be called ("" when it can): imported once in a child
    process, before a sweep is created, so a typo leaves nothing behind."""
    child, receive = _start(_function_child, spec)
    try:
        if receive.poll(timeout_s):
            return receive.recv()
        if child.is_alive():
            return f"train = {spec!r}: importing it did not end within {timeout_s:g} s"
        return _exit_reason(child.exitcode)
    except EOFError:
        child.join()
        return f"train = {spec!r}: importing it ended the process ({_exit_reason(child.exitcode)})"
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()


def _function_child(spec: str, send, path: list[str]) -> None:
    _protect(path)
    try:
        send.send(import_problem(spec))
    finally:
        send.close()


def _start(target, *args, daemon: bool = False):
    """A child forked from the forkserver running `target(*args, send, sys.path)`; returns
    it and the end of the pipe its messages come out of."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    with _stderr_with_a_descriptor():
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=target, args=(*args, send, list(sys.path)), name="hypertui-own-code"
        )
        child.daemon = daemon
        child.start()
    send.close()
    return child, receive


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
        return f"your code's process was killed by {name} (out of memory?)"
    return f"your code ended its process with exit code {code} (sys.exit or os._exit in it?)"


def _cancelled(run_id: str, last: Progress | None) -> Finished:
    steps = last.step if last else 0
    samples = last.samples if last else 0
    train_s = last.train_s if last else 0.0
    return Finished(
        run_id=run_id,
        status="cancelled",
        epochs_done=float(last.epoch - 1 + int(last.end_of_epoch)) if last else 0.0,
        steps=steps,
        samples=samples,
        elapsed_s=train_s,
        wall_s=train_s,
        final={},
        best={},
        best_epoch=None,
        test={},
        reason=f"stopped by request (its process did not end within {GRACE_S:g} s: killed)",
    )


def _protect(path: list[str]) -> None:
    """A child's first step: the user's output to stderr, signals left to the parent."""
    os.dup2(2, 1)  # print() in the user's code, and anything that writes to fd 1
    sys.stdout = sys.stderr
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)  # the runner hears them and tells us
    sys.path[:] = path + [p for p in sys.path if p not in path]


def _build_child(config: dict, send, path: list[str]) -> None:
    """Build the model once; send "" or why it cannot train."""
    _protect(path)
    from hypertui.engine.core.config import make_config
    from hypertui.engine.training.models import build_model

    try:
        build_model(make_config(config))
        send.send("")
    except HypertuiError as exc:
        send.send(str(exc))
    except SystemExit as exc:
        send.send(f"model = {config.get('model')!r}: your code called sys.exit({exc.code!r})")
    except BaseException as exc:  # not from build_own_model's checks: the user's import
        first = (str(exc).splitlines() or [""])[0]
        send.send(f"model = {config.get('model')!r}: {type(exc).__name__}: {first}")
    finally:
        send.close()


def _child(unit, data_dir, halt, pause, history, threads, skips, send, path: list[str]) -> None:
    """The child's whole life: train the unit, send every event, say how it ended."""
    _protect(path)
    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        if is_function_trial(unit[0]):  # one trial a unit: the user's function
            call_function(unit[0], halt, pause, send.send, history)
            return
        controls = Controls(stop=halt, pause=pause)
        threading.Thread(target=_hear_skips, args=(skips, controls), daemon=True).start()
        for event in train_unit(unit, controls, data_dir):
            send.send(event)
    except HypertuiError as exc:
        send.send(_Refused(str(exc)))
    except SystemExit as exc:
        send.send(_Crashed(f"your code called sys.exit({exc.code!r})"))
    except BaseException as exc:  # the user's code raised: its trial fails, with the traceback
        traceback.print_exc()
        first = (str(exc).splitlines() or [""])[0]
        where = "traceback in the runner's log or stderr"
        send.send(_Crashed(f"{type(exc).__name__}: {first} ({where})"))
    finally:
        sys.stderr.flush()
        send.close()


def _hear_skips(skips, controls: Controls) -> None:
    """The members the parent names, into the child's skip_runs (a new set each time:
    the training thread may be reading the old one)."""
    try:
        while True:
            controls.skip_runs = controls.skip_runs | set(skips.recv())
    except (EOFError, OSError):  # the parent is done with us
        pass
