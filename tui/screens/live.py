"""Live: watch a sweep train — curves of the current trial, all trials overlaid, progress."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, RichLog, Static

from engine.compare import main_metric
from engine.export import fmt
from engine.store import FINAL_STATUSES, Store
from tui.curves import X_AXES, Curve
from tui.report import describe_point
from tui.runner import SweepRunner
from tui.widgets.chart import PALETTE, Chart, Line

REDRAW_S = 0.5  # current-trial charts redraw at most twice a second
OVERLAY_S = 2.0  # the all-trials chart (the costly one) at most every 2 s
# Lines in the all-trials chart: the best ones when there are more. Eight is what one can
# tell apart (the palette's colours), and it bounds the build (72 lines in plotext took
# 257 ms on the UI thread).
OVERLAY_LINES = len(PALETTE)


@dataclass
class TrialView:
    index: int
    run_id: str
    point: dict
    seed: int
    status: str
    color: str
    label: str
    curve: Curve = field(default_factory=Curve)
    n_train: int = 0
    wall_s: float | None = None
    total: float = 1.0  # epochs, or budget seconds
    budget: float | None = None


class CpuMeter:
    """System CPU utilisation from /proc/stat deltas (Linux); '' elsewhere."""

    def __init__(self) -> None:
        self.last = self._read()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    def percent(self) -> str:
        now = self._read()
        if now is None or self.last is None or now[0] == self.last[0]:
            return ""
        total, idle = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return f"CPU {100 * (1 - idle / total):.0f}%"


def gpu_status() -> str:
    """Utilisation and memory of GPU 0 from nvidia-smi, or '' without one."""
    if not shutil.which("nvidia-smi"):
        return ""
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=utilization.gpu,memory.used,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=3,
        ).stdout.splitlines()[0]
        util, used, total = (v.strip() for v in out.split(","))
        return f"GPU {util}% · {int(used) / 1024:.1f}/{int(total) / 1024:.0f} GiB"
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return ""


class LiveScreen(Screen):
    BINDINGS = [
        Binding("p", "pause", "Pause/resume"),
        Binding("s", "skip", "Skip trial"),
        Binding("c", "cancel", "Cancel sweep"),
        Binding("l", "log_y", "Log y"),
        Binding("x", "x_axis", "x: epoch/samples/s"),
        Binding("r", "results", "Results"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self, store_path: Path, sweep_id: str, data_dir: Path | None = None, start: bool = True
    ) -> None:
        super().__init__()
        self.store_path = store_path
        self.sweep_id = sweep_id
        self.data_dir = data_dir
        self.start_runner = start
        self.runner = SweepRunner(self, store_path, sweep_id, data_dir)
        self.x_axis = X_AXES[0]
        self.ylog = False
        self.dirty = True
        self.overlay_dirty = True
        self.current: TrialView | None = None
        self.ended = False
        self.device = ""
        self.cpu = CpuMeter()
        self.gpu = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="live-progress"):
            with Horizontal(classes="progress-row"):
                yield Static("trial", id="trial-label", classes="progress-label")
                yield ProgressBar(id="trial-bar", show_eta=False)
            with Horizontal(classes="progress-row"):
                yield Static("sweep", id="sweep-label", classes="progress-label")
                yield ProgressBar(id="sweep-bar", show_eta=False)
                yield Static("", id="eta")
            yield Static("", id="status-line")
        with Horizontal(id="live-top"):
            yield Chart("current trial: loss", id="chart-loss")
            yield Chart("current trial", id="chart-metric")
        yield Chart("all trials", id="chart-all")
        yield RichLog(id="event-log", max_lines=200, markup=True, wrap=False)
        yield Footer()

    # -- setup -----------------------------------------------------------------------

    def on_mount(self) -> None:
        store = Store(self.store_path)
        sweep = store.sweep(self.sweep_id)
        self.sweep = sweep
        self.metric, self.higher = main_metric(sweep.problem)
        self.title = f"Live · {sweep.preset} · sweep {sweep.id}"
        groups: dict[str, str] = {}
        self.trials: dict[str, TrialView] = {}
        for run in store.runs(sweep.id):
            key = json.dumps(run.point, sort_keys=True)
            color = groups.setdefault(key, PALETTE[len(groups) % len(PALETTE)])
            view = TrialView(
                run.idx,
                run.id,
                run.point,
                run.seed,
                run.status,
                color,
                describe_point(run.point),
                wall_s=run.wall_s,
            )
            if run.status in ("finished", "diverged", "pruned"):  # resumed: show what exists
                n = (run.env.get("sizes") or {}).get("train", 1)
                for p in store.points(run.id):
                    view.curve.add(p["samples"] / n, p["samples"], p["elapsed_s"], p)
            self.trials[run.id] = view
        store.close()
        self.query_one("#chart-metric", Chart).title = f"current trial: {self.metric}"
        self.log_line(
            f"sweep {sweep.id}: {sweep.preset} — {sweep.n_runs} trials, {sweep.n_done} already done"
        )
        if self.start_runner:
            self.runner.start()
        self.set_interval(REDRAW_S, self.redraw)
        self.set_interval(OVERLAY_S, self.redraw_overlay)
        self.set_interval(1.0, self.update_status)
        self.update_progress()

    # -- events from the runner ---------------------------------------------------------

    def on_sweep_runner_event(self, message: SweepRunner.Event) -> None:
        r = message.record
        kind = r["event"]
        view = self.trials.get(r.get("run_id", ""))
        if kind == "started" and view:
            view.status = "running"
            view.n_train = r["sizes"]["train"]
            view.curve = Curve()
            view.budget = r["config"]["time_budget_s"]
            view.total = view.budget or r["config"]["epochs"]
            self.current = view
            self.device = f"{r['device']} · {r['device_name']}"
            self.log_line(f"trial {view.index + 1}: {view.label} seed={view.seed} started")
        elif kind == "progress" and view:
            n = view.n_train or 1
            values = {
                "train_loss": r["train_loss"],
                **{k: v for k, v in r["metrics"].items() if v is not None},
            }
            view.curve.add(r["samples"] / n, r["samples"], r["elapsed_s"], values)
        elif kind == "finished" and view:
            view.status, view.wall_s = r["status"], r["wall_s"]
            value = fmt((r["final"] or {}).get(self.metric))
            style = {
                "finished": "green",
                "diverged": "yellow",
                "pruned": "cyan",
                "cancelled": "dim",
            }[r["status"]]
            reason = f" ({r['reason']})" if r["reason"] and r["status"] != "finished" else ""
            self.log_line(
                f"[{style}]trial {view.index + 1} {r['status']}[/{style}]: "
                f"{view.label} seed={view.seed} {self.metric} {value}{reason}"
            )
        elif kind == "failed" and view:
            view.status = "failed"
            self.log_line(f"[red]trial {view.index + 1} failed[/red]: {r['reason']}")
        elif kind == "summary":
            self.log_line(f"sweep {r['status']}: press r for results")
        self.dirty = True  # widgets update at the next redraw tick, not once per event

    def on_sweep_runner_ended(self, message: SweepRunner.Ended) -> None:
        self.ended = True
        if message.returncode not in (0, 130):
            self.log_line(
                f"[red]the sweep stopped: {message.error or 'exit ' + str(message.returncode)}"
            )
            self.notify(message.error or "the sweep stopped with an error", severity="error")
        else:
            self.notify("Sweep ended. Press r for the results.")
        self.refresh_bindings()
        self.update_progress()

    # -- drawing ------------------------------------------------------------------------

    def log_line(self, text: str) -> None:
        self.query_one("#event-log", RichLog).write(text)

    def update_progress(self) -> None:
        done = sum(v.status in FINAL_STATUSES for v in self.trials.values())
        total = len(self.trials)
        self.query_one("#sweep-bar", ProgressBar).update(total=total, progress=done)
        self.query_one("#sweep-label", Static).update(f"sweep {done}/{total}")
        walls = [v.wall_s for v in self.trials.values() if v.wall_s and v.status != "cancelled"]
        eta = ""
        if walls and done < total and not self.ended:
            left = (total - done) * sum(walls) / len(walls)
            eta = f"ETA {int(left // 60)}:{int(left % 60):02d}"
        self.query_one("#eta", Static).update(eta)

    def update_trial_bar(self) -> None:
        view = self.current
        if view is None:
            return
        last = view.curve.points[-1] if view.curve.points else None
        progress = 0.0
        if last:
            progress = min(last[2], view.total) if view.budget else last[0]
        self.query_one("#trial-bar", ProgressBar).update(total=view.total, progress=progress)
        unit = "s" if view.budget else "epochs"
        self.query_one("#trial-label", Static).update(
            f"trial {view.index + 1} {fmt(progress, 3)}/{fmt(view.total, 3)} {unit}"
        )

    def update_status(self) -> None:
        view = self.current
        trial = f"trial {view.index + 1}: {view.label} seed={view.seed}" if view else ""
        parts = [self.device or "starting…", self.cpu.percent(), trial]
        if "cuda" in self.device:
            self.poll_gpu()
            parts.append(self.gpu)
        if self.runner.paused:
            parts.append("[b]PAUSED[/b] (p to resume)")
        if self.ended:
            parts.append("ended")
        self.query_one("#status-line", Static).update(" · ".join(p for p in parts if p))

    @work(thread=True, exclusive=True, group="gpu")
    def poll_gpu(self) -> None:
        self.gpu = gpu_status()

    @property
    def xlabel(self) -> str:
        return {"epoch": "epoch", "samples": "samples seen", "seconds": "training s"}[self.x_axis]

    def redraw(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        self.overlay_dirty = True
        self.update_progress()
        self.update_trial_bar()
        xlabel = self.xlabel
        view = self.current
        if view is not None:
            lines = []
            for metric, color in (("train_loss", "cyan"), ("val_loss", "orange")):
                xs, ys = view.curve.series(metric, self.x_axis)
                lines.append(Line(metric, xs, ys, color))
            self.query_one("#chart-loss", Chart).show(lines, xlabel, self.ylog)
            xs, ys = view.curve.series(self.metric, self.x_axis)
            self.query_one("#chart-metric", Chart).show(
                [Line(self.metric, xs, ys, view.color)],
                xlabel,
                self.ylog and not self.higher,
                title=f"trial {view.index + 1}: {self.metric}",
            )

    def redraw_overlay(self) -> None:
        if not self.overlay_dirty:
            return
        self.overlay_dirty = False
        series = {v.run_id: v.curve.series(self.metric, self.x_axis) for v in self.trials.values()}
        shown = [v for v in self.trials.values() if series[v.run_id][0]]
        title = f"all trials: {self.metric} by swept value"
        if len(shown) > OVERLAY_LINES:
            shown = sorted(shown, key=lambda v: self._rank(v, series[v.run_id][1]))
            shown = shown[:OVERLAY_LINES]
            title = (
                f"best {OVERLAY_LINES} of {len(self.trials)} trials: {self.metric} by swept value"
            )
            shown.sort(key=lambda v: v.index)
        overlay, labelled = [], set()
        for v in shown:
            xs, ys = series[v.run_id]
            label = "" if v.label in labelled else v.label
            labelled.add(v.label)
            overlay.append(Line(label[:30], xs, ys, v.color))
        self.query_one("#chart-all", Chart).show(
            overlay, self.xlabel, self.ylog and not self.higher, title=title
        )

    def _rank(self, view: TrialView, ys: list[float]) -> float:
        """Sort key, best first: the latest finite value (a diverged trial ranks last)."""
        last = next((y for y in reversed(ys) if y is not None and math.isfinite(y)), None)
        if last is None or view.status == "diverged":
            return math.inf
        return -last if self.higher else last

    # -- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("pause", "skip", "cancel"):
            return self.runner.running
        return True

    def action_pause(self) -> None:
        paused = self.runner.toggle_pause()
        self.log_line("paused" if paused else "resumed")
        self.update_status()

    def action_skip(self) -> None:
        self.runner.skip()
        self.log_line("skipping the current trial…")

    def action_cancel(self) -> None:
        self.runner.cancel()
        self.log_line("cancelling: the running trial stops, the rest stay pending")

    def action_log_y(self) -> None:
        self.ylog = not self.ylog
        self.redraw_now()

    def action_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.notify(f"x axis: {self.x_axis}", timeout=1.5)
        self.redraw_now()

    def redraw_now(self) -> None:
        """A key press shows at once; the costly overlay follows once that frame is out."""
        self.dirty = True
        self.redraw()
        self.call_after_refresh(self.redraw_overlay)

    def action_results(self) -> None:
        from tui.screens.results import ResultsScreen

        self.app.push_screen(ResultsScreen(self.store_path, self.sweep_id))

    def action_back(self) -> None:
        if self.runner.running:
            self.notify("The sweep is still running: c cancels it, q quits.", severity="warning")
            return
        self.app.pop_screen()
