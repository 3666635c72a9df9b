"""Which torch device a config's `device` names, and what this machine offers."""

from __future__ import annotations

import os

import torch

from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.memory import estimate_bytes


def mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def available_devices() -> list[str]:
    """Device names that will work here, best first; always ends with 'cpu'."""
    names = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    if mps_available():
        names.append("mps")
    return [*names, "cpu"]


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an unavailable device is a ConfigError."""
    if name == "auto":
        return torch.device(available_devices()[0])
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device = {name!r} but CUDA is not available here "
                f"(torch {torch.__version__}); use device = 'auto' or 'cpu'"
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"device = {name!r} but this machine has {torch.cuda.device_count()} CUDA "
                f"device(s): {', '.join(available_devices()[:-1])}"
            )
        return torch.device("cuda", index)
    if name == "mps" and not mps_available():
        raise ConfigError("device = 'mps' but MPS is not available here; use 'auto' or 'cpu'")
    return torch.device(name)


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads > 1 else ''})"


def available_bytes(device) -> int | None:
    """Free memory on `device` (a torch.device), or None when it cannot be told."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as fh:
                for line in fh:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def check_fits(config, device, members: int = 1, rows: int | None = None) -> str:
    """Why the run cannot fit on `device`, or "" when it can (or nobody can tell); `rows`
    is the largest split of the loaded data (see estimate_bytes)."""
    need = estimate_bytes(config, members, rows)
    free = available_bytes(device)
    if free is None or need <= free:
        return ""
    who = f"{members} members need" if members > 1 else "the model needs"
    return (
        f"not enough memory: {who} about {need / 2**30:.1f} GiB "
        f"(parameters, gradients, optimizer state, activations); {device} has "
        f"{free / 2**30:.1f} GiB free"
    )
