"""The learning-rate range test: its curves, its suggestions, the preset it writes."""

from __future__ import annotations

import math

import pytest

from hypertui.engine.sweeps import lr_find as lf
from hypertui.engine.sweeps.presets import find_preset, parse_preset
from hypertui.tui.cli.main import main
from tests.fakes import write_image_folder

PRESET = """
name = "tiny-lr"
description = "lr-find test"
seeds = 2
[config]
hidden = [8]
batch_size = 64
optimizer = "adam"
epochs = 3
[sweep]
activation = ["relu", "tanh"]
lr = [0.1, 0.01]
"""


def test_suggestions_on_a_known_curve():
    lrs = lf.schedule(60, 1e-6, 1.0)
    # flat, then falling fastest around lr 1e-3, a valley near 1e-2, then a cliff
    losses = [
        2.0 - math.tanh(math.log10(lr) + 3) + (5 * (lr - 0.05) if lr > 0.05 else 0) for lr in lrs
    ]
    assert lrs[0] == pytest.approx(1e-6) and lrs[-1] == pytest.approx(1.0)
    assert 3e-4 < lf.steepest(lrs, losses) < 3e-3
    valley = lf.valley(lrs, losses)
    assert 1e-4 < valley < 0.05  # on the falling stretch, below the cliff
    assert lf.steepest(lrs[:10], losses[:10]) is None


def test_one_curve_per_config_rising_lr_and_a_stop_at_four_times_the_best():
    preset = parse_preset(PRESET, "tiny-lr.toml")
    result = lf.lr_find(preset, steps=60, start=1e-5, end=1e3)
    assert [c.point for c in result.curves] == [{"activation": "relu"}, {"activation": "tanh"}]
    for curve in result.curves:
        assert all(b > a for a, b in zip(curve.lrs, curve.lrs[1:], strict=False))
        assert len(curve.lrs) < 60  # lr 1e3 diverges: the curve stopped early
        assert max(curve.losses) <= lf.STOP_FACTOR * min(curve.losses)
        assert 1e-5 <= curve.valley <= 1e3
    assert 1e-5 < result.suggestion < 1e3


def test_a_population_member_traces_the_same_curve_as_the_config_alone():
    preset = parse_preset(PRESET, "tiny-lr.toml")
    lrs = lf.schedule(40, 1e-4, 1.0)
    together = lf._population(lf.members_of(preset), lrs, None)
    for (config, point), curve in zip(lf.members_of(preset), together, strict=True):
        alone = lf._single(config, point, lrs, None)
        assert alone.losses == pytest.approx(curve.losses, rel=1e-4)


def test_cnn_members_trace_the_same_curves_as_alone(tmp_path):
    write_image_folder(tmp_path / "imgs")
    preset = parse_preset(
        f"""
        description = "a CNN lr-find"
        [config]
        problem = "images"
        path = "{tmp_path / "imgs"}"
        image_size = 16
        channels = [4, 8]
        batch_size = 8
        epochs = 2
        time_budget_s = "none"
        [sweep]
        activation = ["relu", "tanh"]
        lr = [0.1, 0.01]
        """,
        "cnn-lr.toml",
    )
    members = lf.members_of(preset)
    assert len({lf.population_key(c) for c, _ in members} - {None}) == 1
    lrs = lf.schedule(30, 1e-4, 1.0)
    together = lf._population(members, lrs, None)
    for (config, point), curve in zip(members, together, strict=True):
        alone = lf._single(config, point, lrs, None)
        assert len(curve.losses) > 10
        assert alone.losses == pytest.approx(curve.losses, rel=1e-4)


def test_cli_writes_a_preset_with_the_suggested_lr(tmp_path, capsys):
    path = tmp_path / "tiny-lr.toml"
    path.write_text(PRESET)
    assert main(["lr-find", str(path), "--steps", "40"]) == 0
    out = capsys.readouterr().out
    suggested = float(out.split("suggested lr: ")[1].split()[0])
    written = find_preset("tiny-lr-lr")  # the user preset folder under HYPERTUI_HOME
    assert written.base["lr"] == suggested and "lr" not in written.swept
    assert written.swept == ["activation"] and written.seeds == 2

    assert main(["lr-find", str(path), "--steps", "40", "--spread", "3"]) == 0
    swept = find_preset("tiny-lr-lr").axes["lr"]
    assert len(swept) == 3 and swept[0] < swept[1] < swept[2]
    assert swept[2] / swept[0] == pytest.approx(9, rel=0.01)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--start", "0"], "--start 0.0: must be a positive learning rate"),
        (["--start", "1", "--end", "0.1"], "must be below --end"),
        (["--steps", "3"], "--steps 3: must be between 10 and 10000"),
        (["--spread", "0.5"], "--spread 0.5: must be above 1"),
    ],
)
def test_cli_refuses_bad_ranges_in_one_line(args, message, tmp_path, capsys):
    path = tmp_path / "tiny-lr.toml"
    path.write_text(PRESET)
    assert main(["lr-find", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
