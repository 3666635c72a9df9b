"""Learning-rate schedules: the factor of the configured lr at each optimizer step.

`onecycle` is torch.optim.lr_scheduler.OneCycleLR with its defaults (cosine warm-up over
the first 30% of steps from lr/25 to lr, then cosine annealing down to lr/250,000) but
without momentum cycling: the schedule changes the learning rate only, so that SGD stays
plain SGD and Adam keeps its betas. It spans the planned steps, epochs x batches per
epoch; a time budget may end a run before the schedule does. Single runs and populations
both take their learning rate from `lr_factor`, so they follow the same schedule. Under
`pbt` the factor is 1: population based training changes each member's lr itself
(engine/training/pbt.py).
"""

from __future__ import annotations

import math

PCT_START, DIV_FACTOR, FINAL_DIV_FACTOR = 0.3, 25.0, 1e4  # OneCycleLR's defaults


def planned_steps(epochs: int, n_train: int, batch_size: int) -> int:
    return epochs * -(-n_train // batch_size)


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The multiplier of lr for optimizer step `step` (0-based) of `total` planned steps."""
    if schedule in ("constant", "pbt"):
        return 1.0
    start, peak = 1 / DIV_FACTOR, 1.0
    end = start / FINAL_DIV_FACTOR
    warm_end = PCT_START * total - 1  # OneCycleLR's end of phase one (a float)
    last = total - 1
    if step <= warm_end:
        return _cosine(start, peak, step / warm_end if warm_end > 0 else 1.0)
    pct = (min(step, last) - warm_end) / (last - warm_end) if last > warm_end else 1.0
    return _cosine(peak, end, pct)


def _cosine(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
