"""Which torch device a config's `device` names, and what this machine offers."""

from __future__ import annotations

import torch

from engine.errors import ConfigError


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
