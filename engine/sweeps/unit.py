"""One unit of a sweep: a single trial, or trials that train as one population.

The local backend trains units here or, for the user's own code, in a child process
(apart.py); a Ray worker trains them on its machine (ray/worker.py). All three call this.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from hypertui.engine.core.config import make_config, make_configs
from hypertui.engine.core.controls import Controls
from hypertui.engine.core.events import Event
from hypertui.engine.core.paths import checkpoints_dir
from hypertui.engine.core.records import RunRow
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run


def train_unit(unit: list[RunRow], controls: Controls, data_dir: Path | None) -> Iterator[Event]:
    """One unit: a single trial, or trials that train as one population. A skip that names
    a run (`controls.skip_runs`) ends that trial alone: a population goes on without it."""
    if len(unit) == 1:
        row = unit[0]
        return run(
            make_config(row.config),
            should_stop=lambda: controls.halted() or row.id in controls.skip_runs,
            run_id=row.id,
            data_dir=data_dir,
            should_pause=controls.pause.is_set,
            checkpoints=checkpoints_dir(row.sweep_id, row.id),
        )
    configs = make_configs([row.config for row in unit])
    members = [
        Member(row.id, c, checkpoints_dir(row.sweep_id, row.id))
        for row, c in zip(unit, configs, strict=True)
    ]
    return run_population(
        members,
        should_stop=controls.halted,
        data_dir=data_dir,
        should_pause=controls.pause.is_set,
        skipped=lambda: controls.skip_runs,
    )
