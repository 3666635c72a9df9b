"""One policy for diverged runs wherever configs are ranked: halving's rungs
(engine/core/halving.py, in a population and in its replay), the analysis's top configs
(engine/analysis/importance.py) and the grouped comparison (engine/analysis/compare.py).

A diverged run has no score (NaN or inf). Leaving it out ranked a config by its seeds that
did not diverge: halving kept as best a config whose other seed diverged, while the
analysis counted that run at the worst value of the sweep. Here a config with a diverged
seed ranks as diverged: after every config none of whose seeds diverged, the fewer diverged
seeds first, then by its mean with each diverged seed counted at the worst finite score
ranked with it (`with_worst`, which the analysis's importance uses for its values too).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def with_worst(values: Sequence[float | None], higher: bool) -> list[float]:
    """`values` with every missing or non-finite one (a diverged run) at the worst finite
    one; all NaN when none is finite."""
    scores = [v for v in values if finite(v)]
    worst = (min(scores) if higher else max(scores)) if scores else math.nan
    return [v if finite(v) else worst for v in values]  # type: ignore[misc]


def ranked(scores: dict[K, Sequence[float | None]], higher: bool) -> list[K]:
    """Configs best first from their seeds' scores (None or non-finite: diverged), by the
    policy above; equal configs keep their order."""
    worst = with_worst([v for values in scores.values() for v in values], higher)
    filled = iter(worst)
    keys = {}
    for key, values in scores.items():
        own = [next(filled) for _ in values]
        diverged = sum(not finite(v) for v in values)
        mean = sum(own) / len(own) if own and not math.isnan(own[0]) else math.inf
        keys[key] = (diverged, -mean if higher and math.isfinite(mean) else mean)
    return sorted(scores, key=keys.__getitem__)
