"""CSV and Markdown exports of runs and comparisons, written atomically.

Every file is written to a temporary file in the target folder and renamed into place, so
a reader never sees half a file and a crash never leaves one. Text cells that a
spreadsheet would run as a formula (leading =, +, -, @, tab or CR) get a leading quote.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from hypertui.engine.analysis.classes import per_class_columns
from hypertui.engine.analysis.compare import Comparison, Stat, run_metrics
from hypertui.engine.core.config import FIELDS, applies, is_classification
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.paths import expand_user
from hypertui.engine.core.records import RunRow

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CLASS_SCORES = ("macro_f1", "balanced_acc", "roc_auc", "pr_auc")  # beside accuracy


def cell(value: Any) -> Any:
    """One CSV cell: lists as 10-10-10-10, None as empty, formulas neutralised."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = "-".join(str(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf: pandas reads them back as floats
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def run_record(run: RunRow, own_loop: bool = False) -> dict[str, Any]:
    """One CSV row for a run: the config fields that apply to it (a table MLP has no
    channels or image_size), then ids, status and metrics (a classification's macro F1,
    balanced accuracy and AUCs too, then each class's validation precision and recall);
    a script's run (`own_loop`): its whole config, then ids, status and every metric it
    logged."""
    if own_loop:
        return _own_record(run)
    config = {name: run.config.get(name) for name in FIELDS if applies(name, run.config)}
    problem = run.config.get("problem")
    score = "acc" if is_classification(problem, run.config.get("task", "")) else "mse"
    metrics = run_metrics(run)
    row = {
        **config,
        "sweep_id": run.sweep_id,
        "run_id": run.id,
        "trial": run.idx + 1,  # 1-based, as the app and `runs` number trials
        "status": run.status,
        "reason": run.reason,
        "epochs_done": run.epochs_done,
        "samples_seen": run.samples,
        "duration_s": run.wall_s,
        "train_s": run.elapsed_s,
        "device": run.device,
        "best_epoch": run.best_epoch,
        "train_loss": metrics.get("train_loss"),
        "val_loss": metrics.get("val_loss"),
        f"val_{score}": metrics.get(f"val_{score}"),
        f"best_val_{score}": metrics.get(f"best_val_{score}"),
        f"test_{score}": metrics.get(f"test_{score}"),  # with the best epoch's weights
        f"last_test_{score}": metrics.get(f"last_test_{score}"),  # with the last epoch's
    }
    if run.config.get("loss") == "gaussian_nll":
        row |= {"val_nll": metrics.get("val_nll"), "val_var": metrics.get("val_var")}
    if score == "acc":
        for name in CLASS_SCORES:
            if f"val_{name}" in metrics or f"test_{name}" in metrics:  # AUCs: two classes
                for key in (f"val_{name}", f"best_val_{name}", f"test_{name}", f"last_test_{name}"):
                    row[key] = metrics.get(key)
        row |= per_class_columns(run.analysis)
    return row


def _own_record(run: RunRow) -> dict[str, Any]:
    row = {
        "sweep_id": run.sweep_id,
        "run_id": run.id,
        "trial": run.idx + 1,
        "status": run.status,
        "reason": run.reason,
        "epochs_done": run.epochs_done,
        "steps": run.steps,
        "duration_s": run.wall_s,
        "train_s": run.elapsed_s,
        "best_epoch": run.best_epoch,
        **run_metrics(run),
    }
    # the config first; a key named like one of ours is kept apart as config.KEY
    config = {(f"config.{k}" if k in row else k): v for k, v in run.config.items()}
    return {**config, **row}


def runs_csv(runs: list[RunRow], own_loop: bool = False) -> str:
    """Every run, one row each (`own_loop`: runs a script wrote, see `run_record`)."""
    rows = [run_record(r, own_loop) for r in runs]
    seen = dict.fromkeys(k for row in rows for k in row)  # union: an MLP's row, then a CNN's
    columns = [f for f in FIELDS if f in seen] + [k for k in seen if k not in FIELDS]
    return _csv(columns, [[row.get(c) for c in columns] for row in rows])


CURVE_FIELDS = ("epoch", "step", "samples", "elapsed_s", "end_of_epoch", "train_loss")


def curves_csv(runs: list[RunRow], points: dict[str, list[dict[str, Any]]]) -> str:
    """Every report of every run, one row each: the run (ids, its swept values, seed),
    where it was (epoch, step, samples, training seconds) and every metric it reported."""
    swept = list(dict.fromkeys(k for r in runs for k in r.point))
    metrics = dict.fromkeys(
        k
        for r in runs
        for p in points.get(r.id, ())
        for k in p
        if k not in CURVE_FIELDS and k != "seq"  # seq: the store's order of points
    )
    folds = any(r.fold for r in runs)  # cross-validation: which fold validated the run
    columns = ["sweep_id", "run_id", "trial", *swept, "seed", *(["fold"] if folds else [])]
    columns += [*CURVE_FIELDS, *metrics]
    rows = []
    for r in runs:
        head = [r.sweep_id, r.id, r.idx + 1, *(r.point.get(k) for k in swept), r.seed]
        head += [r.fold] if folds else []
        for p in points.get(r.id, ()):
            rows.append([*head, *(p.get(k) for k in CURVE_FIELDS), *(p.get(m) for m in metrics)])
    return _csv(columns, rows)


def grouped_columns(comp: Comparison) -> list[str]:
    columns = [*comp.swept, "n", "n_runs", "diverged", "failed", "unfinished"]
    for m in comp.metrics:
        columns += [f"{m}_mean", f"{m}_std", f"{m}_min", f"{m}_max"]
    return columns


def grouped_csv(comp: Comparison) -> str:
    rows = []
    for g in comp.groups:
        row = [
            *(g.point[f] for f in comp.swept),
            g.n_finished,
            g.n_runs,
            g.n_diverged,
            g.n_failed,
            g.n_unfinished,
        ]
        for m in comp.metrics:
            s = g.stats.get(m)
            row += [s.mean, s.std, s.min, s.max] if s else [None] * 4
        rows.append(row)
    return _csv(grouped_columns(comp), rows)


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}g}"


def mean_std(s: Stat | None, digits: int = 4, std_digits: int = 2, sep: str = " ± ") -> str:
    """One table cell: "-" without finished runs, the mean alone for one run.

    The std shows `std_digits` significant digits and the mean at least `digits`, both
    written out in full between 1e-4 and 1e6 (100300 ± 3300, never 1e+05 ± 3.3e+03, which
    lost the mean's leading digits), else in powers of ten (1.003e7 ± 3.3e5), the mean to
    the std's last digit."""
    if s is None:
        return "-"
    if s.n < 2 or not math.isfinite(s.std) or s.std == 0 or not math.isfinite(s.mean):
        return fmt(s.mean, digits)
    std_last = _exponent(s.std) - (std_digits - 1)  # the place of the std's last digit
    if all(v == 0 or 1e-4 <= abs(v) < 1e6 for v in (s.mean, s.std)):
        places = min(10, max(0, -std_last, digits - 1 - _exponent(s.mean)))
        std = f"{round(s.std, -std_last):.{max(0, -std_last)}f}"
        return f"{s.mean:.{places}f}{sep}{std}"
    mantissa = min(9, max(digits - 1, _exponent(s.mean) - std_last))
    return f"{_e(s.mean, mantissa)}{sep}{_e(s.std, std_digits - 1)}"


def _exponent(value: float) -> int:
    return math.floor(math.log10(abs(value))) if value else 0


def _e(value: float, places: int) -> str:
    """Powers of ten without the padding: 1.003e7, 3.3e-5."""
    mantissa, exponent = f"{value:.{places}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def grouped_markdown(comp: Comparison) -> str:
    shown = [m for m in comp.metrics if any(m in g.stats for g in comp.groups)]
    head = [
        "rank",
        *comp.swept,
        "n",
        "diverged",
        "failed",
        *shown,
        f"{comp.main} min",
        f"{comp.main} max",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rank, g in enumerate(comp.groups, 1):
        main = g.stats.get(comp.main)
        row = [
            str(rank),
            *(_md(cell(g.point[f])) for f in comp.swept),
            str(g.n_finished),
            str(g.n_diverged),
            str(g.n_failed),
            *(mean_std(g.stats.get(m)) for m in shown),
            fmt(main.min) if main else "-",
            fmt(main.max) if main else "-",
        ]
        lines.append("| " + " | ".join(row) + " |")
    note = (
        f"\nRanked by {comp.main} ({'higher' if comp.higher_is_better else 'lower'} is better); "
        "mean ± sample std over finished runs; "
        "diverged and failed runs are counted, not averaged.\n"
    )
    return "\n".join(lines) + "\n" + note


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|")


def _csv(columns: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[cell(v) for v in row] for row in rows])
    return out.getvalue()


def check_output(path: Path | str) -> Path:
    """Where `--out PATH` really writes (symlinks followed), or a one-line refusal, before
    any work is done: no name, a folder, a missing folder (a typo is refused, not created),
    an unknown user's `~name`."""
    text = str(path)
    if text in ("", "."):  # argparse makes `--out ""` the path "."
        raise HypertuiError("--out needs a file name")
    expanded = expand_user(text, f"--out {text}")
    target = Path(os.path.realpath(expanded))
    if target.is_dir():
        raise HypertuiError(f"--out {text} is a folder; name a file in it")
    if not target.parent.is_dir():
        raise HypertuiError(f"--out {text}: the folder {target.parent} does not exist")
    return target


def write_output(path: Path | str, text: str) -> Path:
    """Write a file the user named (`--out`). An existing device, FIFO or other non-regular
    file is written into, never renamed over (as root, a rename replaced /dev/null with a
    regular file); a symlink is followed to its file; anything else is written atomically."""
    target = check_output(path)
    if target.exists() and not target.is_file():
        try:
            with open(target, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        except OSError as exc:
            raise HypertuiError(f"cannot write {path}: {exc.strerror or exc}") from None
        return Path(path)
    return write_atomic(target, text, make_folders=False)


def write_atomic(path: Path, text: str, make_folders: bool = True) -> Path:
    """Write `text` to `path` via a temporary file and a rename; return the path. For the
    files hypertui names itself (exports, presets): `make_folders` creates their folder."""
    path = Path(path).expanduser()
    try:
        if make_folders:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise HypertuiError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would (the old file's
        # mode when overwriting, else 0666 less the umask) so a shared folder stays shared.
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise HypertuiError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask
