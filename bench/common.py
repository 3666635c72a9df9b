"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Callable

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{dt.date.today()} · {os.cpu_count()} CPUs ({cpu}) · {gpu} · "
        f"torch {torch.__version__} · python {platform.python_version()}"
    )


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paired(
    ours: Callable[[], float], bare: Callable[[], float], repeats: int
) -> tuple[float, float]:
    """Best of `repeats` for each, calls alternated so that both see the same machine.

    Each callable returns the seconds it measured itself. The minimum is the figure least
    disturbed by other load on a shared machine, and what the code itself costs.
    """
    a, b = [], []
    for _ in range(repeats):
        a.append(ours())
        b.append(bare())
    return min(a), min(b)


def line(name: str, ours: float, bare: float, unit: str, target: str = "") -> str:
    ratio = ours / bare if bare else float("nan")
    scale, suffix = (1e3, "ms") if unit == "s" and ours < 1 else (1.0, unit)
    text = (
        f"{name:<44} hypertui {ours * scale:9.3f} {suffix:<3} bare {bare * scale:9.3f} "
        f"{suffix:<3} ratio {ratio:6.3f}"
    )
    return text + (f"   target {target}" if target else "")
