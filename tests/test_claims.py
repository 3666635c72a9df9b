"""Checkable claims: parsed and validated at preset load, judged on a sweep's runs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hypertui.engine.analysis.claims import judge, judge_sweep, parse_check
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.sweeps.presets import catalogue, parse_preset
from tests.test_analysis import fake_run

AXES = {"optimizer": ["sgd", "adam", "rmsprop"], "lr": [2.0, 0.01]}


def sweep(means: dict[str, float], seeds: int, noise: float = 0.01, diverged=()):
    """Runs of an optimizer x activation grid; `means` per optimizer."""
    rng = np.random.default_rng(0)
    runs = []
    for opt, mean in means.items():
        for act in ("relu", "tanh"):
            for s in range(seeds):
                point = {"optimizer": opt, "activation": act}
                status = "diverged" if opt in diverged else "finished"
                value = None if status == "diverged" else mean + noise * rng.normal()
                runs.append(fake_run(len(runs), point, s, value, status))
    return runs


def verdict(text: str, runs, swept=("optimizer", "activation")) -> str:
    return judge(parse_check(text, "house", AXES), runs, list(swept)).verdict


def test_order_holds_fails_or_is_inconclusive():
    clear = sweep({"rmsprop": 0.08, "sgd": 0.12}, seeds=3)
    assert verdict("rmsprop < sgd on val_mse", clear) == "holds"
    assert verdict("rmsprop > sgd on val_mse", clear) == "does not hold"
    assert verdict("rmsprop < sgd on val_mse by >= 0.1", clear) == "does not hold"
    close = sweep({"rmsprop": 0.10, "sgd": 0.1001}, seeds=3, noise=0.02)
    assert verdict("rmsprop < sgd on val_mse", close) == "inconclusive"


def test_pairs_by_seed_and_other_fields_and_says_so():
    runs = sweep({"rmsprop": 0.08, "sgd": 0.12}, seeds=3)
    v = judge(
        parse_check("rmsprop < sgd on val_mse", "house", AXES), runs, ["optimizer", "activation"]
    )
    assert v.detail.startswith("paired t, n = 6: sgd − rmsprop = ")  # 2 activations x 3 seeds
    assert v.mean == pytest.approx(0.04, abs=0.02)


def test_one_seed_per_point_is_inconclusive_not_a_p_value():
    runs = sweep({"rmsprop": 0.08, "sgd": 0.12}, seeds=1)
    v = judge(parse_check("rmsprop < sgd on val_mse", "house", AXES), runs, ["optimizer"])
    assert v.verdict == "inconclusive" and "n = 1" in v.detail and "p =" not in v.detail


def test_diverges_and_value_and_equal():
    runs = sweep({"sgd": 0.1, "adam": 0.1}, seeds=2, diverged=("sgd",))
    assert verdict("sgd diverges", runs) == "holds"
    assert verdict("adam diverges", runs) == "does not hold"
    assert verdict("adam: val_mse ≈ 0.1 ± 0.02", runs) == "holds"
    assert verdict("adam: val_mse ≈ 0.2", runs) == "does not hold"
    runs = sweep({"sgd": 0.1, "adam": 0.1}, seeds=5, noise=0.001)
    assert verdict("sgd ≈ adam on val_mse ± 0.01", runs) == "holds"
    assert verdict("sgd ≈ adam on val_mse +- 0.0000001", runs) != "holds"


@pytest.mark.parametrize(
    "text, message",
    [
        ("rmsprop << sgd on val_mse", "cannot read"),
        ("rmsprop < sgd on val_mce", "did you mean 'val_mse'"),
        ("rmsprop < sgd on val_acc", "unknown metric"),  # a house preset
        ("lrr=0.1 diverges", "unknown field 'lrr'"),
        ("lr=fast diverges", "lr"),
        ("relu diverges", "no swept field has the value 'relu'"),
    ],
)
def test_bad_checks_are_refused_with_the_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_check(text, "house", AXES)


def test_a_preset_with_a_bad_check_names_the_file():
    text = 'description = "x"\nchecks = ["tanh < relu on val_mse"]\n[sweep]\nlr = [0.1, 0.01]\n'
    with pytest.raises(ConfigError, match=r"^my\.toml: checks: .*no swept field has"):
        parse_preset(text, "my.toml")
    good = parse_preset(text.replace("tanh < relu", "lr=0.1 < lr=0.01"), "my.toml")
    assert good.checks == ("lr=0.1 < lr=0.01 on val_mse",)


def test_every_study_preset_has_a_check():
    presets = catalogue().presets.values()
    assert presets and all(p.checks for p in presets if p.shipped)


def test_checks_travel_with_the_sweep(tmp_path):
    from hypertui.engine.sweeps.presets import find_preset, preset_to_toml

    preset = find_preset("house-optimizer-activation")
    runs = sweep({"rmsprop": 0.08, "sgd": 0.12, "adam": 0.09}, seeds=2)
    verdicts = judge_sweep(preset_to_toml(preset), "house", runs, ["optimizer", "activation"])
    assert [v.check for v in verdicts] == list(preset.checks)
    assert verdicts[0].verdict == "holds"


def losses(ce: float, mse: float, seeds: int = 5, noise: float = 0.0002):
    """MNIST-like runs of the mnist-loss preset: val_acc as a fraction, per loss."""
    rng = np.random.default_rng(1)
    runs = []
    for loss, mean in (("cross_entropy", ce), ("mse", mse)):
        for s in range(seeds):
            value = mean + noise * rng.normal()
            runs.append(fake_run(len(runs), {"loss": loss}, s, value, metric="val_acc"))
    return runs


def test_points_are_hundredths_of_an_accuracy():
    from hypertui.engine.sweeps.presets import find_preset, preset_to_toml

    axes = {"loss": ["cross_entropy", "mse"]}
    check = parse_check("cross_entropy > mse on val_acc by ≥ 0.5 points", "mnist", axes)
    one_point, under_half = losses(0.99, 0.98), losses(0.99, 0.986)
    assert judge(check, one_point, ["loss"]).verdict == "holds"
    v = judge(check, under_half, ["loss"])
    assert v.verdict == "does not hold" and v.mean == pytest.approx(0.004, abs=5e-4)
    assert "(claimed ≥ 0.005)" in v.detail
    # The shipped preset states its claim in points: MNIST's 98.3% → 99% holds.
    toml = preset_to_toml(find_preset("mnist-loss"))
    verdicts = judge_sweep(toml, "mnist", losses(0.99, 0.983), ["loss"])
    assert [v.verdict for v in verdicts] == ["holds"]
    assert [v.verdict for v in judge_sweep(toml, "mnist", under_half, ["loss"])] == [
        "does not hold"
    ]


def values(mean: float, metric: str = "val_mse", n: int = 6):
    """n finished runs of one point with a tight spread around `mean`."""
    spread = np.linspace(-1, 1, n) * 1e-4
    return [fake_run(i, {}, i, mean + d, metric=metric) for i, d in enumerate(spread)]


@pytest.mark.parametrize(
    "text, mean, expected",
    [
        ("val_mse ≈ 0.1", 0.1085, "holds"),  # 8.5% over: inside the 10% allowed
        ("val_mse ≈ 0.1", 0.0915, "holds"),
        ("val_mse ≈ 0.1", 0.1115, "does not hold"),  # 11.5% over: outside
        ("val_mse ≈ 0.1", 0.0885, "does not hold"),
        ("val_nll ≈ -0.5", -0.54, "holds"),  # 10% of |v| for a negative value
        ("val_nll ≈ -0.5", -0.56, "does not hold"),
    ],
)
def test_a_value_without_a_tolerance_allows_ten_percent(text, mean, expected):
    metric = text.split()[0]
    v = judge(parse_check(text, "house", AXES), values(mean, metric), [])
    assert v.verdict == expected
    assert v.study == ("0.1 ± 0.01" if metric == "val_mse" else "-0.5 ± 0.05")


def paired(differences, base: float = 0.1):
    """sgd and adam runs sharing seeds; sgd − adam is exactly `differences`, seed by seed."""
    runs = []
    for s, d in enumerate(differences):
        runs.append(fake_run(len(runs), {"optimizer": "sgd"}, s, base + d))
        runs.append(fake_run(len(runs), {"optimizer": "adam"}, s, base))
    return runs


def t_interval(confidence, d):
    return stats.t.interval(confidence, len(d) - 1, loc=np.mean(d), scale=stats.sem(d))


def test_equal_is_judged_on_the_whole_90_percent_interval_tost():
    check = parse_check("sgd ≈ adam on val_mse ± 0.01", "house", AXES)
    # Few noisy seeds: the estimate (0.002) is well inside ±0.01, the interval is not.
    noisy = [0.002 - 0.02, 0.002, 0.002 + 0.02]
    low, high = t_interval(0.90, noisy)
    assert abs(np.mean(noisy)) < 0.01 and low < -0.01 and high > 0.01
    v = judge(check, paired(noisy), ["optimizer"])
    assert v.verdict == "inconclusive" and v.mean == pytest.approx(0.002)
    assert (v.low, v.high) == pytest.approx((low, high), rel=1e-9)
    # Tighter seeds: the 90% interval (two one-sided 5% tests) is inside, although a 95%
    # interval would not be.
    tight = [0.002 - 0.004, 0.002, 0.002 + 0.004]
    low, high = t_interval(0.90, tight)
    assert -0.01 < low and high < 0.01 and t_interval(0.95, tight)[1] > 0.01
    v = judge(check, paired(tight), ["optimizer"])
    assert v.verdict == "holds" and (v.low, v.high) == pytest.approx((low, high), rel=1e-9)
    assert "(90% CI)" in v.detail
    # The whole interval beyond the margin: the two are not equal.
    far = [0.03 - 0.004, 0.03, 0.03 + 0.004]
    assert judge(check, paired(far), ["optimizer"]).verdict == "does not hold"
