"""`hypertui analyze`: importance, slices, top configs and claim verdicts as text or JSON."""

from __future__ import annotations

import json
import math

from rich.console import Console
from rich.table import Table

from hypertui.engine.analysis.claims import judge_sweep
from hypertui.engine.analysis.compare import compare_sweep
from hypertui.engine.analysis.export import cell, fmt
from hypertui.engine.analysis.importance import Analysis, analyze
from hypertui.engine.analysis.pareto import (
    COSTS,
    Front,
    check_objectives,
    front,
    higher_is_better,
    objective_choices,
    sweep_objectives,
    value_text,
)
from hypertui.engine.analysis.significance import versus_best
from hypertui.engine.core.errors import ConfigError, suggest
from hypertui.engine.core.objective import metric_names, objective
from hypertui.engine.store.store import Store

BAR = "█"


def bar(share: float, width: int = 24) -> str:
    if math.isnan(share):
        return ""
    full = share * width
    return BAR * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def sweep_analysis(
    store: Store, sweep, metric: str | None = None, scale: str | None = None
) -> tuple[Analysis, list]:
    runs = store.runs(sweep.id)
    goal = objective(sweep.problem, runs, sweep.options)
    if metric is not None:
        known = metric_names(sweep.problem, gaussian=True) if not goal.own_loop else goal.metrics
        if metric not in known:
            raise ConfigError(f"--metric {metric!r}{suggest(metric, known)}; one of {list(known)}")
    try:
        return analyze(runs, sweep.swept, goal, metric, scale=scale), runs
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from None  # "--scale log: ..."


def verdicts(sweep, runs: list, scale: str | None) -> list:
    """The checks, judged on the scale asked (each metric's default where none was)."""
    return judge_sweep(sweep.preset_toml, sweep.problem, runs, sweep.swept, scale)


def analysis_json(store: Store, sweep, metric: str | None = None, scale: str | None = None) -> dict:
    result, runs = sweep_analysis(store, sweep, metric, scale)
    comp = compare_sweep(sweep, runs)
    versus = versus_best(comp, runs)
    return {
        "sweep_id": sweep.id,
        "preset": sweep.preset,
        **result.to_dict(),
        "versus_best": [
            {"point": g.point, **(v.__dict__ if v else {})}
            for g, v in zip(comp.groups, versus, strict=True)
        ],
        "checks": [v.__dict__ for v in verdicts(sweep, runs, scale)],
    }


def print_analysis(
    store: Store, sweep, metric: str | None = None, as_json: bool = False, scale: str | None = None
) -> None:
    if as_json:
        print(json.dumps(_clean(analysis_json(store, sweep, metric, scale)), allow_nan=False))
        return
    result, runs = sweep_analysis(store, sweep, metric, scale)
    out = Console()
    out.print(
        f"sweep {sweep.id}: {sweep.preset} — {result.metric}", highlight=False, soft_wrap=True
    )
    out.print(result.scale_text, highlight=False, soft_wrap=True)
    out.print(f"importance: {result.method_text}", highlight=False, soft_wrap=True)
    table = Table("", "share", "", box=None, pad_edge=False)
    for s in result.importance:
        table.add_row(s.name, "-" if math.isnan(s.share) else f"{s.share:.0%}", bar(s.share))
    out.print(table)
    for name, sl in result.slices.items():
        t = Table(
            name + (" (log)" if sl.log_x else ""),
            result.value_name,
            f"95% CI over {sl.ci_over}",
            "n",
            box=None,
            pad_edge=False,
        )
        for p in sl.points:
            ci = "" if math.isnan(p.low) else f"[{fmt(p.low)}, {fmt(p.high)}]"
            t.add_row(p.label, fmt(p.mean), ci, str(p.n))
        out.print(t)
    top = Table("top", *result.swept, result.value_name, "n", box=None, pad_edge=False)
    for i, c in enumerate(result.top, 1):
        top.add_row(
            str(i), *(str(cell(c.point.get(f))) for f in result.swept), fmt(c.mean), str(c.n)
        )
    out.print(top)
    for v in verdicts(sweep, runs, scale):
        out.print(f"check: {v.check} → {v.verdict} ({v.detail})", highlight=False, soft_wrap=True)


def _clean(value):
    """JSON-ready: NaN as null (strict JSON has no NaN), tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sweep_front(store: Store, sweep, names: str | None = None) -> Front:
    """The sweep's Pareto front over configs: of `names` (comma-separated, checked as a
    preset's objectives are), else of the preset's objectives, else its metric against
    training seconds."""
    runs = store.runs(sweep.id)
    goal = objective(sweep.problem, runs, sweep.options)
    if names is None:
        objectives, _ = sweep_objectives(sweep.preset_toml, goal.main)
    else:
        config = runs[0].config if runs else {}
        if goal.own_loop:
            allowed = [m for m in goal.metrics if not m.startswith("test_")] + list(COSTS)
        else:
            allowed = objective_choices(
                sweep.problem, config.get("task", ""), config.get("loss", ""), goal.main
            )
        try:
            objectives = list(
                check_objectives(
                    [n.strip() for n in names.split(",")], sweep.problem, "", "", goal.main, allowed
                )
            )
        except ConfigError as exc:
            raise ConfigError(f"--{exc}") from None
    higher = [higher_is_better(n, goal.main, goal.higher) for n in objectives]
    return front(runs, sweep.swept, objectives, higher)


def print_front(store: Store, sweep, names: str | None = None, as_json: bool = False) -> None:
    """`analyze --pareto`: the front's members as a table (or one JSON object)."""
    fr = sweep_front(store, sweep, names)
    if as_json:
        doc = {"sweep_id": sweep.id, "preset": sweep.preset, **fr.to_dict()}
        print(json.dumps(_clean(doc), allow_nan=False))
        return
    out = Console()
    arrows = ", ".join(
        f"{n} ({'higher' if h else 'lower'} is better)"
        for n, h in zip(fr.objectives, fr.higher, strict=True)
    )
    out.print(f"sweep {sweep.id}: {sweep.preset} — Pareto front of {arrows}", highlight=False,
              soft_wrap=True)  # fmt: skip
    if fr.message:
        out.print(fr.message, highlight=False, soft_wrap=True)
    else:
        runs = max(c.n for c in fr.configs)
        over = f"the mean of each config's {runs} runs" if runs > 1 else "one run per config"
        out.print(
            f"{len(fr.members)} of {len(fr.configs)} configs on the front ({over}; "
            "none of them beaten on every objective by another)",
            highlight=False,
            soft_wrap=True,
        )
        table = Table("", *sweep.swept, *fr.objectives, "n", box=None, pad_edge=False)
        for i, c in enumerate(fr.members, 1):
            table.add_row(
                str(i),
                *(str(cell(c.point.get(f))) for f in sweep.swept),
                *(value_text(n, v) for n, v in zip(fr.objectives, c.values, strict=True)),
                str(c.n),
            )
        out.print(table)
    if fr.left_out():
        out.print(fr.left_out(), highlight=False, soft_wrap=True)
