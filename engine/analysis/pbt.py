"""What population based training did to a run (engine/training/pbt.py), read from records.

A PBT member's analysis holds `pbt_schedule`, the hyperparameters its weights followed
([from_epoch, lr, momentum, weight_decay] rows, inherited from the members it copied: the
first row is its start, epoch 0) and `pbt_lineage`, its own copies ({epoch, from, lr,
momentum, weight_decay}: at the end of that epoch it took the weights of run `from`).
"""

from __future__ import annotations

import math
from typing import Any

from hypertui.engine.analysis.export import fmt


def schedule(analysis: dict[str, Any]) -> list[list]:
    """The [from_epoch, lr, momentum, weight_decay] rows its weights followed; [] if none."""
    return list(analysis.get("pbt_schedule") or [])


def lr_by_epoch(analysis: dict[str, Any], epochs: int) -> list[float]:
    """The lr in force during each epoch 1..epochs (a row at epoch e holds from e + 1)."""
    rows = schedule(analysis)
    out = []
    for epoch in range(1, epochs + 1):
        now = [r for r in rows if r[0] < epoch]
        out.append(now[-1][1] if now else math.nan)
    return out


def schedule_lines(analysis: dict[str, Any], epochs: int, momentum: bool = True) -> list[str]:
    """One line a stretch of epochs: "epochs 1-4  lr 0.01  weight_decay 0  momentum 0.9";
    then the run's own copies."""
    rows = schedule(analysis)
    lines = []
    for n, (start, lr, mom, wd) in enumerate(rows):
        end = rows[n + 1][0] if n + 1 < len(rows) else epochs
        span = f"{start + 1}" if end == start + 1 else f"{start + 1}-{end}"
        line = f"epochs {span:<7} lr {fmt(lr, 4)}  weight_decay {fmt(wd, 3)}"
        lines.append(line + (f"  momentum {fmt(mom, 3)}" if momentum else ""))
    copies = analysis.get("pbt_lineage") or []
    if copies:
        lines.append(
            "copied: " + "; ".join(f"after epoch {c['epoch']} run {c['from']}" for c in copies)
        )
    elif rows:
        lines.append("copied: never (its own weights throughout)")
    return lines


def winner(runs: list, main: str, higher: bool):
    """The finished PBT run best on `main` at its best epoch, or None (not a PBT sweep)."""
    scored = [
        r
        for r in runs
        if r.status == "finished"
        and schedule(r.analysis or {})
        and math.isfinite((r.best or {}).get(main, math.nan))
    ]
    if not scored:
        return None
    key = lambda r: r.best[main]  # noqa: E731
    return max(scored, key=key) if higher else min(scored, key=key)


def winner_line(runs: list, main: str, higher: bool) -> str:
    """Results' line: the winner's lr over epochs, "" when the sweep did not run PBT."""
    best = winner(runs, main, higher)
    if best is None:
        return ""
    rows = schedule(best.analysis)
    steps = " → ".join(f"{fmt(lr, 3)} (from epoch {start + 1})" for start, lr, *_ in rows)
    return f"PBT winner run {best.id} ({main} {fmt(best.best[main])}): lr {steps}"
