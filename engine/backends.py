"""Choosing where a sweep trains: this process (`local`) or Ray workers (`ray`).

    backend = make_backend("ray", address="auto")
    run_sweep(store, sweep_id, backend=backend)

The CLI, the app and a detached runner all call `make_backend`, so a name stored with a
sweep means the same everywhere. Ray is an optional extra and imported only here.
"""

from __future__ import annotations

from engine.errors import ConfigError, HypertuiError
from engine.sweep import Backend, LocalBackend

BACKENDS = ("local", "ray")
INSTALL_RAY = "pip install 'hypertui[ray]'"


def make_backend(name: str = "local", address: str | None = None, **options) -> Backend:
    """The backend called `name`, connected; `options` go to RayBackend (gpus_per_unit,
    cpus_per_unit, max_retries). Raises a HypertuiError (one line) for a bad choice,
    Ray missing or no cluster at `address`."""
    if name not in BACKENDS:
        raise ConfigError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if name == "local":
        if address:
            raise ConfigError(f"--address {address}: only for --backend ray")
        return LocalBackend()
    try:
        import ray  # noqa: F401
    except ImportError:
        raise HypertuiError(f"the ray backend needs Ray: {INSTALL_RAY}") from None
    from engine.ray_backend import RayBackend

    return RayBackend(address, **options)
