"""A search space users know (issue 23): choice, uniform, log_uniform and int_uniform are
drawn per trial, lists stay grid axes, and a field that means nothing for a trial's values
(momentum with adam) is not drawn. Expansion only: nothing trains here."""

from __future__ import annotations

import hashlib
import json

import pytest

from hypertui.engine.core.errors import ConfigError
from hypertui.engine.sweeps.axes import RandomAxis, expand_points
from hypertui.engine.sweeps.presets import parse_preset, preset_to_toml


def preset(sweep: str, trials: int | None = None, config: str = "", seeds: int = 1):
    head = f'description = "x"\nseeds = {seeds}\n' + (f"trials = {trials}\n" if trials else "")
    return parse_preset(
        f'{head}[config]\nproblem = "house"\n{config}\n[sweep]\n{sweep}\n', "space.toml"
    )


def digest(points: list[dict]) -> str:
    return hashlib.sha256(json.dumps(points).encode()).hexdigest()


# house-random-search as it was when choice arrived (trials = 8, seeds = 1), and one with a
# uniform axis too; pinned from the expansion before this change: a random preset must draw
# exactly the trials it drew before.
BEFORE = """
description = "x"
trials = 8
sweep_seed = 0
[config]
problem = "house"
epochs = 30
[sweep]
optimizer = ["sgd", "adam", "rmsprop"]
lr = { log_uniform = [1e-4, 0.3] }
weight_decay = { log_uniform = [1e-6, 1e-2] }
"""


def test_random_presets_draw_the_trials_they_drew_before():
    points = [t.point for t in parse_preset(BEFORE, "before.toml").expand()]
    assert len(points) == 24
    assert points[:2] == [
        {"optimizer": "sgd", "lr": 0.0164, "weight_decay": 1.2e-05},
        {"optimizer": "sgd", "lr": 0.0001388, "weight_decay": 1.164e-06},
    ]
    assert digest(points) == "7df4c829462383d5cb78942f88f2fc5264591a20fb853d9f344f295e002e0694"
    uniform = (
        BEFORE.replace("sweep_seed = 0", "sweep_seed = 7")
        .replace('"adam", ', "")  # momentum applies to sgd and rmsprop: every draw is kept
        .replace("0.3] }", "0.3] }\nmomentum = { uniform = [0, 0.95] }")
    )
    points = [p for p, _ in parse_preset(uniform, "before.toml").points()]
    assert points[0] == {"optimizer": "sgd", "lr": 0.01491, "momentum": 0.8524,
                         "weight_decay": 0.001267}  # fmt: skip
    assert digest(points) == "c4aa0b06f7d65f65ce8512ba79d07e137acbc70e744ebdbc0a9121d25bf4dcab"


def test_choice_fields_give_the_trial_count_asked_for():
    drawn = preset(
        'activation = { choice = ["relu", "tanh", "gelu"] }\n'
        'optimizer = { choice = ["adam", "sgd", "rmsprop"] }\n'
        "lr = { log_uniform = [1e-4, 0.1] }",
        trials=64,
    )
    trials = drawn.expand()
    assert drawn.n_trials == len(trials) == 64
    assert {t.config.activation for t in trials} == {"relu", "tanh", "gelu"}
    assert {t.config.optimizer for t in trials} == {"adam", "sgd", "rmsprop"}
    # the same fields as lists are grid axes, crossed with every draw: 3 x 3 x 64
    grid = preset(
        'activation = ["relu", "tanh", "gelu"]\noptimizer = ["adam", "sgd", "rmsprop"]\n'
        "lr = { log_uniform = [1e-4, 0.1] }",
        trials=64,
    )
    assert grid.n_trials == len(grid.expand()) == 576
    again = [t.point for t in preset(
        'activation = { choice = ["relu", "tanh", "gelu"] }\n'
        'optimizer = { choice = ["adam", "sgd", "rmsprop"] }\n'
        "lr = { log_uniform = [1e-4, 0.1] }",
        trials=64,
    ).expand()]  # fmt: skip
    assert again == [t.point for t in trials]  # sweep_seed: the same draws every time


def test_int_uniform_draws_ints_with_both_ends_and_choice_draws_lists():
    trials = preset("batch_size = { int_uniform = [1, 3] }", trials=60).expand()
    sizes = [t.config.batch_size for t in trials]
    assert set(sizes) == {1, 2, 3} and all(type(s) is int for s in sizes)
    widths = preset("hidden = { choice = [[10], [10, 10]] }", trials=20)
    trials = widths.expand()
    assert {t.config.hidden for t in trials} == {(10,), (10, 10)}
    assert all(isinstance(t.point["hidden"], list) for t in trials)  # JSON-ready, as a grid's
    again = parse_preset(preset_to_toml(widths), "again.toml")
    assert again.axes == widths.axes and [t.config for t in again.expand()] == [
        t.config for t in trials
    ]


def test_a_field_that_means_nothing_for_the_drawn_value_is_not_drawn():
    sweep = "optimizer = { choice = [OPTS] }\nmomentum = { uniform = [0, 0.9] }\nlr = [0.1, 0.01]"
    trials = preset(sweep.replace("OPTS", '"adam", "sgd"'), trials=30).expand()
    adam = [t for t in trials if t.config.optimizer == "adam"]
    sgd = [t for t in trials if t.config.optimizer == "sgd"]
    assert adam and sgd
    assert all("momentum" not in t.point and t.config.momentum == 0.0 for t in adam)
    assert all(t.point["momentum"] == t.config.momentum for t in sgd)
    assert len({t.config.momentum for t in sgd}) > 1
    # momentum is drawn for adam trials too, then dropped: no other draw moves
    always = preset(sweep.replace("OPTS", '"rmsprop", "sgd"'), trials=30).expand()
    assert [t.point["lr"] for t in trials] == [t.point["lr"] for t in always]
    halving = preset(
        'prune = ["none", "halving"]\nprune_eta = { int_uniform = [2, 4] }', trials=5
    ).expand()
    assert [("prune_eta" in t.point) for t in halving] == [False] * 5 + [True] * 5


@pytest.mark.parametrize(
    "sweep, trials, config, fragment",
    [
        (
            'optimizer = ["adam", "sgd"]\nmomentum = [0, 0.9]',
            None,
            "",
            r"\[sweep\] momentum = \[0, 0.9\] is a grid, crossed with every optimizer, but "
            r"momentum means nothing with optimizer = 'adam' \(only with optimizer = sgd \| "
            r"rmsprop\): draw it instead",
        ),
        (
            'optimizer = { choice = ["sgd", "adamw"] }\nmomentum = [0, 0.9]',
            4,
            "",
            r"momentum means nothing with optimizer = 'adamw'.*or take 'adamw' out of optimizer",
        ),
        (
            "prune_eta = { int_uniform = [2, 4] }",
            4,
            "",
            r"\[sweep\] prune_eta would mean nothing in every trial: prune_eta means nothing "
            r"with prune = 'none' \(only with prune = halving\)",
        ),
        (
            "momentum = { uniform = [0, 0.9] }",
            4,
            'optimizer = "adam"',
            r"momentum would mean nothing in every trial",
        ),
        ("min_delta = [0.1, 0.2]", None, "", r"min_delta means nothing with patience = None"),
        (
            'optimizer = { choice = ["adam", "sgd"] }',
            4,
            'optimizer = "sgd"\nmomentum = 0.9',
            r"momentum = 0.9 only applies to sgd and rmsprop .* \(with the sweep's optimizer "
            r"= 'adam'\)",
        ),
        ("activation = { choice = [] }", 4, "", r"choice needs a non-empty list of values"),
        (
            'activation = { choice = ["relu", "tanhh"] }',
            4,
            "",
            r"\[sweep\] activation\.choice\[1\]: activation = 'tanhh' is not allowed "
            r"\(did you mean 'tanh'\?\)",
        ),
        ("hidden = { choice = [10, 20] }", 4, "", r"hidden = \{ choice = \[\[10\], \[10, 10\]"),
        ("batch_size = { int_uniform = [8.5, 64] }", 4, "", r"two integers, low < high"),
        ("lr = { int_uniform = [1, 2] }", 4, "", r"int_uniform draws ints, for batch_size"),
        ("activation = { uniform = [0, 1] }", 4, "", r"uniform draws floats, for lr"),
        ("lr = { normal = [0, 1] }", 4, "", r"a random axis is \{ choice = \[a, b, \.\.\.\] \}"),
        ('activation = { choice = ["relu"] }', None, "", r"needs trials = N"),
    ],
)
def test_bad_search_spaces_are_refused_in_one_line(sweep, trials, config, fragment):
    with pytest.raises(ConfigError, match=fragment) as caught:
        preset(sweep, trials, config)
    assert str(caught.value).startswith("space.toml: ") and "\n" not in str(caught.value)


def test_expand_points_leaves_out_what_does_not_apply():
    axes = {"a": ["x", "y"], "b": RandomAxis("choice", values=(1, 2, 3))}
    points = list(expand_points(axes, 3, 0, lambda name, point: point["a"] == "x"))
    assert [sorted(p) for p in points] == [["a", "b"]] * 3 + [["a"]] * 3


async def test_the_editor_greys_a_field_that_means_nothing_and_reads_choice_axes(tmp_path):
    from textual.widgets import Input, Select, Static

    from hypertui.tui.app.app import HypertuiApp
    from hypertui.tui.app.screens.editor import EditorScreen

    app = HypertuiApp(store_path=tmp_path / "runs.sqlite")
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.press(*"quickstart", "enter")
        while not isinstance(app.screen, EditorScreen):
            await pilot.pause(0.05)
        screen = app.screen
        row, help_line = screen.query_one("#row-momentum"), screen.query_one("#err-momentum")
        assert not row.has_class("moot")  # quickstart trains with rmsprop
        screen.query_one("#value-optimizer", Select).value = "adam"
        await pilot.pause()
        assert row.has_class("moot")
        assert "momentum means nothing with optimizer = 'adam'" in str(help_line.render())

        def type_in(widget_id: str, text: str) -> None:
            screen.query_one(f"#{widget_id}", Input).value = text

        type_in("sweep-optimizer", "choice adam, sgd")
        type_in("sweep-momentum", "uniform 0 0.9")
        type_in("sweep-activation", "choice relu, tanh")
        type_in("sweep-lr", "log_uniform 1e-4 0.1")
        type_in("trials", "16")
        screen.validate()
        assert not row.has_class("moot") and screen.current is not None
        assert "drawn only where it means something" in str(help_line.render())
        assert screen.current.axes["activation"] == RandomAxis("choice", values=("relu", "tanh"))
        assert screen.current.n_trials == 16 * 2  # draws x seeds: no grid left
        assert "32 trials" in str(screen.query_one("#editor-status", Static).render())
        type_in("sweep-momentum", "0, 0.9")
        screen.validate()
        assert screen.current is None
        assert "is a grid, crossed with every optimizer" in str(help_line.render())
        type_in("sweep-momentum", "choice")
        screen.validate()
        assert "choice needs values" in str(help_line.render())
