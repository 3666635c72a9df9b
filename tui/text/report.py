"""Rich tables for the headless commands: comparisons, sweeps, runs, one run."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from hypertui.engine.analysis import pbt
from hypertui.engine.analysis.compare import Comparison, compare_sweep, run_metrics
from hypertui.engine.analysis.export import cell, fmt, mean_std
from hypertui.engine.core.config import applies, applying
from hypertui.engine.core.objective import objective
from hypertui.engine.core.records import OWN_LOOP_PROBLEMS
from hypertui.engine.store.store import Store
from hypertui.tui.text.safe import escape, plain

SPARK = "▁▂▃▄▅▆▇█"


def describe_point(point: dict[str, Any]) -> str:
    """Plain text (no markup): print it with `highlight=False, markup=False` or `plain`."""
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


SEEDS = "init and batch-order seeds (fixed data split)"  # what varies between our runs
TOP_ROWS = 20  # groups a terminal table shows unless asked for all (`--all`)
DROP_ORDER = ("duration_s", "val_nll", "best_val_acc", "best_val_mse", "test_acc", "test_mse")


def comparison_table(
    comp: Comparison,
    title: str = "",
    width: int | None = None,
    top: int | None = TOP_ROWS,
    runs: list | None = None,
) -> Table:
    """mean±std of the metrics that matter most, `width` columns wide at most.

    Numbers are never cut: when the table is too wide, the least important metric columns
    go (the caption names them; the export has every one), and swept values wrap. With
    `runs`, a "vs#1" column says whether each row differs from the best by a test
    (engine/analysis/significance.py): "=" marks a row statistically tied with the best,
    "few" one the seeds cannot decide.
    """
    from hypertui.engine.analysis.significance import versus_best

    versus = versus_best(comp, runs) if runs is not None else None
    headers = terminal_metrics(comp)
    shown = list(headers)
    order = ["duration_s", *reversed(shown)] if comp.own_loop else DROP_ORDER
    order = [*order, *(m for m in reversed(shown) if m not in order)]  # never the main one
    width = width or Console().width
    dropped: list[str] = []
    while True:
        table = _comparison_table(comp, title, headers, shown, dropped, top, versus)
        if Console(width=10_000).measure(table).maximum <= width:
            return table
        drop = next((m for m in order if m in shown and m != comp.main), None)
        if drop is None:
            return table  # the main metric stays whatever the width: swept values wrap
        shown.remove(drop)
        dropped.append(headers[drop])


def terminal_metrics(comp: Comparison) -> dict[str, str]:
    """The metrics a terminal table shows, with their short headers: those that matter
    most of our problems; all that a script's runs logged (the widest dropped first)."""
    reached = [m for m in comp.metrics if any(m in g.stats for g in comp.groups)]
    if not comp.own_loop:
        headers = dict(TERMINAL_METRICS)
        if comp.main not in headers:  # its config's metric ranks: it, its best and test lead
            score = comp.main.removeprefix("val_")
            lead = {comp.main: comp.main, f"best_{comp.main}": "best", f"test_{score}": "test"}
            headers = lead | {m: h for m, h in headers.items() if h not in ("best", "test")}
        return {m: h for m, h in headers.items() if m in reached}
    short = {f"best_{comp.main}": "best", "duration_s": "time s"}
    return {m: short.get(m, m) for m in reached if m != "epochs_done"}


def _versus_cell(v) -> str:
    if v is None or v.test == "best":
        return "-"
    return "few" if v.tied is None else "=≠"[not v.tied]


def _comparison_table(comp, title, headers, shown, dropped, top, versus=None) -> Table:
    troubled = any(g.n_diverged or g.n_failed for g in comp.groups)
    arrow = "↑" if comp.higher_is_better else "↓"
    groups = comp.groups if top is None else comp.groups[:top]
    seeds = "seeds" if comp.own_loop else SEEDS
    if comp.folds > 1:
        seeds = f"{comp.seeds} seeds x {comp.folds} folds (the split's variance included)"
    notes = [
        f"ranked by {comp.main} {arrow}; mean±std over {seeds}; (n=) where a metric has"
        " fewer values"
    ]
    if not comp.own_loop and any(m.startswith("test_") for m in shown):
        notes.append("test: the best epoch's weights")
    if troubled:
        notes.append("div/fail counted, not averaged")
    if dropped:
        notes.append(f"not shown at this width: {', '.join(dropped)} (see the export)")
    if len(groups) < len(comp.groups):
        notes.append(
            f"{len(comp.groups) - len(groups)} more groups (`hypertui runs SWEEP --all` lists all)"
        )
    table = Table(
        title=title or None,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption="; ".join(notes),
    )
    table.add_column("#", justify="right", no_wrap=True)
    for field in comp.swept:
        table.add_column(field, overflow="fold")
    table.add_column("n", justify="right", no_wrap=True)
    if troubled:
        table.add_column("div/fail", justify="right", no_wrap=True)
    for m in shown:
        if m != "duration_s":
            table.add_column(
                headers[m] + (arrow if m == comp.main else ""),
                justify="right",
                no_wrap=True,
            )
    if "duration_s" in shown:
        table.add_column("time s", justify="right", no_wrap=True)  # mean wall s per run
    if versus is not None:
        table.add_column("vs#1", no_wrap=True, min_width=4)
        table.caption = (table.caption or "") + (
            "; vs#1: = tied with #1, ≠ differs (Tukey, pooled error, p<.05), few: too few seeds"
        )
    for rank, g in enumerate(groups, 1):
        cells = [str(rank), *(plain(cell(g.point[f])) for f in comp.swept), str(g.n_finished)]
        if troubled:
            cells.append(f"{g.n_diverged}/{g.n_failed}" if g.n_diverged or g.n_failed else "")
        for m in shown:
            if m == "duration_s":
                continue
            s = g.stats.get(m)
            short = s is not None and s.n < g.n_finished
            cells.append(mean_std(s, 3, 2, "±") + (f" (n={s.n})" if short else ""))
        if "duration_s" in shown:
            duration = g.stats.get("duration_s")
            cells.append(fmt(duration.mean, 3) if duration else "-")
        if versus is not None:
            cells.append(_versus_cell(versus[rank - 1]))
        table.add_row(*cells)
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


def print_sweeps(store: Store, tag: str | None = None) -> None:
    """The store's sweeps, newest first (`tag`: those tagged so); tags show when any has one."""
    sweeps = [s for s in store.sweeps() if tag is None or tag in s.tags]
    tagged = any(s.tags for s in sweeps)
    columns = ["sweep", "preset", "problem", "created", "status", "runs"] + ["tags"] * tagged
    table = Table(*columns, box=None)
    for s in sweeps:
        table.add_row(
            s.id,
            plain(s.title),
            s.problem,
            when(s.created_at),
            sweep_status(s),
            f"{s.n_done}/{s.n_planned}",
            *([plain(" ".join(s.tags))] if tagged else []),
        )
    if tag is not None and not sweeps:
        Console().print(f"no sweep tagged {tag!r} in {store.path}", highlight=False)
        return
    console = Console()
    console.print(table if table.row_count else f"no sweeps in {store.path} yet")
    if any(s.resumable for s in sweeps):
        console.print(
            "resume an unfinished sweep with: hypertui run --resume SWEEP_ID", highlight=False
        )
    if any(s.running for s in sweeps):
        console.print("follow a running sweep with: hypertui attach SWEEP_ID", highlight=False)


def runs_table(runs: list, swept: list[str], main: str, width: int) -> tuple[Table, list[str]]:
    """One row per run, `width` columns wide at most, and the columns left out.

    Ids, statuses and numbers are never cut (rich cut them to `c023…`, `dive…` at 80
    columns on a 5-field grid): past the width, time s goes first, then the swept values
    become one config column that wraps, then epochs go."""
    for config_column, dropped in (
        (False, []), (False, ["time s"]), (True, ["time s"]), (True, ["time s", "epochs"]),
    ):  # fmt: skip
        table = _runs_table(runs, swept, main, config_column, dropped)
        measure = Console(width=10_000).measure(table)
        if (measure.minimum if config_column else measure.maximum) <= width:
            break
    return table, dropped


def _runs_table(runs, swept, main, config_column: bool, dropped: list[str]) -> Table:
    table = Table(box=None)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("run", no_wrap=True)
    if config_column:
        table.add_column("config", overflow="fold", ratio=1)
    for f in [] if config_column else swept:
        table.add_column(f, no_wrap=True)
    for name in ("seed", "status", main, "epochs", "time s"):
        if name not in dropped:
            table.add_column(name, no_wrap=True, justify="left" if name == "status" else "right")
    for r in runs:
        m = run_metrics(r)
        values = [plain(cell(r.point.get(f))) for f in swept]
        if config_column:
            values = [plain(describe_point({f: r.point.get(f) for f in swept}))]
        numbers = {"epochs": fmt(r.epochs_done), "time s": fmt(r.wall_s, 3)}
        table.add_row(
            str(r.idx + 1),
            r.id,
            *values,
            str(r.seed),
            r.status,
            fmt(m.get(main)),
            *(v for k, v in numbers.items() if k not in dropped),
        )
    return table


def print_runs(store: Store, sweep, top: int | None = TOP_ROWS) -> None:
    runs = store.runs(sweep.id)
    main = objective(sweep.problem, runs, sweep.options).main
    console = Console()
    table, dropped = runs_table(runs, sweep.swept, main, console.width)
    console.print(
        f"sweep {sweep.id}: {escape(sweep.title)} ({sweep.status}) — {escape(sweep.description)}"
        + (
            f"\n{escape(' '.join('#' + t for t in sweep.tags))} {escape(sweep.note)}".rstrip()
            if sweep.tags or sweep.note
            else ""
        ),
        highlight=False,
    )
    if sweep.options.get("overrides"):  # --set or the editor: the description is the preset's
        console.print(plain(f"changed from the preset: {sweep.options['overrides']}"))
    console.print(table)
    if dropped:
        console.print(
            f"not shown at this width: {', '.join(dropped)} (`hypertui show RUN_ID`: one run)",
            highlight=False,
        )
    runs = store.runs(sweep.id)
    comp = compare_sweep(sweep, runs)
    console.print(comparison_table(comp, top=top, runs=runs))
    print_verdicts(console, sweep, runs)


def print_verdicts(console: Console, sweep, runs: list) -> None:
    """The claim's checks and their verdicts (engine/analysis/claims.py), one line each."""
    from hypertui.engine.analysis.claims import judge_sweep

    for v in judge_sweep(sweep.preset_toml, sweep.problem, runs, sweep.swept):
        line = f"check: {v.check} → {v.verdict} ({v.detail})"
        console.print(plain(line), highlight=False)


def sparkline(values: list[float], width: int = 40) -> str:
    values = [v for v in values if math.isfinite(v)]  # a diverged curve ends in NaN or inf
    if not values:
        return ""
    if len(values) > width:  # keep the shape: sample evenly, always include the last
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width - 1)] + [values[-1]]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(SPARK[int((v - lo) / span * (len(SPARK) - 1))] for v in values)


def _momentum(r) -> bool:
    return applies("momentum", r.config)


POINT_FIELDS = ("seq", "epoch", "step", "samples", "elapsed_s", "end_of_epoch")  # not metrics


def print_run(store: Store, run_id: str) -> None:
    r = store.run(run_id)
    sweep = store.sweep(r.sweep_id)
    own = sweep.problem in OWN_LOOP_PROBLEMS  # the config is the script's, all of it
    console = Console()
    console.print(
        f"run {r.id} — trial {r.idx + 1} of sweep {r.sweep_id}: {r.status}"
        + (f" ({escape(r.reason)})" if r.reason else ""),
        highlight=False,
    )
    config = Table("field", "value", box=None, title="config")
    shown = r.config if own else applying(r.config)  # a table MLP has no channels...
    for k, v in shown.items():
        config.add_row(k, plain(cell(v)))
    console.print(config)
    info = Table("", "", box=None, show_header=False)
    for label, value in (
        ("device", f"{r.device} {r.device_name or ''}" if r.device else None),
        ("parameters", r.n_params),
        ("data", " ".join(f"{k} {v}" for k, v in r.env.get("sizes", {}).items())),
        ("notes", "; ".join(r.env.get("notes", []))),
        (
            "versions",
            " ".join(
                f"{k} {v}" for k, v in r.env.items() if k in ("python", "torch", "cuda") and v
            ),
        ),
        (
            "budget counted",
            "; ".join(r.env[k] for k in ("budget_counts", "budget_shared_by") if r.env.get(k))
            or None,
        ),
        ("step", r.env.get("step")),  # a population's: eager, or a CUDA graph (step.py)
        ("git revision", r.git_rev),
        ("epochs done", fmt(r.epochs_done, 6) if r.epochs_done is not None else None),
        ("samples seen", r.samples),
        ("training s", f"{r.elapsed_s:.1f}" if r.elapsed_s is not None else None),
        ("wall s", f"{r.wall_s:.1f}" if r.wall_s is not None else None),
        ("best epoch", r.best_epoch),
    ):
        info.add_row(label, plain(value if value is not None else "-"))
    console.print(info)
    metrics = Table("metric", "final", "best", box=None, title="metrics")
    for k in dict.fromkeys([*r.final, *r.best]):
        metrics.add_row(k, fmt(r.final.get(k)), fmt(r.best.get(k)))
    for k, v in r.test.items():
        metrics.add_row(k, fmt(v), "")
    console.print(metrics)
    if lines := pbt.schedule_lines(r.analysis or {}, r.config.get("epochs", 0), _momentum(r)):
        console.print("PBT: the hyperparameters its weights followed", highlight=False)
        for line in lines:
            console.print(f"  {line}", highlight=False)
    points = store.points(r.id)
    if points:
        main = objective(sweep.problem, [r], sweep.options).main
        logged = dict.fromkeys(k for p in points for k in p if k not in POINT_FIELDS)
        for key in logged if own else ("train_loss", "val_loss", main):
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
