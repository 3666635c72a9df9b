"""Bounded curve buffers: a long run never grows memory or slows a redraw.

A `Curve` keeps at most `limit` points; when full it keeps every other point and doubles
its stride, so it always spans the whole run at roughly even spacing (toolong-style
coalescing: the UI redraws from these on a timer, never once per event).
"""

from __future__ import annotations

from dataclasses import dataclass, field

X_AXES = ("epoch", "samples", "seconds")
LIMIT = 400  # points per curve: more than a terminal is wide


@dataclass
class Curve:
    limit: int = LIMIT
    points: list[tuple[float, float, float, dict[str, float]]] = field(default_factory=list)
    stride: int = 1  # keep one point in `stride` from now on
    _skipped: int = 0

    def add(self, epoch: float, samples: float, seconds: float, values: dict[str, float]) -> None:
        self._skipped += 1
        if self._skipped < self.stride:
            return
        self._skipped = 0
        self.points.append((epoch, samples, seconds, values))
        if len(self.points) > self.limit:
            self.points = self.points[::2]
            self.stride *= 2

    def series(self, metric: str, x_axis: str) -> tuple[list[float], list[float]]:
        """x and y of one metric against one of X_AXES (points without it left out)."""
        column = X_AXES.index(x_axis)
        points = [(p[column], p[3][metric]) for p in self.points if metric in p[3]]
        return [x for x, _ in points], [y for _, y in points]
