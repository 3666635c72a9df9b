"""A sweep with a few finite blow-ups is read on the log or rank scale, and says which.

Most runs near 0.1-0.3, a few finished at ~30: on the linear scale the blow-ups decide the
analysis and a claim's verdict; on the log and rank scales they are bad runs among others.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hypertui.engine.analysis.claims import judge, parse_check
from hypertui.engine.analysis.importance import analyze, pivot
from tests.test_analysis import fake_run

AXES = {"optimizer": ["sgd", "rmsprop"], "hidden": [10, 50, 100]}
CHECK = "rmsprop < sgd on val_mse"


def blowup_sweep(seeds: int = 16, blowups: int = 4) -> list:
    """optimizer x hidden x seeds: rmsprop trains to 0.1, sgd to 0.3, and `blowups` of
    rmsprop's runs finish at ~30 (finite: not diverged, just blown up)."""
    rng = np.random.default_rng(3)
    runs = []
    for opt, typical in (("rmsprop", 0.1), ("sgd", 0.3)):
        for hidden in (10, 50, 100):
            for s in range(seeds):
                value = typical * math.exp(0.1 * rng.normal())
                runs.append(fake_run(len(runs), {"optimizer": opt, "hidden": hidden}, s, value))
    step = 3 * seeds // blowups
    for k in range(blowups):  # rmsprop's, spread over hidden values and seeds
        r = runs[k * step]
        runs[k * step] = fake_run(r.idx, r.point, r.seed, 30.0 + k)
    return runs


def verdict(runs, scale):
    check = parse_check(CHECK, "house", AXES)
    return judge(check, runs, ["optimizer", "hidden"], scale=scale)


def test_blowups_flip_the_linear_verdict_but_not_the_log_or_rank_one():
    runs = blowup_sweep()
    assert verdict(runs, "linear").verdict == "does not hold"  # read on the blow-ups
    assert verdict(runs, "log").verdict == "holds"
    assert verdict(runs, "rank").verdict == "holds"
    default = verdict(runs, None)  # 0.1 to 33: more than 2 orders of magnitude
    assert default.verdict == "holds" and default.scale == "log"
    assert "log val_mse" in default.detail and "rmsprop" in default.detail


def test_the_analysis_reads_the_slices_on_the_scale_it_names():
    runs = blowup_sweep()
    linear = analyze(runs, ["optimizer", "hidden"], "house", scale="linear")
    by_opt = {p.label: p for p in linear.slices["optimizer"].points}
    assert by_opt["rmsprop"].mean > by_opt["sgd"].mean  # the blow-ups' scale
    result = analyze(runs, ["optimizer", "hidden"], "house")
    assert result.scale == "log"
    assert result.scale_text.startswith("scale: log (val_mse spans 0.0")
    assert "orders of magnitude" in result.scale_text
    by_opt = {p.label: p for p in result.slices["optimizer"].points}
    rms, sgd = by_opt["rmsprop"], by_opt["sgd"]
    assert rms.mean < sgd.mean and rms.high < 1  # geometric means, not the blow-ups'
    assert 0.1 < rms.mean < 0.3 and sgd.mean == pytest.approx(0.3, rel=0.1)
    assert result.top[0].point["optimizer"] == "rmsprop"
    pv = pivot(result, "optimizer", "hidden")
    assert all(0.05 < v < 1 for row in pv.values for v in row)  # shown in val_mse units
    rank = analyze(runs, ["optimizer", "hidden"], "house", scale="rank")
    assert rank.scale_text.startswith("scale: rank (asked)")
    by_opt = {p.label: p for p in rank.slices["optimizer"].points}
    assert by_opt["rmsprop"].mean < by_opt["sgd"].mean
    assert all(0 <= p.low and p.high <= 1 for p in rank.slices["hidden"].points)


def test_an_interval_of_a_non_negative_metric_stays_at_or_above_0():
    runs = blowup_sweep(seeds=2, blowups=2)  # 2 seeds: t(1) intervals, one blow-up each
    result = analyze(runs, ["optimizer", "hidden"], "house", scale="linear")
    lows = [p.low for s in result.slices.values() for p in s.points if not math.isnan(p.low)]
    assert lows and min(lows) == 0.0  # clipped, not negative
    check = parse_check("rmsprop: val_mse ≈ 0.1 ± 0.05", "house", AXES)
    v = judge(check, runs, ["optimizer", "hidden"], scale="linear")
    assert v.low >= 0


def test_log_on_values_at_or_below_0_is_refused_and_the_default_stays_linear():
    from hypertui.engine.core.errors import ConfigError

    runs = [fake_run(i, {"hidden": h}, 0, v) for i, (h, v) in enumerate([(10, -1.0), (50, 2.0)])]
    assert analyze(runs, ["hidden"], "house").scale == "linear"
    with pytest.raises(ConfigError, match="scale log: val_mse has values at or below 0"):
        analyze(runs, ["hidden"], "house", scale="log")


def test_analyze_command_takes_a_scale_and_says_which(tmp_path, capsys):
    from hypertui.tui.cli.main import main

    store_path = tmp_path / "runs.sqlite"
    make_blowup_store(store_path)
    assert main(["--store", str(store_path), "analyze"]) == 0
    out = capsys.readouterr().out
    assert "scale: log (val_mse spans" in out
    assert f"check: {CHECK} → holds" in out
    assert main(["--store", str(store_path), "analyze", "--scale", "linear"]) == 0
    out = capsys.readouterr().out
    assert "scale: linear (asked)" in out and f"check: {CHECK} → does not hold" in out
    assert main(["--store", str(store_path), "analyze", "--scale", "rank", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scale"] == "rank" and doc["checks"][0]["verdict"] == "holds"
    with pytest.raises(SystemExit) as exc:  # argparse's own refusal, with the choices
        main(["--store", str(store_path), "analyze", "--scale", "cubic"])
    assert exc.value.code == 2 and "linear, log, rank" in capsys.readouterr().err.replace("'", "")


def make_blowup_store(path):
    """The blow-up sweep in a store, with the check in its preset."""
    from hypertui.engine.core.config import make_config
    from hypertui.engine.core.events import Finished, RunStarted
    from hypertui.engine.store.store import Store

    store = Store(path)
    runs = blowup_sweep()
    toml = f'description = "blow-ups"\nchecks = ["{CHECK}"]\n'
    trials = []
    for r in runs:
        config = make_config(
            optimizer=r.point["optimizer"], hidden=[r.point["hidden"]], seed=r.seed
        )
        trials.append((f"b{r.idx:03d}", r.idx, r.seed, config.to_dict(), r.point))
    store.create_sweep("b10e0001", "blowups", "house", "blow-ups", ["optimizer", "hidden"],
                       trials, preset_toml=toml)  # fmt: skip
    store.claim_sweep("b10e0001")
    for (run_id, *_), r in zip(trials, runs, strict=True):
        store.run_started(RunStarted(run_id, trials[r.idx][3], "cpu", "CPU", 1, {}))
        value = r.final["val_mse"]
        store.run_ended(
            Finished(run_id, "finished", epochs_done=1, steps=1, samples=1, elapsed_s=0.1,
                     wall_s=0.1, final={"val_mse": value}, best={"val_mse": value},
                     best_epoch=1, test={}, reason="", analysis={})
        )  # fmt: skip
    store.end_sweep("b10e0001", "done")
    return store
