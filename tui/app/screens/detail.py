"""Run detail: the resolved config, the curves, and what the final model predicts.

A run of your own loop (`hypertui.init`) shows its config as the script gave it and the
curves of whatever it logged: `m` picks the metric charted. House runs (and regression
tables) show predictions against the truth on the validation
set with the worst outliers listed; Gaussian-likelihood runs add the predicted variance
(log scale) against each feature (a table's first VAR_FEATURES inputs) and against the
prediction (the study's figures 5 and 6). MNIST, image and classification-table runs
show the confusion matrix, each class's precision, recall and F1, and the scores of the
weights it is of (macro F1, balanced accuracy; ROC and PR AUC with two classes, naming
the positive class).
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from hypertui.engine.analysis import pbt
from hypertui.engine.analysis.classes import class_scores, positive_class
from hypertui.engine.analysis.export import cell, fmt
from hypertui.engine.core.config import applies, applying, is_classification
from hypertui.engine.core.objective import objective
from hypertui.engine.core.records import OWN_LOOP_PROBLEMS, RunRow
from hypertui.engine.store.store import Store
from hypertui.tui.app.widgets.chart import Chart, Line
from hypertui.tui.text.safe import escape, plain

N_OUTLIERS = 8
CLASS_WIDTH = 10  # characters of a class name in the confusion matrix
OUTLIER_COLUMNS = 12  # input columns beside the worst outliers (a table may have hundreds)
VAR_FEATURES = 6  # variance charts for a table's inputs (it may have hundreds)
POINT_FIELDS = ("seq", "epoch", "step", "samples", "elapsed_s", "end_of_epoch")  # not metrics


def config_table(run: RunRow, own_loop: bool = False) -> Table:
    table = Table("field", "value", box=None, title="config", title_justify="left")
    shown = run.config if own_loop else applying(run.config)  # a table MLP has no channels...
    for k, v in shown.items():
        table.add_row(k, plain(cell(v)))
    return table


def metrics_table(run: RunRow) -> Table:
    table = Table("metric", "final", "best", box=None, title="metrics", title_justify="left")
    for k in dict.fromkeys([*run.final, *run.best]):
        table.add_row(k, fmt(run.final.get(k)), fmt(run.best.get(k)))
    for k, v in run.test.items():
        table.add_row(k, fmt(v), "")
    info = [
        ("status", run.status + (f" ({run.reason})" if run.reason else "")),
        ("device", f"{run.device or '-'} {run.device_name or ''}"),
        ("parameters", run.n_params),
        ("epochs", run.epochs_done),
        ("best epoch", run.best_epoch),
        ("samples", run.samples),
        ("train s", fmt(run.elapsed_s, 3)),
        ("wall s", fmt(run.wall_s, 3)),
        ("git", run.git_rev),
    ]
    for label, value in info:
        table.add_row(label, plain(value if value is not None else "-"), "")
    for note in run.env.get("notes", []):  # what loading did: rows dropped, task inferred...
        table.add_row("note", plain(note), "")
    return table


def confusion_table(confusion: list[list[int]], classes: list[str] | None = None) -> Table:
    labels = [str(c)[:CLASS_WIDTH] for c in classes] if classes else []
    labels = labels if len(labels) == len(confusion) else [str(i) for i in range(len(confusion))]
    table = Table(
        "true\\pred",
        *labels,
        "acc",
        box=None,
        title="validation confusion matrix",
        title_justify="left",
    )
    for i, row in enumerate(confusion):
        total = sum(row) or 1
        cells = [
            f"[b]{v}[/b]" if j == i else (f"[red]{v}[/red]" if v else "·")
            for j, v in enumerate(row)
        ]
        table.add_row(labels[i], *cells, f"{100 * row[i] / total:.1f}%")
    return table


def pbt_summary(run: RunRow) -> str:
    """A PBT member's schedule: the hyperparameters its weights followed, epoch by epoch."""
    momentum = applies("momentum", run.config)
    lines = pbt.schedule_lines(run.analysis or {}, run.config.get("epochs", 0), momentum)
    if not lines:
        return ""
    return "\n".join(["[b]PBT schedule[/b]", *(escape(line) for line in lines)])


def class_table(analysis: dict) -> Table:
    """Each class's precision, recall and F1 from the validation confusion matrix; "-"
    where one is 0/0 (a class never predicted has no precision)."""
    table = Table(
        "class",
        "precision",
        "recall",
        "F1",
        "rows",
        "predicted",
        box=None,
        title="per class (validation)",
        title_justify="left",
    )

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    for c in class_scores(analysis):
        name = plain(c.name[:CLASS_WIDTH])
        table.add_row(
            name, pct(c.precision), pct(c.recall), pct(c.f1), str(c.support), str(c.predicted)
        )
    return table


def class_summary(run: RunRow) -> str:
    """The split-wide scores of the weights the matrix is of (the best report's)."""
    names = (
        ("val_acc", "accuracy"),
        ("val_macro_f1", "macro F1"),
        ("val_balanced_acc", "balanced accuracy"),
        ("val_roc_auc", "ROC AUC"),
        ("val_pr_auc", "PR AUC"),
    )
    scores = run.best or run.final
    shown = [f"{label} {fmt(scores[k])}" for k, label in names if k in scores]
    text = "\nvalidation: " + ", ".join(shown) if shown else ""
    positive = positive_class(run.analysis)
    if positive is not None and "val_roc_auc" in scores:
        text += f"\nAUCs score class 1, '{escape(positive)}', as the positive class"
    return text + "\n"  # a blank line around it: three blocks, one under the other


def point_x(point: dict, n_train: int | None) -> float:
    """Where a curve point sits on the x axis: epochs (fractional inside one) for our runs;
    for a script's, the epoch it logged (with no step), else the step."""
    if n_train:
        return point["samples"] / n_train
    return point["epoch"] if point["end_of_epoch"] else point["step"]


class RunDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("m", "next_metric", "Metric"),
        Binding("e", "export_model", "Export model"),
    ]

    def __init__(self, store_path: Path, run_id: str) -> None:
        super().__init__()
        self.store_path, self.run_id = store_path, run_id

    def compose(self) -> ComposeResult:
        store = Store(self.store_path)
        self.run = store.run(self.run_id)
        self.points = store.points(self.run.id)
        sweep = store.sweep(self.run.sweep_id)
        store.close()
        self.own_loop = sweep.problem in OWN_LOOP_PROBLEMS
        self.metric = objective(sweep.problem, [self.run], sweep.options).main
        logged = dict.fromkeys(k for p in self.points for k in p if k not in POINT_FIELDS)
        self.metrics = [self.metric, *(k for k in logged if k != self.metric)]
        problem = self.run.config.get("problem")
        task = self.run.config.get("task", "")
        yield Header()
        with TabbedContent(id="detail-tabs"):
            with TabPane("Summary", id="tab-summary"), Horizontal():
                with VerticalScroll():
                    yield Static(config_table(self.run, self.own_loop))
                with VerticalScroll():
                    yield Static(metrics_table(self.run))
                    if pbt_text := pbt_summary(self.run):
                        yield Static(pbt_text, id="detail-pbt")
            with TabPane("Curves", id="tab-curves"):
                yield Chart("loss", id="detail-loss")
                yield Chart(self.metric, id="detail-metric")
            if not self.own_loop:  # a script's predictions are its own
                yield from self.model_tabs(problem, task)
        yield Footer()

    def model_tabs(self, problem: str, task: str) -> ComposeResult:
        """What the model of one of our problems predicts: against the truth, or classes."""
        if not is_classification(problem, task):
            title = (
                "validation: predicted vs true price (x1e5)"
                if problem == "house"
                else f"validation: predicted vs true {self.run.config.get('target')}"
            )
            with TabPane("Predictions", id="tab-predictions"), Horizontal():
                yield Chart(title, id="detail-pred")
                with VerticalScroll(id="outliers-box"):
                    yield Static("loading the validation set…", id="outliers")
            if self.run.config.get("loss") == "gaussian_nll":
                with TabPane("Variance", id="tab-variance"), Grid(id="variance-grid"):
                    n = len(self.run.config["features"]) if problem == "house" else VAR_FEATURES
                    for i in range(n + 1):
                        yield Chart("", id=f"detail-var-{i}")
        else:
            with TabPane("Confusion", id="tab-confusion"), VerticalScroll():
                confusion = self.run.analysis.get("confusion")
                if not confusion:
                    yield Static("No confusion matrix: the run did not finish.")
                    return
                yield Static(confusion_table(confusion, self.run.analysis.get("classes")))
                yield Static(class_summary(self.run), id="class-summary")
                yield Static(class_table(self.run.analysis), id="class-table")

    def on_mount(self) -> None:
        self.title = f"Run {self.run.id} · trial {self.run.idx + 1} · {self.run.status}"
        config = self.run.config
        n_train = (self.run.env.get("sizes") or {}).get("train")
        if not self.own_loop:
            n_train = n_train or 1
        self.xs = [point_x(p, n_train) for p in self.points]
        self.xlabel = "epoch" if n_train or all(p["end_of_epoch"] for p in self.points) else "step"
        loss = [
            Line(k, self.xs, [p.get(k) for p in self.points], c)
            for k, c in (("train_loss", "cyan"), ("val_loss", "orange"))
        ]
        self.query_one("#detail-loss", Chart).show(loss, self.xlabel)
        self.show_metric()
        if not self.own_loop and not is_classification(config["problem"], config.get("task", "")):
            self.load_house()

    def show_metric(self) -> None:
        chart = self.query_one("#detail-metric", Chart)
        chart.title = self.metric
        ys = [p.get(self.metric) for p in self.points]
        chart.show([Line(self.metric, self.xs, ys, "green")], self.xlabel)

    def action_next_metric(self) -> None:
        """The next logged metric in the metric chart (a script logs any it likes)."""
        if len(self.metrics) < 2:
            self.notify("this run logged one metric", timeout=2)
            return
        self.metric = self.metrics[(self.metrics.index(self.metric) + 1) % len(self.metrics)]
        self.show_metric()
        self.notify(f"metric: {self.metric}", timeout=1.5)

    def action_export_model(self) -> None:
        if self.own_loop:
            self.notify("a script's weights are its own: save them there", timeout=3)
            return
        self.export_model()

    @work(thread=True, exclusive=True, group="export")
    def export_model(self) -> None:
        """The run's best weights and a JSON of its config, under exports/ (torch: here)."""
        from hypertui.engine.core.errors import HypertuiError
        from hypertui.engine.sweeps.model_out import export_model

        store = Store(self.store_path)
        try:
            weights, sidecar = export_model(store, self.run.id)
        except HypertuiError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=6)
            return
        finally:
            store.close()
        said = f"wrote {weights}\nand {sidecar.name}"
        self.app.call_from_thread(self.notify, said, timeout=8)

    @work(thread=True, exclusive=True)
    def load_house(self) -> None:
        """The validation set is re-derived from the fixed split (torch is imported here)."""
        import torch

        from hypertui.engine.core.config import make_config
        from hypertui.engine.data.load import load_dataset

        config = make_config(self.run.config).replace(device="cpu")
        data = load_dataset(config, torch.device("cpu"))
        # a table's target is standardised in the tensors; predictions are in its units
        truth = (data.val.y.flatten() * data.target_std + data.target_mean).tolist()
        mean, std = data.feature_mean, data.feature_std
        features = [
            [v * s + m for v, s, m in zip(row, std, mean, strict=True)]
            for row in data.val.x.tolist()
        ]
        self.app.call_from_thread(self.show_house, truth, features, list(data.feature_names))

    def show_house(self, truth: list[float], features: list[list[float]], names: list[str]) -> None:
        pred = self.run.analysis.get("pred")
        outliers = self.query_one("#outliers", Static)
        if not pred or len(pred) != len(truth):
            outliers.update("No predictions: the run did not finish.")
            return
        lo, hi = min(truth + pred), max(truth + pred)
        self.query_one("#detail-pred", Chart).show(
            [
                Line("", truth, pred, "cyan", scatter=True),
                Line("y = x", [lo, hi], [lo, hi], "white"),
            ],
            "true price",
            ylabel="predicted",
        )
        worst = sorted(range(len(truth)), key=lambda i: -abs(pred[i] - truth[i]))[:N_OUTLIERS]
        cols = names[:OUTLIER_COLUMNS]
        table = Table(
            "true", "pred", "sq err", *cols, box=None, title="worst outliers", title_justify="left"
        )
        for i in worst:
            table.add_row(
                fmt(truth[i], 3),
                fmt(pred[i], 3),
                fmt((pred[i] - truth[i]) ** 2, 3),
                *(fmt(v, 4) for v in features[i][: len(cols)]),
            )
        outliers.update(table)
        var = self.run.analysis.get("var")
        if var:
            columns = list(zip(*features, strict=True))
            charts = list(self.query("#variance-grid Chart").results(Chart))
            shown = names[: len(charts) - 1]
            for chart in charts[len(shown) + 1 :]:  # a table with fewer inputs than charts
                chart.remove()
            for i, name in enumerate([*shown, "prediction"]):
                xs = list(columns[i]) if i < len(shown) else pred
                charts[i].show(
                    [Line("", xs, var, "magenta", scatter=True)],
                    name,
                    ylog=True,
                    title=f"variance vs {name}",
                    ylabel="variance",
                )

    def action_back(self) -> None:
        self.app.pop_screen()
