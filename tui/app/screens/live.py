"""Live: follow a sweep from the store — curves of the current trial, all trials, progress.

The sweep trains in a runner process of its own (engine/sweeps/runner.py); this screen only reads
the store (tui/app/follow.py) and asks for pause, skip and cancel through it. Leaving the
screen or quitting the app never stops the sweep: any viewer can come back to it.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, RichLog, Static

from hypertui.engine.analysis.export import fmt
from hypertui.engine.core.events import Failed, Finished, Progress, RunStarted, SweepEvent
from hypertui.engine.core.gpus import Gpu, read_gpus
from hypertui.engine.core.gpus import line as gpu_line
from hypertui.engine.core.gpus import unavailable as gpus_unavailable
from hypertui.engine.core.objective import Objective, guess_higher, objective
from hypertui.engine.core.records import FINAL_STATUSES, OWN_LOOP_PROBLEMS, SweepRow
from hypertui.engine.store.follow import Trial
from hypertui.tui.app.curves import X_AXES, Curve
from hypertui.tui.app.follow import SweepFollower
from hypertui.tui.app.screens.dialogs import ConfirmScreen
from hypertui.tui.app.widgets.chart import PALETTE, Chart, Line
from hypertui.tui.text.report import describe_point
from hypertui.tui.text.safe import clean, escape

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
    latest: float | None = None  # the main metric's latest value: ranks the overlay
    partial: bool = False  # curve holds only points since attaching; load the rest to draw


class CpuMeter:
    """CPU use of one process (the sweep's runner) from /proc/PID/stat deltas (Linux).

    The machine's total would stay at 100% while the sweep is paused if anything else
    runs; the runner's own share is what says whether training is at work."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.last: tuple[float, float] | None = None

    def _read(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime+stime

    def percent(self, pid: int | None) -> str:
        if pid != self.pid:
            self.pid, self.last = pid, None
        if pid is None:
            return ""
        used, now = self._read(), time.monotonic()
        if used is None:
            return ""
        last, self.last = self.last, (used, now)
        if last is None or now == last[1]:
            return ""
        return f"runner CPU {100 * (used - last[0]) / (now - last[1]):.0f}%"


def time_left(sweep: SweepRow, done_by_runner: int, left: int, now: float) -> float | None:
    """Seconds left at the pace of the sweep's runner so far: trials it ended per second of
    its time not held on a pause; None while it holds, or before it has a pace. (A mean of
    trial durations is K times too high for populations, whose members all report the
    population's duration.)"""
    if not left or not done_by_runner or not sweep.runner_started or sweep.paused:
        return None
    working = max(now - sweep.runner_started - sweep.paused_s, 0.0)
    return left * working / done_by_runner


class LiveScreen(Screen):
    BINDINGS = [
        Binding("p", "pause", "Pause/resume"),
        Binding("s", "skip", "Skip trial"),
        Binding("c", "cancel", "Cancel sweep"),
        Binding("m", "next_metric", "Metric"),
        Binding("l", "log_y", "Log y"),
        Binding("x", "x_axis", "x: epoch/samples/s"),
        Binding("r", "results", "Results"),
        Binding("g", "gpus", "GPUs"),  # offered where NVML sees a GPU (check_action)
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, store_path: Path, sweep_id: str) -> None:
        super().__init__()
        self.store_path = store_path
        self.sweep_id = sweep_id
        self.follower: SweepFollower | None = None
        self.replayed = 0  # curve points up to this rowid are read on demand
        self.loading: set[str] = set()  # run ids whose stored curves are being read
        self.trials: dict[str, TrialView] = {}
        self.goal = Objective("", False, ())  # what ranks the trials (the follower says)
        self.metric, self.higher = "", False  # the metric charted: the goal's, or one picked
        self.picked = False  # the user picked the metric charted (m)
        self.x_axis = X_AXES[0]
        self.ylog = False
        self.dirty = True
        self.overlay_dirty = True
        self.current: TrialView | None = None
        self.sweep: SweepRow | None = None
        self.done_by_runner = 0
        self.neighbours: tuple[tuple[str, str], ...] = ()
        self.device = ""  # as shown: "CPU (1 thread)", "cuda:0 NVIDIA H200"
        self.device_key = ""
        self.cpu = CpuMeter()
        self.gpus: list[Gpu] = []  # NVML's last reading, every GPU here (engine/core/gpus.py)
        self.gpu_note = ""  # why there is none, where there should be (no binding, ...)
        self.opened = time.monotonic()

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
            yield Static("", id="gpu-pane")
        with Horizontal(id="live-top"):
            yield Chart("current trial: loss", id="chart-loss")
            yield Chart("current trial", id="chart-metric")
        yield Chart("all trials", id="chart-all")
        yield RichLog(id="event-log", max_lines=200, markup=True, wrap=False)
        yield Footer()

    # -- setup -----------------------------------------------------------------------

    def on_mount(self) -> None:
        """Nothing is read here: the follower's first update brings the sweep, its trials
        and what ranks them, read in its thread (a busy store never holds the UI)."""
        self.title = f"Live · sweep {self.sweep_id}"
        self.follower = SweepFollower(self, self.store_path, self.sweep_id)
        self.follower.start()  # its first update replays what the store already holds
        self.set_interval(REDRAW_S, self.redraw)
        self.set_interval(OVERLAY_S, self.redraw_overlay)
        self.set_interval(1.0, self.update_status)
        self.update_progress()

    def set_goal(self, goal: Objective) -> None:
        self.goal = goal
        if not self.picked:
            self.metric, self.higher = goal.main, goal.higher
            self.query_one("#chart-metric", Chart).title = f"current trial: {self.metric}"

    def set_trials(self, trials: list[Trial]) -> None:
        """Every trial of the sweep (a script's run joining its group may add one and
        change the swept values of the others): views made, points and labels updated."""
        groups: dict[str, str] = {}
        for trial in trials:
            key = json.dumps(trial.point, sort_keys=True)
            color = groups.setdefault(key, PALETTE[len(groups) % len(PALETTE)])
            label = describe_point(trial.point)
            view = self.trials.get(trial.id)
            if view is None:
                self.trials[trial.id] = TrialView(
                    trial.idx, trial.id, trial.point, trial.seed, "pending", color, label
                )
            else:
                view.point, view.color, view.label = trial.point, color, label

    def on_unmount(self) -> None:
        if self.follower:
            self.follower.stop()

    # -- what the store says ----------------------------------------------------------

    def on_sweep_follower_update(self, message: SweepFollower.Update) -> None:
        was_running = self.running
        first = self.sweep is None
        self.sweep = message.sweep
        if message.replay:
            self.set_goal(message.replay.goal)
        elif self.own_loop and self.sweep.options.get("metric") not in (None, self.goal.main):
            self.set_goal(objective(self.sweep.problem, [], self.sweep.options))  # a first log
        if message.trials is not None:
            self.set_trials(message.trials)
        if first:
            sweep = self.sweep
            self.title = f"Live · {clean(sweep.preset)} · sweep {sweep.id}"
            self.log_line(
                f"sweep {sweep.id}: {escape(sweep.preset)} — {sweep.n_runs} trials,"
                f" {sweep.n_done} already done"
            )
        self.done_by_runner = message.done_by_runner
        self.neighbours = message.neighbours
        replay = message.replay
        n = len(message.events)
        for i, item in enumerate(message.events):  # attaching: log only the last few lines
            self.take_event(item, log=not replay or i >= n - 8)
        if replay:
            self.attached(replay)
        if was_running != self.running:
            self.refresh_bindings()
            if not self.running and self.sweep.status != "pending":
                self.sweep_ended()
        self.dirty = True  # widgets update at the next redraw tick, not once per event

    def attached(self, replay) -> None:
        """The first update: stored trials replayed without their curves (a 648-trial sweep
        holds 130k points); the current trial's and the drawn ones' curves load now."""
        self.replayed = replay.upto
        for view in self.trials.values():
            if view.status != "pending":
                view.partial = True
                value = replay.latest.get(view.run_id)
                view.latest = value[1] if value else None
        if self.current:
            self.load_curves([self.current])
        self.redraw_now()  # at once, not on the next tick

    def load_curves(self, views: list[TrialView]) -> None:
        """Ask for the stored points of trials drawn for the first time since attaching
        (read in a thread: `on_sweep_follower_curves` takes them)."""
        wanted = [v.run_id for v in views if v.partial and v.run_id not in self.loading]
        if wanted:
            self.loading.update(wanted)
            self.follower.read_curves(wanted, self.replayed)

    def on_sweep_follower_curves(self, message: SweepFollower.Curves) -> None:
        """A trial's stored points before the replay, then those that came since."""
        for run_id, stored in message.curves.items():
            self.loading.discard(run_id)
            view = self.trials.get(run_id)
            if view is None or not view.partial:
                continue
            view.partial = False
            since, view.curve = view.curve, Curve()
            for e in stored:
                self.add_point(view, e)
            for point in since.points:
                view.curve.add(*point)
        self.redraw_now()

    @property
    def settled(self) -> bool:
        """Whether what the charts show is all read: the sweep, and every drawn trial's
        stored curve (tests wait for it before they look)."""
        return self.sweep is not None and not self.loading and not self.overlay_dirty

    def add_point(self, view: TrialView, e: Progress) -> None:
        values = {"train_loss": e.train_loss, **e.metrics}
        values = {k: v for k, v in values.items() if v is not None}
        if view.n_train:
            x = e.samples / view.n_train  # epochs, fractional inside one
        else:  # a script's run: the epoch it logged (with no step), else the step
            x = e.epoch if e.end_of_epoch else e.step
        view.curve.add(x, e.samples, e.elapsed_s, values)
        if self.metric in values:
            view.latest = values[self.metric]

    def on_sweep_follower_lost(self, message: SweepFollower.Lost) -> None:
        self.log_line(f"[red]cannot follow the sweep any more: {escape(message.error)}")
        self.notify(escape(message.error), severity="error")

    def take_event(self, item: SweepEvent, log: bool) -> None:
        e = item.event
        view = self.trials.get(e.run_id)
        if view is None:
            return
        if isinstance(e, RunStarted):
            view.status = "running"
            view.n_train = e.sizes.get("train", 0 if self.own_loop else 1)
            view.curve, view.partial, view.latest = Curve(), False, None
            view.budget = e.config.get("time_budget_s")
            view.total = view.budget or e.config.get("epochs", 1)
            self.current = view
            self.device_key = e.device  # cpu, cuda:0, mps
            self.device = e.device_name if e.device == "cpu" else f"{e.device} {e.device_name}"
            self.device = self.device.strip()  # a script's run names no device
            if log:
                label = escape(view.label)
                self.log_line(f"trial {view.index + 1}: {label} seed={view.seed} started")
        elif isinstance(e, Progress):
            self.add_point(view, e)
        elif isinstance(e, Finished):
            view.status, view.wall_s = e.status, e.wall_s
            if log:
                value = fmt(e.final.get(self.metric))
                style = {"finished": "green", "diverged": "yellow", "pruned": "cyan"}.get(
                    e.status, "dim"
                )
                reason = f" ({escape(e.reason)})" if e.reason and e.status != "finished" else ""
                self.log_line(
                    f"[{style}]trial {view.index + 1} {e.status}[/{style}]: "
                    f"{escape(view.label)} seed={view.seed} {self.metric} {value}{reason}"
                )
        elif isinstance(e, Failed):
            view.status = "failed"
            if log:
                self.log_line(f"[red]trial {view.index + 1} failed[/red]: {escape(e.reason)}")

    def sweep_ended(self) -> None:
        sweep = self.sweep
        if sweep.error:
            self.log_line(f"[red]the sweep stopped: {escape(sweep.error)}")
            self.notify(escape(sweep.error), severity="error", timeout=10)
        elif sweep.status == "interrupted" and self.own_loop:
            self.log_line("the script stopped without ending its run (killed?): it is interrupted")
        elif sweep.status == "interrupted":
            self.log_line("the sweep's runner stopped: r resumes it from History")
        else:
            self.log_line(f"sweep {sweep.status}: press r for results")
            self.notify(f"Sweep {sweep.status}. Press r for the results.")
        self.update_progress()

    @property
    def running(self) -> bool:
        return self.sweep is not None and self.sweep.status in ("pending", "running")

    @property
    def own_loop(self) -> bool:
        return self.sweep is not None and self.sweep.problem in OWN_LOOP_PROBLEMS

    @property
    def ended(self) -> bool:
        return self.sweep is not None and not self.running

    # -- drawing ------------------------------------------------------------------------

    def log_line(self, text: str) -> None:
        self.query_one("#event-log", RichLog).write(text)

    def update_progress(self) -> None:
        done = sum(v.status in FINAL_STATUSES for v in self.trials.values())
        total = len(self.trials)
        self.query_one("#sweep-bar", ProgressBar).update(total=total, progress=done)
        self.query_one("#sweep-label", Static).update(f"sweep {done}/{total}")
        self.query_one("#eta", Static).update(self.eta(total - done))

    def eta(self, left: int) -> str:
        if not self.running:
            return ""
        seconds = time_left(self.sweep, self.done_by_runner, left, time.time())
        return "" if seconds is None else f"ETA {int(seconds // 60)}:{int(seconds % 60):02d}"

    def update_trial_bar(self) -> None:
        view = self.current
        if view is None:
            return
        last = view.curve.points[-1] if view.curve.points else None
        progress = 0.0
        if last:
            progress = min(last[2], view.total) if view.budget else last[0]
            if self.own_loop:  # a loop's epochs count from 0, as range() does
                progress = min(progress + 1, view.total)
        self.query_one("#trial-bar", ProgressBar).update(total=view.total, progress=progress)
        unit = "s" if view.budget else "epochs"

        def amount(v: float) -> str:  # 1291/2000 epochs, not 1.29e+03/2e+03
            return str(int(v)) if float(v).is_integer() else fmt(v, 3)

        self.query_one("#trial-label", Static).update(
            f"trial {view.index + 1} {amount(progress)}/{amount(view.total)} {unit}"
        )

    def update_status(self) -> None:
        """One line, most important first (a narrow terminal cuts the end): the sweep's
        state, a shared device, then device, the runner's CPU and the current trial."""
        view, sweep = self.current, self.sweep
        state = ""
        if sweep and sweep.running and sweep.control == "pause":
            state = "[b]PAUSED[/b] (p resumes)" if sweep.paused else "pausing…"
        elif sweep and sweep.running and sweep.control == "cancel":
            state = "cancelling…"
        elif sweep and not self.running:
            state = f"[b]{sweep.status}[/b]"
        elif sweep and sweep.status == "pending":
            late = time.monotonic() - self.opened > 90
            state = "[red]the runner has not started: see its log[/red]" if late else "starting…"
        parts = [state, self.shared_device()]
        here = sweep and sweep.running and sweep.host == socket.gethostname()
        if sweep and sweep.options.get("backend") == "ray":  # the runner only records
            runner = "trains on Ray workers"
        else:
            runner = self.cpu.percent(sweep.pid if here else None)
        parts += [self.device, runner]
        if not gpus_unavailable():  # else every reading is the one already shown: none
            self.poll_gpus(sweep.pid if here and sweep else None)
        if self.device_key.startswith("cuda"):  # the sweep's GPU, or why it is not read
            index = int(self.device_key.partition(":")[2] or 0)
            ours = [gpu_line(g) for g in self.gpus if g.index == index]
            parts.append(ours[0] if ours else self.gpu_note)
        if view:
            parts.append(f"trial {view.index + 1}: {escape(view.label)} seed={view.seed}")
        self.query_one("#status-line", Static).update(" · ".join(p for p in parts if p))

    def shared_device(self) -> str:
        mine = self.device_key
        shared = [sid for sid, dev in self.neighbours if _same_device(dev, mine)]
        if not shared:
            return ""
        what = "the CPU cores" if mine.startswith("cpu") else mine
        return f"[yellow]shares {what} with sweep {', '.join(shared)}[/yellow]"

    @work(thread=True, exclusive=True, group="gpu")
    def poll_gpus(self, pid: int | None) -> None:
        """NVML's reading, in a thread: the first one starts NVML (tens of ms)."""
        gpus, note = read_gpus(pid)
        self.app.call_from_thread(self.show_gpus, gpus, note)

    def show_gpus(self, gpus: list[Gpu], note: str) -> None:
        had = bool(self.gpus)
        self.gpus, self.gpu_note = gpus, note
        pane = self.query_one("#gpu-pane", Static)
        pane.update("\n".join(gpu_line(g) + f" · {escape(g.name)}" for g in gpus))
        if had != bool(gpus):
            self.refresh_bindings()  # g is offered once there is a GPU to show
            pane.display = pane.display and bool(gpus)

    def action_gpus(self) -> None:
        """Every GPU of this machine, under the status line (g again hides them)."""
        pane = self.query_one("#gpu-pane", Static)
        pane.display = not pane.display

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
            for metric, color in zip(self.loss_names(view), ("cyan", "orange"), strict=False):
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

    def loss_names(self, view: TrialView) -> list[str]:
        """The losses the loss chart draws: ours, or the first two a script's run logs
        with "loss" in their names (train_loss, Loss/val, ...)."""
        if not self.own_loop:
            return ["train_loss", "val_loss"]
        seen = dict.fromkeys(k for p in view.curve.points for k in p[3] if "loss" in k.lower())
        return list(seen)[:2] or ["train_loss"]

    def redraw_overlay(self) -> None:
        if not self.overlay_dirty:
            return
        self.overlay_dirty = False
        shown = [v for v in self.trials.values() if v.latest is not None or v.curve.points]
        title = f"all trials: {self.metric} by swept value"
        if len(shown) > OVERLAY_LINES:
            shown = sorted(shown, key=self._rank)[:OVERLAY_LINES]
            title = (
                f"best {OVERLAY_LINES} of {len(self.trials)} trials: {self.metric} by swept value"
            )
            shown.sort(key=lambda v: v.index)
        self.load_curves(shown)  # trials drawn for the first time since attaching
        overlay, labelled = [], set()
        for v in shown:
            xs, ys = v.curve.series(self.metric, self.x_axis)
            label = "" if v.label in labelled else v.label
            labelled.add(v.label)
            overlay.append(Line(label[:30], xs, ys, v.color))
        self.query_one("#chart-all", Chart).show(
            overlay, self.xlabel, self.ylog and not self.higher, title=title
        )

    def _rank(self, view: TrialView) -> float:
        """Sort key, best first: the latest value (a diverged trial ranks last)."""
        last = view.latest
        if last is None or not math.isfinite(last) or view.status == "diverged":
            return math.inf
        return -last if self.higher else last

    # -- actions ------------------------------------------------------------------------

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("pause", "skip", "cancel"):  # TensorBoard logs: nothing to ask
            return self.running and self.sweep.problem != "tensorboard"
        if action == "gpus":
            return bool(self.gpus)
        return True

    def ask(self, action: str, said: str, run_id: str = "") -> None:
        error = self.follower.request(action, run_id)
        if error:
            self.notify(error, severity="warning")
        else:
            self.log_line(said)

    def action_pause(self) -> None:
        if self.sweep.control == "pause":
            self.ask("resume", "resume requested")
        else:
            self.ask("pause", "pause requested: the runner holds before its next step")

    def action_skip(self) -> None:
        """The trial the charts show ends alone (a population goes on without it)."""
        view = self.current
        if view is None or view.status != "running":
            self.ask("skip", "skipping the running trial…")
            return
        after = "run.log raises hypertui.Stop in it" if self.own_loop else "it reruns on resume"
        said = f"skipping trial {view.index + 1} ({escape(view.label)}): {after}"
        self.ask("skip", said, view.run_id)

    def action_cancel(self) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.ask("cancel", "cancelling: the running trial stops, the rest stay pending")

        self.app.push_screen(
            ConfirmScreen(
                f"Cancel sweep {self.sweep_id}?\n"
                "The running trial stops; finished trials stay and the rest can be resumed."
            ),
            answer,
        )

    def action_next_metric(self) -> None:
        """Chart the next metric the current trial logs (a script logs any it likes)."""
        view = self.current
        points = view.curve.points if view else []
        names = list(dict.fromkeys(k for p in points for k in p[3]))
        names = names if self.metric in names else [self.metric, *names]
        if len(names) < 2:
            self.notify(f"the trial logs no other metric than {self.metric}", timeout=2)
            return
        self.metric = names[(names.index(self.metric) + 1) % len(names)]
        self.picked = self.metric != self.goal.main
        self.higher = self.goal.higher if not self.picked else guess_higher(self.metric)
        for v in self.trials.values():  # the overlay ranks trials by the metric charted
            values = [p[3][self.metric] for p in v.curve.points if self.metric in p[3]]
            v.latest = values[-1] if values else None if not v.partial else v.latest
        self.notify(f"metric: {self.metric}", timeout=1.5)
        self.redraw_now()

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
        from hypertui.tui.app.screens.results import ResultsScreen

        self.app.push_screen(ResultsScreen(self.store_path, self.sweep_id))

    def action_back(self) -> None:
        if self.running:
            self.notify(f"Sweep {self.sweep_id} goes on; History (h) brings you back.")
        self.app.back_from(self)


def _same_device(a: str, b: str) -> bool:
    """cpu and cpu share cores; cuda and cuda:0 are the same GPU."""
    norm = {"cuda": "cuda:0"}
    return bool(a and b) and norm.get(a, a) == norm.get(b, b)
