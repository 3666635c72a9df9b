"""Choosing where a sweep trains: this process (`local`) or Ray workers (`ray`).

    backend = make_backend({"backend": "ray", "address": "auto"})
    run_sweep(store, sweep_id, backend=backend)

The choice is part of a sweep's stored options (`backend`, `address`, `jobs` for the
local runner's units at once (engine/sweeps/jobs.py), and for Ray
`gpus_per_unit`, `cpus_per_unit`, `max_retries`), so the CLI, the app and a detached
runner read it the same way, and a resume trains where the sweep was started unless told
otherwise. Ray is an optional extra, imported only when a sweep asks for it.
"""

from __future__ import annotations

from hypertui.engine.core.config import check_jobs
from hypertui.engine.core.errors import ConfigError, HypertuiError
from hypertui.engine.sweeps.jobs import default_jobs
from hypertui.engine.sweeps.sweep import Backend, LocalBackend
from hypertui.engine.training.step import check_step

BACKENDS = ("local", "ray")
INSTALL_RAY = "pip install 'hypertui[ray]'"


def check_backend(options: dict) -> None:
    """What can be said before anything starts, as one line (a HypertuiError): an unknown
    backend, --address without Ray, Ray not installed, nothing listening at the address.
    Cheap: it starts no Ray instance (a detached runner does that itself)."""
    name, address = options.get("backend", "local"), options.get("address")
    check_step()  # the population step a runner will pick (engine/training/step.py)
    if name not in BACKENDS:
        raise ConfigError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
    if "jobs" in options:
        if name != "local":
            raise ConfigError("--jobs: only with the local backend (Ray places units itself)")
        check_jobs(options["jobs"])
    if name == "local":
        if address:
            raise ConfigError(f"--address {address}: only with --backend ray")
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise HypertuiError(f"the ray backend needs Ray: {INSTALL_RAY}") from None
    if address:
        from hypertui.engine.sweeps.ray.backend import check_reachable

        check_reachable(address)


def jobs_of(options: dict) -> tuple[int, str]:
    """The local runner's units at once, and why: --jobs (or the preset's `jobs`), else
    what this machine makes sensible."""
    if "jobs" in options:
        return check_jobs(options["jobs"]), "as asked"
    return default_jobs()


def make_backend(options: dict) -> Backend:
    """The backend a sweep's options name, connected (Ray: a local instance, or the
    cluster at `address`)."""
    check_backend(options)
    if options.get("backend", "local") == "local":
        return LocalBackend(jobs_of(options)[0])
    from hypertui.engine.sweeps.ray.backend import make_backend as ray_backend

    return ray_backend(options)


def jobs_line(options: dict) -> str:
    """Where the units train, and how many at once (a run's first line, a runner's log)."""
    if options.get("backend", "local") != "local":
        return "units train on Ray workers, as many at once as the cluster holds"
    jobs, why = jobs_of(options)
    return f"{jobs} unit{'s' if jobs > 1 else ''} at a time ({why}; --jobs N to change)"
