from dataclasses import replace
from pathlib import Path

import pytest

from hypertui.engine.core.errors import ConfigError
from hypertui.engine.sweeps.presets import catalogue, find_preset, parse_preset, preset_to_toml

EXPECTED_TRIALS = {
    "house-activation": 9,
    "house-architecture": 54,
    "house-batch-size": 24,
    "house-best": 6,
    "house-gaussian": 6,
    "house-learning-rate": 60,
    "house-optimizer-activation": 54,
    "house-random-search": 96,
    "house-study-grid": 648,
    "mnist-batch-size": 32,
    "mnist-best": 16,
    "mnist-cnn-channels": 12,
    "mnist-cnn-learning-rate": 12,
    "mnist-fast": 3,
    "mnist-fc-learning-rate": 12,
    "mnist-fc-vs-cnn": 6,
    "mnist-loss": 6,
    "mnist-optimizer": 9,
    "quickstart": 8,
}

GOOD = """
description = "tiny"
seeds = 2
[config]
problem = "house"
epochs = 2
[sweep]
lr = [0.1, 0.01]
activation = ["relu", "tanh"]
"""


def test_every_shipped_preset_loads_and_expands_to_its_trial_count():
    cat = catalogue(user_dir=Path("/nonexistent"))
    assert cat.errors == {}
    assert {name: p.n_trials for name, p in cat.presets.items()} == EXPECTED_TRIALS
    for preset in cat.presets.values():
        trials = preset.expand()
        assert len(trials) == preset.n_trials
        assert preset.description and preset.claim
        full = preset.with_overrides(full=True)
        assert len(full.expand()) == preset.n_trials


def test_study_best_models_match_the_report():
    best = find_preset("house-best").base_config
    assert (
        best.hidden,
        best.activation,
        best.batch_size,
        best.lr,
        best.optimizer,
        best.epochs,
    ) == ((10, 10, 10, 10), "relu", 10, 1e-3, "rmsprop", 200)
    assert find_preset("house-gaussian").base_config.loss == "gaussian_nll"
    cnn = find_preset("mnist-best").base_config
    assert (cnn.model, cnn.channels, cnn.optimizer, cnn.loss) == (
        "cnn",
        (16, 32, 64, 128),
        "adam",
        "cross_entropy",
    )
    assert find_preset("mnist-best").with_overrides(full=True).base_config.time_budget_s is None
    assert max(find_preset("house-learning-rate").axes["lr"]) > 1


def test_expansion_crosses_axes_with_seeds_innermost():
    trials = parse_preset(GOOD, "good.toml").expand()
    assert [(t.point["lr"], t.point["activation"], t.config.seed) for t in trials[:3]] == [
        (0.1, "relu", 0),
        (0.1, "relu", 1),
        (0.1, "tanh", 0),
    ]
    assert trials[-1].config.lr == 0.01 and trials[-1].config.activation == "tanh"


def test_random_axes_draw_reproducibly_within_range():
    text = GOOD.replace("lr = [0.1, 0.01]", "lr = { log_uniform = [1e-4, 1e-1] }").replace(
        "seeds = 2", "seeds = 1\ntrials = 5"
    )
    a, b = parse_preset(text, "r.toml").expand(), parse_preset(text, "r.toml").expand()
    lrs = [t.config.lr for t in a]
    assert len(a) == 10 and lrs == [t.config.lr for t in b]
    assert (
        all(1e-4 <= lr <= 1e-1 for lr in lrs) and len(set(lrs)) == 10
    )  # fresh draws per grid point


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('description = "x"\n[config\nlr = 1', r"bad\.toml: invalid TOML: .*line 2"),
        (
            'description = "x"\nseed = 3',
            r"bad\.toml: unknown key 'seed' \(did you mean 'seeds'\?\)",
        ),
        (
            'description = "x"\n[config]\nlrr = 0.1',
            r"bad\.toml: \[config\] unknown config key 'lrr' \(did you mean 'lr'\?\)",
        ),
        ('description = "x"\n[config]\nlr = -1', r"bad\.toml: \[config\] lr = -1.0 is not allowed"),
        (
            'description = "x"\n[sweep]\nlr = []',
            r"bad\.toml: \[sweep\] lr = \[\]: an axis needs at least one value",
        ),
        (
            'description = "x"\n[sweep]\nbatchsize = [1, 2]',
            r"\[sweep\] unknown config field 'batchsize' \(did you mean 'batch_size'\?\)",
        ),
        ('description = "x"\n[sweep]\nlr = [0.1, "fast"]', r"\[sweep\] lr\[1\]: lr = 'fast'"),
        ('description = "x"\n[sweep]\nhidden = [10, 10]', "list of lists"),
        ('description = "x"\n[sweep]\nlr = { log_uniform = [0.1, 1] }', "needs trials = N"),
        ('description = "x"\n[sweep]\nlr = { log_uniform = [1, 0.1] }\ntrials = 2', "low < high"),
        ('description = "x"\n[sweep]\nseed = [1, 2]', "use seeds = N"),
        ('description = "x"\n[sweep]\nmodel = ["mlp", "cnn"]', "needs problem = 'mnist'"),
        ("[config]\nlr = 0.1", "'description' is required"),
        ('description = "x"\nseeds = 0', "seeds = 0: must be an integer >= 1"),
        (
            'description = "x"\n[full]\nepoch = 3',
            r"\[full\] unknown key 'epoch' \(did you mean 'epochs'\?\)",
        ),
    ],
)
def test_bad_presets_name_the_file_the_key_and_a_fix(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_preset(text, "bad.toml")


def test_overrides_fix_a_swept_field_and_validate(tmp_path):
    preset = parse_preset(GOOD, "good.toml")
    fixed = preset.with_overrides({"lr": 0.05}, seeds=1)
    assert fixed.swept == ["activation"] and fixed.n_trials == 2
    assert all(t.config.lr == 0.05 for t in fixed.expand())
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        preset.with_overrides({"epoch": 3})
    with pytest.raises(ConfigError, match="needs problem = 'mnist'"):
        preset.with_overrides({"model": "cnn"})


def test_toml_round_trip():
    for name in ("house-random-search", "mnist-best", "quickstart"):
        preset = find_preset(name)
        again = parse_preset(preset_to_toml(preset), f"{name}.toml")
        assert [t.config for t in again.expand()] == [t.config for t in preset.expand()]
        assert (again.description, again.claim, again.full) == (
            preset.description,
            preset.claim,
            preset.full,
        )


def test_toml_round_trip_of_text_that_hand_written_toml_gets_wrong():
    preset = replace(
        find_preset("house-random-search"),
        description='two lines:\nthe second with "quotes", a \\ and a tab\t',
        claim="'single' and \"double\" quotes, ümlauts, [brackets] = signs",
    )
    again = parse_preset(preset_to_toml(preset), "x.toml")
    assert (again.description, again.claim) == (preset.description.strip(), preset.claim)
    assert again.axes == preset.axes


def test_user_presets_are_found_shadow_shipped_ones_and_bad_ones_are_listed(tmp_path):
    (tmp_path / "mine.toml").write_text(GOOD)
    (tmp_path / "quickstart.toml").write_text(GOOD.replace('"tiny"', '"my quickstart"'))
    (tmp_path / "broken.toml").write_text("description = 'x'\n[sweep]\nlr = []\n")
    cat = catalogue(user_dir=tmp_path)
    assert "mine" in cat.presets and not cat.presets["mine"].shipped
    assert cat.presets["quickstart"].description == "my quickstart"
    assert "lr = []" in cat.errors[str(tmp_path / "broken.toml")]
    with pytest.raises(ConfigError, match="an axis needs at least one value"):
        find_preset("broken", user_dir=tmp_path)
    assert find_preset(str(tmp_path / "mine.toml")).name == "mine"
    with pytest.raises(ConfigError, match="did you mean 'quickstart'"):
        find_preset("quickstrat", user_dir=tmp_path)
    with pytest.raises(ConfigError, match="no such preset file"):
        find_preset(str(tmp_path / "missing.toml"))


def test_run_time_estimates_follow_budgets_and_populations():
    from hypertui.engine.sweeps.estimate import estimate_seconds

    mnist = find_preset("mnist-batch-size")  # 4 x 8 seeds with a 15 s budget each
    assert 480 <= estimate_seconds(mnist) <= 480 + 32 * 5 + 5
    grid = find_preset("house-study-grid")
    assert estimate_seconds(grid) < estimate_seconds(grid, population=False) / 4


def test_a_run_time_estimate_caps_a_batch_at_the_data_size():
    # A batch holds at most the training rows: batch_size 4096 on the house table costs
    # what one batch of all its rows costs, not twice that (and MNIST is counted per row).
    from hypertui.engine.core.config import make_config
    from hypertui.engine.sweeps.estimate import HOUSE_TRAIN, trial_seconds

    whole, past = (make_config(batch_size=b, time_budget_s=None) for b in (HOUSE_TRAIN, 4096))
    assert whole.problem == "house"
    assert trial_seconds(past, "cpu") == trial_seconds(whole, "cpu")


def test_overrides_spell_an_edit_as_set_does():
    from hypertui.engine.sweeps.overrides import overrides
    from hypertui.engine.sweeps.presets import RandomAxis

    grid = find_preset("house-study-grid")
    assert overrides(grid, grid) == []
    axes = {**grid.axes, "lr": RandomAxis("log_uniform", 1e-4, 0.1)}
    axes.pop("hidden")
    edited = replace(grid, base={**grid.base, "epochs": 40, "hidden": [8]}, axes=axes, seeds=3)
    assert overrides(grid, edited) == [
        "hidden=8",
        "lr=log_uniform(0.0001,0.1)",
        "epochs=40",
        "seeds=3",
    ]
    lr = find_preset("house-learning-rate")
    assert overrides(lr, lr.with_overrides(full=True), full=True) == ["--full"]
