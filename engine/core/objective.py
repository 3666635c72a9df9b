"""What ranks a sweep's runs, and which metrics its tables show.

Our own problems rank by validation MSE or accuracy (the problem and a table's task say
which), or by the validation metric their config's `metric` names (val_macro_f1,
val_roc_auc, ...). A sweep of the user's own loop ranks by the metric its script named
(kept in the sweep's options, with "min" or "max"), and shows whatever metrics its runs
logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hypertui.engine.core.records import OWN_LOOP_PROBLEMS, RunRow

# A metric with a word like one of these in its name is better higher: val_acc, top5_accuracy,
# f1_macro, roc_auc, bleu4, ... (words: val_mape is an error, not a mAP)
HIGHER = re.compile(
    r"(acc|accuracy|f1|auc|bleu\d?|rouge\w*|precision|recall|iou|dice|map|r2|score|reward)"
)


def guess_higher(metric: str) -> bool:
    """Whether a metric is better higher, by the words of its name (accuracies; not
    losses or errors)."""
    words = re.split(r"[^a-z0-9]+", metric.lower())
    return any(HIGHER.fullmatch(w) for w in words)


@dataclass(frozen=True)
class Objective:
    main: str  # the metric that ranks runs (a validation metric)
    higher: bool  # whether higher is better
    metrics: tuple[str, ...]  # what a comparison shows, in order; `main` first
    own_loop: bool = False  # the user's loop named these metrics (not one of our problems)


def metric_names(problem: str, gaussian: bool, task: str = "", main: str = "") -> list[str]:
    """The metrics a sweep of one of our problems shows, in order: the ranking metric
    (`main`, "" for the problem's own) at its last and best report and on the test set,
    then the problem's own score, the losses. A classification's other scores (F1, AUCs)
    show only when they rank: 80 columns hold no more (the run detail lists them all)."""
    from hypertui.engine.core.config import is_classification  # not for a tracked script

    own = "val_acc" if is_classification(problem, task) else "val_mse"
    main = main or own
    score = main.removeprefix("val_")
    names = [main, f"best_{main}", f"test_{score}", f"last_test_{score}", own, "val_loss"]
    names += ["train_loss", *(["val_nll", "val_var"] if gaussian else [])]
    return [*dict.fromkeys(names), "epochs_done", "duration_s"]


def objective(
    problem: str | Objective, runs: Sequence[RunRow], options: Mapping | None = None
) -> Objective:
    """The objective of a sweep of `problem` with these runs and options (an Objective
    given is its own)."""
    if isinstance(problem, Objective):
        return problem
    if problem in OWN_LOOP_PROBLEMS:
        return _own(runs, options or {})
    task = next((r.config.get("task", "") for r in runs), "")  # one task per sweep
    metric = next((r.config.get("metric", "") for r in runs), "")  # one metric too (presets)
    gaussian = any(r.config.get("loss") == "gaussian_nll" for r in runs)
    from hypertui.engine.core.config import main_metric

    main, higher = main_metric(problem, task, metric)
    return Objective(main, higher, tuple(metric_names(problem, gaussian, task, main)))


def _own(runs: Sequence[RunRow], options: Mapping) -> Objective:
    logged = list(dict.fromkeys(k for r in runs for k in (*r.final, *r.test)))
    main = options.get("metric") or next(
        (k for k in logged if k.startswith("val")), logged[0] if logged else "val_loss"
    )
    rest = [k for k in logged if k != main]
    tests = [k for k in rest if k.startswith("test_")]
    others = [k for k in rest if not k.startswith("test_")]
    names = [main, f"best_{main}", *tests, *others, "epochs_done", "duration_s"]
    return Objective(main, options.get("mode") == "max", tuple(names), own_loop=True)
