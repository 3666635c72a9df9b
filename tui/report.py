"""Rich tables for the headless commands: comparisons, sweeps, runs, one run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from engine.compare import Comparison, compare, main_metric, run_metrics
from engine.export import cell, fmt, mean_std
from engine.store import Store

SPARK = "▁▂▃▄▅▆▇█"


def describe_point(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={cell(v)}" for k, v in point.items()) or "(base config)"


TERMINAL_METRICS = {  # metric -> short header; the CSV export has every metric
    "val_acc": "val_acc",
    "val_mse": "val_mse",
    "best_val_acc": "best",
    "best_val_mse": "best",
    "test_acc": "test",
    "test_mse": "test",
    "val_nll": "val_nll",
    "duration_s": "time s",
}


def comparison_table(comp: Comparison, title: str = "") -> Table:
    """Fits 80 columns for a two-field sweep: mean±std of the metrics that matter most."""
    shown = [m for m in TERMINAL_METRICS if any(m in g.stats for g in comp.groups)]
    troubled = any(g.n_diverged or g.n_failed for g in comp.groups)
    arrow = "↑" if comp.higher_is_better else "↓"
    table = Table(
        title=title or None,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption=f"ranked by {comp.main} {arrow}; mean±std over finished runs"
        + ("; div/fail counted, not averaged" if troubled else ""),
    )
    table.add_column("#", justify="right")
    for field in comp.swept:
        table.add_column(field, no_wrap=True)
    table.add_column("n", justify="right")
    if troubled:
        table.add_column("div/fail", justify="right")
    for m in shown:
        if m != "duration_s":
            table.add_column(
                TERMINAL_METRICS[m] + (arrow if m == comp.main else ""),
                justify="right",
                no_wrap=True,
            )
    table.add_column("time s", justify="right", min_width=6)  # mean wall seconds per run
    for rank, g in enumerate(comp.groups, 1):
        cells = [str(rank), *(str(cell(g.point[f])) for f in comp.swept), str(g.n_finished)]
        if troubled:
            cells.append(f"{g.n_diverged}/{g.n_failed}" if g.n_diverged or g.n_failed else "")
        duration = g.stats.get("duration_s")
        cells += [mean_std(g.stats.get(m), 3, 1, "±") for m in shown if m != "duration_s"]
        table.add_row(*cells, fmt(duration.mean, 3) if duration else "-")
    return table


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def sweep_status(s) -> str:
    """A sweep's status as users read it: a running one says whether it holds."""
    if s.running and s.paused:
        return "running (paused)"
    return s.status


def print_sweeps(store: Store) -> None:
    table = Table("sweep", "preset", "problem", "created", "status", "runs", box=None)
    sweeps = store.sweeps()
    for s in sweeps:
        table.add_row(
            s.id, s.preset, s.problem, when(s.created_at), sweep_status(s), f"{s.n_done}/{s.n_runs}"
        )
    console = Console()
    console.print(table if table.row_count else f"no sweeps in {store.path} yet")
    if any(s.resumable for s in sweeps):
        console.print(
            "resume an unfinished sweep with: hypertui run --resume SWEEP_ID", highlight=False
        )
    if any(s.running for s in sweeps):
        console.print("follow a running sweep with: hypertui attach SWEEP_ID", highlight=False)


def print_runs(store: Store, sweep) -> None:
    main, _ = main_metric(sweep.problem)
    table = Table("#", "run", *sweep.swept, "seed", "status", main, "epochs", "time s", box=None)
    for r in store.runs(sweep.id):
        m = run_metrics(r)
        table.add_row(
            str(r.idx + 1),
            r.id,
            *(str(cell(r.point.get(f))) for f in sweep.swept),
            str(r.seed),
            r.status,
            fmt(m.get(main)),
            fmt(r.epochs_done),
            fmt(r.wall_s, 3),
        )
    console = Console()
    console.print(
        f"sweep {sweep.id}: {sweep.preset} ({sweep.status}) — {sweep.description}", highlight=False
    )
    console.print(table)
    console.print(comparison_table(compare(store.runs(sweep.id), sweep.swept, sweep.problem)))


def sparkline(values: list[float], width: int = 40) -> str:
    values = [v for v in values if v == v]  # drop NaN
    if not values:
        return ""
    if len(values) > width:  # keep the shape: sample evenly, always include the last
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width - 1)] + [values[-1]]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(SPARK[int((v - lo) / span * (len(SPARK) - 1))] for v in values)


def print_run(store: Store, run_id: str) -> None:
    r = store.run(run_id)
    console = Console()
    console.print(
        f"run {r.id} — trial {r.idx + 1} of sweep {r.sweep_id}: {r.status}"
        + (f" ({r.reason})" if r.reason else ""),
        highlight=False,
    )
    config = Table("field", "value", box=None, title="config")
    for k, v in r.config.items():
        config.add_row(k, str(cell(v)))
    console.print(config)
    info = Table("", "", box=None, show_header=False)
    for label, value in (
        ("device", f"{r.device} {r.device_name or ''}"),
        ("parameters", r.n_params),
        ("data", " ".join(f"{k} {v}" for k, v in r.env.get("sizes", {}).items())),
        ("notes", "; ".join(r.env.get("notes", []))),
        ("versions", " ".join(f"{k} {v}" for k, v in r.env.items() if k not in ("sizes", "notes"))),
        ("git revision", r.git_rev),
        ("epochs done", r.epochs_done),
        ("samples seen", r.samples),
        ("training s", r.elapsed_s),
        ("wall s", r.wall_s),
        ("best epoch", r.best_epoch),
    ):
        info.add_row(label, str(value if value is not None else "-"))
    console.print(info)
    metrics = Table("metric", "final", "best", box=None, title="metrics")
    for k in dict.fromkeys([*r.final, *r.best]):
        metrics.add_row(k, fmt(r.final.get(k)), fmt(r.best.get(k)))
    for k, v in r.test.items():
        metrics.add_row(k, fmt(v), "")
    console.print(metrics)
    points = store.points(r.id)
    if points:
        main = main_metric(r.config["problem"])[0]
        for key in ("train_loss", "val_loss", main):
            series = [p.get(key) for p in points if p.get(key) is not None]
            if series:
                console.print(
                    f"{key:>10} {sparkline(series)}  {fmt(series[0])} → {fmt(series[-1])}",
                    highlight=False,
                )
        console.print(
            f"{len(points)} curve points over {points[-1]['elapsed_s']:.1f} training s",
            highlight=False,
        )
