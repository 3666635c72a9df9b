"""Own data through the CLI and the app: real-table presets end to end, the presets list,
the editor's path check and the run detail of a regression table."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from rich.console import Console
from textual.widgets import Button, OptionList, Static

from hypertui.engine.core.paths import user_presets_dir
from hypertui.engine.store.store import Store
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.detail import RunDetailScreen
from hypertui.tui.app.widgets.chart import Chart
from hypertui.tui.cli.main import main
from tests.test_own_data import write_table
from tests.test_tui import SIZE, open_preset, set_field, wait_for


async def run_to_the_end(pilot, app, preset: str):
    """Open a preset, run it from the editor (a detached runner) and follow it to its end
    on the Live screen, which is returned."""
    from hypertui.tui.app.screens.live import LiveScreen

    await open_preset(pilot, app, preset)
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
    live = app.screen
    await wait_for(pilot, lambda: live.ended)
    return live


def run_cli(preset, store) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "hypertui", "run", str(preset), "--json", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.real_data
def test_real_table_regression_and_classification_beat_the_mean_and_the_majority(
    shared_data, tmp_path
):
    """Ames with another target: living area (regression) and kitchen quality (5 classes)."""
    ames = shared_data / "ames_housing.csv"
    table = pd.read_csv(ames)
    reg = tmp_path / "area.toml"
    reg.write_text(
        textwrap.dedent(f"""
        description = "Ames: living area from rooms, baths, neighbourhood, style, year"
        [config]
        problem = "table"
        path = "{ames}"
        target = "Gr Liv Area"
        features = ["TotRms AbvGrd", "Bedroom AbvGr", "Full Bath", "Half Bath",
                    "Neighborhood", "House Style", "Year Built"]
        hidden = [32, 32]
        optimizer = "adam"
        lr = 0.003
        batch_size = 64
        epochs = 12
        """)
    )
    cls = tmp_path / "kitchen.toml"
    cls.write_text(
        textwrap.dedent(f"""
        description = "Ames: kitchen quality from every other column"
        [config]
        problem = "table"
        path = "{ames}"
        target = "Kitchen Qual"
        hidden = [64]
        optimizer = "adam"
        lr = 0.001
        batch_size = 64
        epochs = 8
        """)
    )
    store = tmp_path / "runs.sqlite"
    reg_records = run_cli(reg, store)
    cls_records = run_cli(cls, store)
    runs = {r.config["target"]: r for s in Store(store).sweeps() for r in Store(store).runs(s.id)}

    area = runs["Gr Liv Area"]
    assert area.status == "finished" and area.config["task"] == "regression"
    # in square feet squared: predicting the mean scores the target's variance
    assert area.test["test_mse"] < 0.5 * table["Gr Liv Area"].var()
    assert reg_records[-1]["main_metric"] == "val_mse"

    kitchen = runs["Kitchen Qual"]
    assert kitchen.config["task"] == "classification"  # inferred: the column is text
    majority = table["Kitchen Qual"].value_counts(normalize=True).max()
    assert kitchen.test["test_acc"] > majority + 0.15
    assert len(kitchen.analysis["confusion"]) == table["Kitchen Qual"].nunique()
    assert cls_records[-1]["main_metric"] == "val_acc"


def user_table_preset(tmp_path, name="my-table", **config) -> None:
    write_table(tmp_path / "t.csv")
    folder = user_presets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    values = {"target": "y", "epochs": 3, "optimizer": "adam", "lr": 0.01, **config}
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    (folder / f"{name}.toml").write_text(
        f'description = "my own table"\n[config]\nproblem = "table"\n'
        f'path = "{tmp_path / "t.csv"}"\n{lines}\n'
    )


def test_presets_command_lists_a_user_table_preset_with_its_problem(tmp_path, capsys):
    user_table_preset(tmp_path)
    assert main(["presets"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "my-table" in x)
    assert "table" in line.split("my-table", 1)[1]


def test_a_missing_table_file_exits_2_with_one_line(tmp_path, capsys):
    preset = tmp_path / "p.toml"
    preset.write_text('description = "x"\n[config]\nproblem = "table"\npath = "gone.csv"\n')
    assert main(["run", str(preset), "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "path = " in err[0] and "no such file" in err[0]


async def test_presets_screen_groups_user_tables_and_the_editor_checks_the_path(tmp_path):
    user_table_preset(tmp_path)
    app = HypertuiApp(store_path=tmp_path / "runs.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        listing = app.screen.query_one(OptionList)
        titles = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        assert "Your tables" in titles
        editor = await open_preset(pilot, app, "my-table")
        run = editor.query_one("#run", Button)
        assert not run.disabled
        set_field(editor, "value-path", str(tmp_path / "nope.csv"))
        error = editor.query_one("#err-path")  # the form is checked once typing pauses
        await wait_for(pilot, lambda: "no such file" in str(error.render()))
        assert run.disabled
        set_field(editor, "value-path", str(tmp_path / "t.csv"))
        set_field(editor, "value-target", "yy")
        error = editor.query_one("#err-target")
        await wait_for(pilot, lambda: "target = 'yy' is not a column" in str(error.render()))
        set_field(editor, "value-target", "kind")  # the task stays "infer": classification now
        await wait_for(pilot, lambda: not run.disabled)
        assert editor.current.base_config.task == "classification"


def detail_of_my_table(tmp_path) -> tuple[HypertuiApp, RunDetailScreen]:
    """Run the user preset `my-table` headless; the app, and the detail screen of its run."""
    store_path = tmp_path / "runs.sqlite"
    assert main(["run", "my-table", "--store", str(store_path)]) == 0
    store = Store(store_path)
    run = store.runs(store.sweeps()[0].id)[0]
    store.close()
    return HypertuiApp(store_path=store_path), RunDetailScreen(store_path, run.id)


async def test_run_detail_of_a_regression_table_shows_predictions_and_variance(tmp_path):
    user_table_preset(tmp_path, loss="gaussian_nll", features=["a", "b", "color"])
    app, detail = detail_of_my_table(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(detail)
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        outliers = app.screen.query_one("#outliers", Static)
        await wait_for(
            pilot, lambda: getattr(outliers.content, "title", "") == "worst outliers", timeout=30
        )
        # a, b and the one-hot colours (blue, green, missing, red): 6 charts, then "prediction"
        charts = list(app.screen.query("#variance-grid Chart").results(Chart))
        assert len(charts) == 7
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(outliers.content)
        rows = console.export_text().splitlines()
        true, pred = (float(v) for v in rows[2].split()[:2])
        assert 90 < true < 115 and 90 < pred < 115  # in the target's units, not standardised


async def test_the_path_field_completes_file_names(tmp_path):
    from hypertui.tui.app.screens.editor import PathSuggester

    (tmp_path / "sales-2024.csv").write_text("a\n1\n")
    (tmp_path / "other").mkdir()
    suggester = PathSuggester()
    assert await suggester.get_suggestion(str(tmp_path / "sal")) == str(tmp_path / "sales-2024.csv")
    assert await suggester.get_suggestion(str(tmp_path / "oth")) == str(tmp_path / "other")
    assert await suggester.get_suggestion(str(tmp_path / "zzz")) is None
    assert await suggester.get_suggestion("~nosuchuser/da") is None  # pathlib raised


@pytest.mark.real_data
def test_mnist_on_disk_trains_as_an_image_problem_resized(shared_data, tmp_path):
    """The images problem on a real IDX set (MNIST in torchvision's layout), resized to 14."""
    from hypertui.engine.data.sources import checked_config as make_config
    from hypertui.engine.training.train import run

    config = make_config(
        problem="images", path=str(shared_data), image_size=14, channels=[8, 16],
        train_samples=5000, batch_size=64, epochs=3, lr=0.003, device="cpu",
    )  # fmt: skip
    events = list(run(config))
    assert events[0].sizes["val"] == 6000 and "resized to 14x14" in " ".join(events[0].notes)
    assert events[-1].test["test_acc"] > 0.85


async def test_run_detail_of_a_classification_table_names_its_classes(tmp_path):
    user_table_preset(tmp_path, target="kind", features=["a", "b"], metric="val_macro_f1")
    app, detail = detail_of_my_table(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(detail)
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        matrix = app.screen.query_one("#tab-confusion Static", Static).content
        assert [c.header for c in matrix.columns] == ["true\\pred", "hi", "lo", "acc"]
        per_class = app.screen.query_one("#class-table", Static).content
        assert [c.header for c in per_class.columns][:4] == ["class", "precision", "recall", "F1"]
        assert [str(c) for c in per_class.columns[0].cells] == ["hi", "lo"]
        said = str(app.screen.query_one("#class-summary", Static).content)
        assert "macro F1" in said and "ROC AUC" in said and "class 1, 'lo', as the positive" in said
        assert app.screen.metric == "val_macro_f1"  # the metric chart: what the preset ranks by
        summary = list(app.screen.query("#tab-summary Static").results(Static))[1].content
        console = Console(width=300, record=True, file=io.StringIO())
        console.print(summary)  # the metrics table ends with the run's notes
        assert "task = classification (inferred: it holds text" in console.export_text()


async def test_your_own_model_runs_from_the_app_in_the_detached_runner(tmp_path, monkeypatch):
    """The runner is its own process in the package's folder: it must still import the
    user's module from the folder hypertui was started in."""
    from tests.test_own_data import OWN

    (tmp_path / "own_app_models.py").write_text(textwrap.dedent(OWN))
    monkeypatch.chdir(tmp_path)
    user_table_preset(tmp_path, target="kind", model="own_app_models:build", epochs=2)
    app = HypertuiApp(store_path=tmp_path / "runs.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        live = await run_to_the_end(pilot, app, "my-table")
        assert live.metric == "val_acc"  # a classification table ranks by accuracy
        assert [v.status for v in live.trials.values()] == ["finished"]


# A user's folder whose own modules share our subpackages' names: with every import of ours
# under `hypertui`, their engine.py, tui/ and presets.py are theirs alone, and ours stay ours.
SHADOWS = {
    "engine.py": "WIDTH = 6  # the user's own engine module\n",
    "tui/__init__.py": "ACTIVATION = 'tanh'\n",
    "presets.py": "raise ImportError('hypertui imported the user\\'s presets.py')\n",
    "shadowed_model.py": textwrap.dedent("""
        import torch
        from engine import WIDTH
        from tui import ACTIVATION

        def build(config, input_shape, n_outputs):
            act = {"tanh": torch.nn.Tanh()}[ACTIVATION]
            n_in = int(torch.tensor(input_shape).prod())
            return torch.nn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(n_in, WIDTH), act,
                torch.nn.Linear(WIDTH, n_outputs),
            )
    """),
}
SHADOW_PRESET = 'description = "own model"\n[config]\nmodel = "shadowed_model:build"\nepochs = 1\n'


def user_folder_with_shadows(tmp_path):
    for name, text in SHADOWS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)


@pytest.mark.slow  # a fresh `python -m hypertui` (8 s); the app's test below runs fast
def test_a_folder_with_its_own_engine_tui_and_presets_runs_its_model_from_the_cli(tmp_path):
    user_folder_with_shadows(tmp_path)
    (tmp_path / "own.toml").write_text(SHADOW_PRESET)
    done = subprocess.run(
        [sys.executable, "-m", "hypertui", "run", "own.toml", "--json", "--store", "s.sqlite"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    started = next(e for e in events if e["event"] == "started")
    assert started["n_params"] == 3 * 6 + 6 + 6 + 1  # the user's WIDTH, on house's 3 features
    assert [e["status"] for e in events if e["event"] == "finished"] == ["finished"]


async def test_a_folder_with_its_own_engine_tui_and_presets_runs_its_model_from_the_app(
    tmp_path, monkeypatch
):
    user_folder_with_shadows(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # as `python -m` or a script would have it
    user_presets_dir().mkdir(parents=True, exist_ok=True)
    (user_presets_dir() / "shadowed.toml").write_text(SHADOW_PRESET)
    app = HypertuiApp(store_path=tmp_path / "runs.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        live = await run_to_the_end(pilot, app, "shadowed")
        assert [v.status for v in live.trials.values()] == ["finished"]
    (run,) = Store(tmp_path / "runs.sqlite").runs(Store(tmp_path / "runs.sqlite").sweeps()[0].id)
    assert run.n_params == 3 * 6 + 6 + 6 + 1


async def test_the_editor_takes_model_args_for_an_own_model_beside_its_preset(tmp_path):
    """The README's own-model preset, in the presets folder with its module beside it: the
    editor must not call model_args red ("apply to your own model") and Run must be on."""
    folder = user_presets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "editor_models.py").write_text(
        "import torch\n"
        "def build(config, input_shape, n_outputs, width=4):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], width),\n"
        "                               torch.nn.ReLU(), torch.nn.Linear(width, n_outputs))\n"
    )
    (folder / "mine.toml").write_text(
        'description = "my model"\n[config]\nmodel = "editor_models:build"\n'
        "model_args = { width = 5 }\nepochs = 1\n"
    )
    app = HypertuiApp(store_path=tmp_path / "runs.sqlite")
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "mine")
        run = editor.query_one("#run", Button)
        set_field(editor, "value-model_args", "{ width = 6 }")  # the form is checked again
        await wait_for(pilot, lambda: editor.current.base.get("model_args") == {"width": 6})
        assert not editor.query_one("#err-model_args").has_class("invalid")
        assert not run.disabled


async def test_run_from_the_editor_checks_an_own_model_first_and_starts_nothing(tmp_path):
    """A model that imports but is wrong (here: build() returns a string) is built once in
    a child process on ctrl+r: a clear message, no sweep, the editor stays."""
    folder = user_presets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wrong_models.py").write_text(
        "def build(config, input_shape, n_outputs):\n    return 'not a module'\n"
    )
    (folder / "wrong.toml").write_text(
        'description = "wrong"\n[config]\nmodel = "wrong_models:build"\nepochs = 1\n'
    )
    store_path = tmp_path / "runs.sqlite"
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "wrong")
        await pilot.press("ctrl+r")

        def said() -> bool:
            return any("returned str" in str(n.message) for n in app._notifications)

        await wait_for(pilot, said, timeout=120)
        assert app.screen is editor
    assert not store_path.exists() or Store(store_path).sweeps() == []


async def test_the_run_detail_exports_the_model(tmp_path):
    from hypertui.engine.core.paths import exports_dir

    user_table_preset(tmp_path, features=["a", "b", "color"])
    app, detail = detail_of_my_table(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(detail)
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await pilot.press("e")
        await wait_for(pilot, lambda: any(exports_dir().glob("*-model.safetensors")), timeout=30)
        await wait_for(pilot, lambda: any("wrote" in str(n.message) for n in app._notifications))
        assert any(exports_dir().glob("*-model.json"))
