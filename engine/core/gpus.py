"""GPU telemetry: each NVIDIA GPU's utilisation and memory, and what one process holds.

    gpus, note = read_gpus(pid=sweep.pid)   # [] and "" on a machine without NVIDIA GPUs

Read through NVML with `nvidia-ml-py` (the optional extra `hypertui[gpu]`, imported only
here, when a viewer asks), the binding NVIDIA keeps. NVML is initialised once a process
(that costs tens of milliseconds; a reading then costs well under one) and never from the
training loop: a viewer reads, the runner trains undisturbed. Whatever fails says so in
`note`, once a line, never as a traceback: no binding (on a machine whose driver is
there), no driver, a call the GPU refuses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

INSTALL = "pip install 'hypertui[gpu]'"
DRIVER = Path("/proc/driver/nvidia/version")  # there when NVIDIA's kernel driver is loaded


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    util: int | None  # % of the last sample period a kernel ran; None: not reported
    used: int  # bytes of memory in use (every process)
    total: int
    process: int | None  # bytes the asked process and its own hold; None: not asked or unknown


_lock = threading.Lock()
_state: dict = {}  # "nvml": the module, once initialised; "error": why it cannot be


def _nvml():
    """The initialised binding, or None with the reason in _state['error']."""
    with _lock:
        if "nvml" in _state or "error" in _state:
            return _state.get("nvml")
        try:
            import pynvml
        except ImportError:
            _state["error"] = (
                f"GPU telemetry needs nvidia-ml-py: {INSTALL}" if DRIVER.exists() else ""
            )
            return None
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
            _state["error"] = "" if not DRIVER.exists() else f"NVML did not start: {exc}"
            return None
        _state["nvml"] = pynvml
        return pynvml


def read_gpus(pid: int | None = None) -> tuple[list[Gpu], str]:
    """Every GPU's reading (with what `pid` and the processes under it hold on each), and a
    note ('' when all is well, or when there is simply no NVIDIA GPU here)."""
    nvml = _nvml()
    if nvml is None:
        return [], _state.get("error", "")
    pids = _Family(pid) if pid is not None else None
    out = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            out.append(
                Gpu(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    util=_util(nvml, handle),
                    used=int(memory.used),
                    total=int(memory.total),
                    process=_held_by(nvml, handle, pids),
                )
            )
    except Exception as exc:  # NVMLError: a GPU fell off the bus, a reset, ...
        return out, f"GPU telemetry failed: {exc}"
    return out, ""


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _util(nvml, handle) -> int | None:
    try:
        return int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception:  # NVMLError_NotSupported on some boards (MIG slices, vGPUs)
        return None


def _held_by(nvml, handle, pids: _Family | None) -> int | None:
    if pids is None:
        return None
    try:
        processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:  # not supported, or not allowed in this container
        return None
    held = [p.usedGpuMemory for p in processes if p.usedGpuMemory and p.pid in pids]
    return int(sum(held)) if held else 0


class _Family:
    """A process and those under it, read from /proc on the first question only: a reading
    of GPUs that run nothing walks no /proc (a viewer reads every second)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.pids: set[int] | None = None

    def __contains__(self, pid: int) -> bool:
        if self.pids is None:
            self.pids = family(self.pid)
        return pid in self.pids


def family(pid: int, proc: Path = Path("/proc")) -> set[int]:
    """`pid` and every process under it: a runner trains --jobs units and your own code in
    processes forked from its forkserver (its grandchildren), and they hold the GPU memory."""
    parents: dict[int, list[int]] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):  # gone meanwhile, or not a process
            continue
    found, todo = {pid}, [pid]
    while todo:
        for child in parents.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def unavailable() -> bool:
    """Whether NVML is known not to answer in this process (no binding, no driver): every
    later reading is the same, and a viewer need not ask again."""
    return "error" in _state


def line(gpu: Gpu) -> str:
    """'GPU 0 87% · 3.1/80 GiB (runner 1.2 GiB)'"""
    util = f" {gpu.util}%" if gpu.util is not None else ""
    held = f" (runner {gpu.process / 2**30:.1f} GiB)" if gpu.process else ""
    return f"GPU {gpu.index}{util} · {gpu.used / 2**30:.1f}/{gpu.total / 2**30:.0f} GiB{held}"
