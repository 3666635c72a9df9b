"""Checkable claims: a preset's `checks` strings, parsed at load and judged after a sweep.

    checks = [
        "rmsprop < sgd on val_mse",                  # A lower than B (a one-sided test)
        "cross_entropy > mse on val_acc by ≥ 0.5 points",  # higher, by at least d
        "lr=2.0 diverges",                           # every run of A diverged
        "val_mse ≈ 0.099 ± 0.01",                    # the mean is within v ± tol
        "lr=0.001: val_acc ≈ 0.99 ± 0.005",          # the same, for the runs of A only
        "tanh ≈ relu on val_mse ± 0.005",            # A and B equal within tol
    ]

A and B select runs: `field=value` pairs separated by spaces (lists as 10-10-10-10), or a
bare value of one swept field (`rmsprop`). `>=` and `~=` and `+-` are accepted for ≥, ≈, ±;
"points" scales d by 1/100 for accuracies (fractions). Without `± tol` an ≈ claim allows
10% of |v|.

Verdicts: "holds" when a 95% confidence bound is on the claim's side, "does not hold" when
it is on the other side, "inconclusive" otherwise (or with too few runs) — always with the
test and n. Comparisons pair runs that share the other swept values and the seed when
every run has a partner (engine/analysis/significance.py), and use Welch's test otherwise.

An order claim without a margin ("A < B on METRIC") is judged on the sweep's scale for that
metric (engine/analysis/scale.py): log by default when its values span more than two orders
of magnitude, where a few finite blow-ups (0.1 against 30) would decide the linear mean
difference. On the log scale the difference is a ratio of geometric means; on the rank
scale a difference of mean ranks. Claims in the metric's units (a margin, ≈ and ± forms)
are judged on the linear scale, and a mean's interval stays in the metric's range.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from typing import Any

import numpy as np

from hypertui.engine.analysis import scale as scales
from hypertui.engine.analysis.compare import run_metrics
from hypertui.engine.analysis.export import cell, fmt
from hypertui.engine.core.config import FIELDS, parse_value
from hypertui.engine.core.errors import ConfigError, suggest
from hypertui.engine.core.objective import metric_names
from hypertui.engine.core.records import RunRow

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
GE = r"(?:≥|>=)"
APPROX = r"(?:≈|~=)"
PM = r"(?:±|\+-|\+/-)"
FORMS = [
    ("order", rf"^(?P<a>.+?)\s+(?P<op><|>)\s+(?P<b>.+?)\s+on\s+(?P<metric>\w+)"
     rf"(?:\s+by\s+{GE}\s*(?P<d>{NUM})(?P<points>\s+points?)?)?$"),
    ("diverges", r"^(?P<a>.+?)\s+diverges$"),
    ("equal", rf"^(?P<a>.+?)\s+{APPROX}\s+(?P<b>.+?)\s+on\s+(?P<metric>\w+)"
     rf"\s*{PM}\s*(?P<tol>{NUM})$"),
    ("value", rf"^(?:(?P<a>[^:]+?):\s*)?(?P<metric>\w+)\s*{APPROX}\s*(?P<v>{NUM})"
     rf"(?:\s*{PM}\s*(?P<tol>{NUM}))?$"),
]  # fmt: skip
SYNTAX = (
    '"A < B on METRIC", "A > B on METRIC by ≥ D", "A diverges", '
    '"[A:] METRIC ≈ V ± TOL" or "A ≈ B on METRIC ± TOL"'
)
VERDICTS = ("holds", "does not hold", "inconclusive")


@dataclass(frozen=True)
class Check:
    text: str
    form: str  # order | diverges | equal | value
    a: tuple[tuple[str, str], ...]  # selector: (field or "", value text) pairs; () = all runs
    b: tuple[tuple[str, str], ...] = ()
    op: str = ""  # < or > for order
    metric: str = ""
    d: float = 0.0  # order: margin; value: v
    tol: float = math.nan


@dataclass(frozen=True)
class Verdict:
    check: str
    verdict: str  # holds | does not hold | inconclusive
    detail: str  # the test, n and the interval, or why there is none
    mean: float = math.nan  # ours: the quantity the claim is about (a difference or a mean)
    low: float = math.nan
    high: float = math.nan
    study: str = ""  # the study's number, where the check states one
    scale: str = "linear"  # what mean/low/high are: a difference (linear, rank), a ratio (log)


def _selector(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    for token in text.split():
        field, sep, value = token.partition("=")
        out.append((field, value) if sep else ("", token))
    return tuple(out)


def parse_check(text: Any, problem: str, axes: dict[str, Any] | None = None) -> Check:
    """Parse one check string; ConfigError with the reason and the accepted forms."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"checks: each check is a non-empty string, got {text!r}")
    text = " ".join(text.split())
    for form, pattern in FORMS:
        m = re.match(pattern, text)
        if not m:
            continue
        g = m.groupdict()
        d = float(g.get("d") or g.get("v") or 0.0)
        metric = g.get("metric") or ""
        if g.get("points"):
            d /= 100
        tol = float(g["tol"]) if g.get("tol") else math.nan
        check = Check(
            text, form, _selector(g.get("a") or ""), _selector(g.get("b") or ""),
            g.get("op") or "", metric, d, tol,
        )  # fmt: skip
        _validate(check, problem, axes or {})
        return check
    raise ConfigError(f"checks: cannot read {text!r}; the forms are {SYNTAX}")


def _validate(check: Check, problem: str, axes: dict[str, Any]) -> None:
    where = f"checks: {check.text!r}:"
    if check.metric:
        known = metric_names(problem, gaussian=True)
        if check.metric not in known:
            raise ConfigError(
                f"{where} unknown metric {check.metric!r}{suggest(check.metric, known)}; "
                f"{problem} has {', '.join(known)}"
            )
    if check.form == "equal" and not check.tol > 0:
        raise ConfigError(f"{where} the tolerance after ± must be positive")
    for field, value in (*check.a, *check.b):
        if field:
            if field not in FIELDS:
                raise ConfigError(f"{where} unknown field {field!r}{suggest(field, FIELDS)}")
            try:
                parse_value(field, value)
            except ConfigError as exc:
                raise ConfigError(f"{where} {exc}") from None
        else:
            owners = [f for f, values in axes.items() if _bare_in(value, values)]
            if len(owners) != 1:
                why = "no swept field has" if not owners else f"{', '.join(owners)} all have"
                raise ConfigError(f"{where} {why} the value {value!r}; write it as field=value")


def _bare_in(value: str, values: Any) -> bool:
    return isinstance(values, list) and any(str(cell(v)) == value for v in values)


def claim_of_toml(preset_toml: str) -> str:
    """The free-text claim of a sweep's stored preset text ("" when none)."""
    try:
        claim = tomllib.loads(preset_toml).get("claim", "")
    except tomllib.TOMLDecodeError:
        return ""
    return claim if isinstance(claim, str) else ""


def checks_of_toml(preset_toml: str) -> list[str]:
    """The check strings of a sweep's stored preset text ([] when it has none)."""
    try:
        found = tomllib.loads(preset_toml).get("checks", [])
    except tomllib.TOMLDecodeError:
        return []
    return [c for c in found if isinstance(c, str)] if isinstance(found, list) else []


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return str(cell(a)) == str(cell(b))


def _matches(run: RunRow, selector, swept: list[str]) -> bool:
    for field, value in selector:
        if field:
            if not _same(run.config.get(field), parse_value(field, value)):
                return False
        elif not any(str(cell(run.point.get(f))) == value for f in swept):
            return False
    return True


def _fields_of(selector, runs: list[RunRow], swept: list[str]) -> set[str]:
    named = {f for f, _ in selector if f}
    for field, value in selector:
        if not field:
            named |= {f for f in swept if any(str(cell(r.point.get(f))) == value for r in runs)}
    return named


def judge(check: Check, runs: list[RunRow], swept: list[str], scale: str | None = None) -> Verdict:
    """The verdict of one check on a sweep's runs. `scale`: linear, log or rank for an order
    claim without a margin; None picks one from the metric's values (scale.choose)."""
    # scipy loads here, not at import: presets parse their checks on every app start.
    from hypertui.engine.analysis.significance import difference

    a = [r for r in runs if _matches(r, check.a, swept)]
    b = [r for r in runs if _matches(r, check.b, swept)] if check.b else []
    if not a or (check.b and not b):
        empty = " ".join(f"{f}={v}" if f else v for f, v in (check.b if a else check.a))
        return Verdict(check.text, "inconclusive", f"no runs match {empty or 'A'}")
    if check.form == "diverges":
        done = [r for r in a if r.status in ("finished", "diverged")]
        k = sum(r.status == "diverged" for r in done)
        detail = f"{k}/{len(done)} runs diverged"
        verdict = (
            "inconclusive" if not done
            else "holds" if k == len(done)
            else "does not hold" if k == 0
            else "inconclusive"
        )  # fmt: skip
        return Verdict(check.text, verdict, detail, k / len(done) if done else math.nan)
    if check.form == "value":
        return _value(check, a)
    other = [f for f in swept if f not in _fields_of((*check.a, *check.b), runs, swept)]
    lost = _lost(a + b, check.metric)
    if check.form == "order" and not check.d:
        scaled = _scaled(runs, check.metric, scale)
        va, vb = _keyed(a, check.metric, other, scaled), _keyed(b, check.metric, other, scaled)
        # diff = the side claimed larger minus the side claimed smaller; the claim: diff > 0
        big, small = (vb, va) if check.op == "<" else (va, vb)
        diff = difference(big, small, confidence=0.90)  # one-sided 95% bounds
        verdict = _side(diff, diff.low > 0, diff.high < 0)
        names = (_name(check.b), _name(check.a))[:: 1 if check.op == "<" else -1]
        return _cmp_verdict(check, verdict, diff, names, lost, scaled[0])
    va, vb = _keyed(a, check.metric, other), _keyed(b, check.metric, other)
    if check.form == "order":
        big, small = (vb, va) if check.op == "<" else (va, vb)
        diff = difference(big, small, confidence=0.90)
        verdict = _side(diff, diff.low > check.d, diff.high < check.d)
        margin = f" (claimed ≥ {fmt(check.d)})"
        names = (_name(check.b), _name(check.a))[:: 1 if check.op == "<" else -1]
        return _cmp_verdict(check, verdict, diff, f"{names[0]} − {names[1]}" + margin, lost)
    diff = difference(va, vb, confidence=0.90)  # two one-sided tests at 5% (TOST)
    inside = -check.tol < diff.low and diff.high < check.tol
    outside = diff.low > check.tol or diff.high < -check.tol
    what = f"{_name(check.a)} − {_name(check.b)}"
    return _cmp_verdict(check, _side(diff, inside, outside), diff, what, lost)


def _name(selector) -> str:
    return " ".join(f"{f}={v}" if f else v for f, v in selector)


def _side(diff, good: bool, bad: bool) -> str:
    if diff.test == "n/a":
        return "inconclusive"
    return "holds" if good else "does not hold" if bad else "inconclusive"


def _cmp_verdict(check, verdict, diff, what, lost, scale: str = "linear") -> Verdict:
    """`what`: the difference's text, or (larger, smaller) names for a scaled one."""
    values = (diff.diff, diff.low, diff.high)
    if scale == "log":  # a difference of logs: the ratio of geometric means
        values = tuple(math.exp(v) if math.isfinite(v) else v for v in values)
    if isinstance(what, tuple):
        what = f"{what[0]} {'÷' if scale == 'log' else '−'} {what[1]}"
    if diff.test == "n/a":
        detail = f"n = {diff.n}: too few runs for a test"
    else:
        name = "paired t" if diff.test == "paired" else "Welch t"
        on = "" if scale == "linear" else f" on {scale} {check.metric}"
        times = "×" if scale == "log" else ""
        detail = (
            f"{name}{on}, n = {diff.n}: {what} = {fmt(values[0], 3)}{times} "
            f"[{fmt(values[1], 3)}, {fmt(values[2], 3)}] (90% CI), p = {diff.p:.2g}"
        )
    if lost:
        detail += f"; {lost} diverged/failed left out"
    return Verdict(check.text, verdict, detail, *values, scale=scale)


def _scaled(runs: list[RunRow], metric: str, scale: str | None) -> tuple[str, dict[str, float]]:
    """(the scale, each finished run's value of `metric` on it by run id), over the whole
    sweep: ranks are among all its runs."""
    ids, values = [], []
    for r in runs:
        v = run_metrics(r).get(metric) if r.status == "finished" else None
        if v is not None and math.isfinite(v):
            ids.append(r.id)
            values.append(v)
    if scale is None and not scales.log_possible(values):
        scale = "linear"  # the default never fails: log only where every value is > 0
    chosen, _ = scales.choose(values, metric, scale)
    return chosen, dict(zip(ids, scales.to_scale(values, chosen).tolist(), strict=True))


def _keyed(
    runs: list[RunRow], metric: str, other: list[str], scaled: tuple | None = None
) -> dict[tuple, float]:
    """Finished values keyed by (the other swept values, seed and fold): partners share
    a key.
    `scaled`: (scale, values by run id) from _scaled, in place of the metric's own."""
    out = {}
    for r in runs:
        v = run_metrics(r).get(metric) if r.status == "finished" else None
        if scaled is not None:
            v = scaled[1].get(r.id)
        if v is not None and math.isfinite(v):
            out[(*(str(cell(r.point.get(f))) for f in other), r.replicate)] = v
    return out


def _lost(runs: list[RunRow], metric: str) -> int:
    return sum(r.status in ("diverged", "failed") for r in runs)


def _value(check: Check, runs: list[RunRow]) -> Verdict:
    from scipy import stats

    values = np.array([v for r in runs for v in _keyed([r], check.metric, []).values()], float)
    tol = check.tol if not math.isnan(check.tol) else abs(check.d) * 0.1
    study = f"{fmt(check.d)} ± {fmt(tol)}"
    lost = _lost(runs, check.metric)
    suffix = f"; {lost} diverged/failed left out" if lost else ""
    if len(values) < 2:
        mean = float(values[0]) if len(values) else math.nan
        detail = f"n = {len(values)}: too few runs for an interval{suffix}"
        return Verdict(check.text, "inconclusive", detail, mean, study=study)
    mean, sem = float(values.mean()), float(stats.sem(values))
    low, high = (
        stats.t.interval(0.95, len(values) - 1, loc=mean, scale=sem) if sem > 0 else (mean, mean)
    )
    losses = sorted({str(r.config.get("loss", "")) for r in runs})
    _, low, high = scales.interval(mean, low, high, "linear", scales.bounds(check.metric, losses))
    inside = check.d - tol <= low and high <= check.d + tol
    outside = low > check.d + tol or high < check.d - tol
    verdict = "holds" if inside else "does not hold" if outside else "inconclusive"
    detail = (
        f"t interval, n = {len(values)}: mean {fmt(mean)} [{fmt(low)}, {fmt(high)}] (95% CI)"
        + suffix
    )
    return Verdict(check.text, verdict, detail, mean, float(low), float(high), study)


def judge_sweep(
    preset_toml: str, problem: str, runs: list[RunRow], swept: list[str], scale: str | None = None
):
    """Verdicts for every check stored with a sweep; unreadable checks say so, as does a
    check asked on the log scale whose metric has values at or below 0. `scale`: as judge's."""
    axes = {
        f: list({str(cell(r.point.get(f))): r.point.get(f) for r in runs}.values()) for f in swept
    }
    out = []
    for text in checks_of_toml(preset_toml):
        try:
            out.append(judge(parse_check(text, problem, axes), runs, swept, scale))
        except ConfigError as exc:
            out.append(Verdict(text, "inconclusive", str(exc)))
    return out
