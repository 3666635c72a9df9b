"""Pilot tests of the app's real flows: the sweep trains in a real child process."""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
import pytest
from textual import events
from textual.widgets import Button, DataTable, Input, OptionList, Select, Static

from hypertui.engine.core.paths import exports_dir
from hypertui.engine.store.store import Store, SweepRow
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.detail import RunDetailScreen
from hypertui.tui.app.screens.editor import EditorScreen
from hypertui.tui.app.screens.history import HistoryScreen
from hypertui.tui.app.screens.live import LiveScreen, time_left
from hypertui.tui.app.screens.presets import PresetsScreen
from hypertui.tui.app.screens.results import ResultsScreen, RunsScreen
from hypertui.tui.app.widgets.chart import Chart
from tests.fakes import make_sweep, stored_epochs

SIZE = (100, 34)


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "runs.sqlite"


async def wait_for(pilot, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.1)


def results_ready(app) -> bool:
    """Results reads the store in a worker: its rows are there once `loaded`."""
    return isinstance(app.screen, ResultsScreen) and app.screen.loaded


async def open_preset(pilot, app, name: str) -> EditorScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
    await pilot.press(*name)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
    return app.screen


def set_field(screen, widget_id: str, value: str) -> None:
    screen.query_one(f"#{widget_id}", Input).value = value


async def test_quickstart_run_results_export(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "quickstart")
        assert editor.preset.name == "quickstart"
        set_field(editor, "value-epochs", "2")  # keep the test short; the flow is the same
        await pilot.pause()
        assert "8 trials" in str(editor.query_one("#editor-status", Static).render())
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        live = app.screen
        await wait_for(pilot, lambda: live.ended)
        assert all(v.status == "finished" for v in live.trials.values())
        # trials that ended before the screen attached load their curves as the overlay
        # charts them (every OVERLAY_S): each shows its curve
        await wait_for(pilot, lambda: all(v.curve.points for v in live.trials.values()))
        await pilot.press("r")
        await wait_for(pilot, lambda: results_ready(app))
        results = app.screen
        assert results.query_one("#results", DataTable).row_count == 4
        await pilot.press("e")
        await pilot.press("x")
        await wait_for(pilot, lambda: any(exports_dir().glob("quickstart-*-curves.csv")))
        await wait_for(
            pilot, lambda: "curves" in str(results.query_one("#results-status").render())
        )
        grouped = sorted(exports_dir().glob("quickstart-*-grouped.csv"))
        runs = sorted(exports_dir().glob("quickstart-*-runs.csv"))
        assert len(grouped) == 1 and len(runs) == 1
        assert len(pd.read_csv(grouped[0])) == 4
        assert len(pd.read_csv(runs[0])) == 8
        curves = pd.read_csv(next(exports_dir().glob("quickstart-*-curves.csv")))
        assert len(curves) == 8 * 2 and set(curves.epoch) == {1, 2}  # 8 runs, 2 epochs each
        assert str(runs[0]) in str(results.query_one("#results-status", Static).render())


async def test_the_editor_trains_on_ray_only_where_ray_answers(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "quickstart")
        editor.query_one("#backend", Select).value = "ray"
        set_field(editor, "address", "127.0.0.1:1")  # nothing listens there
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app._notifications, timeout=30)
        said = " ".join(str(n.message) for n in app._notifications)
        assert "127.0.0.1:1" in said and isinstance(app.screen, EditorScreen)
    assert not store_path.exists() or not Store(store_path).sweeps()  # nothing was started


async def test_invalid_value_shows_its_message_and_disables_run(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "quickstart")
        run = editor.query_one("#run", Button)
        assert not run.disabled
        set_field(editor, "value-batch_size", "0")
        await wait_for(pilot, lambda: run.disabled)  # the form is checked once typing pauses
        assert "batch_size = 0 is not allowed" in str(editor.query_one("#err-batch_size").render())
        set_field(editor, "sweep-lr", "0.1, fast")
        await wait_for(
            pilot, lambda: "sweep: lr = 'fast'" in str(editor.query_one("#err-lr").render())
        )
        await pilot.press("ctrl+r")  # refused: nothing starts
        assert isinstance(app.screen, EditorScreen)
        set_field(editor, "value-batch_size", "10")
        set_field(editor, "sweep-lr", "0.1, 0.01, 0.001")
        await wait_for(pilot, lambda: not run.disabled)
        assert "12 trials" in str(editor.query_one("#editor-status", Static).render())


async def test_combination_errors_show_beside_the_field(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "quickstart")
        editor.query_one("#value-model").value = "cnn"
        error = editor.query_one("#err-model")
        await wait_for(pilot, lambda: "needs problem = 'mnist'" in str(error.render()))
        assert editor.query_one("#run", Button).disabled


async def test_save_as_user_preset(store_path):
    from hypertui.engine.core.paths import user_presets_dir
    from hypertui.engine.sweeps.presets import find_preset

    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "quickstart")
        set_field(editor, "value-epochs", "7")
        set_field(editor, "name", "my-quick")
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = find_preset("my-quick")
        assert saved.base_config.epochs == 7 and not saved.shipped
        assert (user_presets_dir() / "my-quick.toml").is_file()
        set_field(editor, "name", "quickstart")  # a shipped name is refused, nothing written
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not (user_presets_dir() / "quickstart.toml").exists()
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        app.screen.query_one("#filter", Input).value = ""
        app.screen.action_reload()
        editor = await open_preset(pilot, app, "my-quick")  # the user preset, reopened
        assert editor.query_one("#name", Input).value == "my-quick"
        set_field(editor, "value-epochs", "9")
        await pilot.press("ctrl+s")  # saves back into the file it came from
        await pilot.pause()
        assert find_preset("my-quick").base_config.epochs == 9
        assert sorted(p.name for p in user_presets_dir().iterdir()) == ["my-quick.toml"]


async def start_long_quickstart(pilot, app) -> LiveScreen:
    """quickstart at 500 epochs, run from the editor; returns once curves are drawing."""
    editor = await open_preset(pilot, app, "quickstart")
    set_field(editor, "value-epochs", "500")
    await pilot.press("ctrl+r")
    await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
    live = app.screen
    await wait_for(pilot, lambda: live.current is not None and live.current.curve.points)
    return live


async def test_enter_typed_right_after_the_filter_opens_the_preset_typed(store_path):
    # As a fast typist (or tmux send-keys) does it: no pause between the name and Enter.
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        for key in [*"quickstart", "enter"]:  # all queued at once, as a terminal sends them
            app.post_message(events.Key(key, "\r" if key == "enter" else key))
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        await pilot.pause()  # the editor's header settles before the app closes
        assert app.screen.current.name == "quickstart"
        assert [type(s).__name__ for s in app.screen_stack][-2:] == [
            "PresetsScreen",
            "EditorScreen",
        ]


async def test_cancel_a_running_sweep(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        live = await start_long_quickstart(pilot, app)
        await pilot.press("c")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "ConfirmScreen"  # cancel asks first
        await pilot.press("n")
        await pilot.pause(1.0)
        assert app.screen is live and live.running
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: live.ended, timeout=30)
        store = Store(store_path)
        sweep = store.sweeps()[0]
        assert sweep.status == "cancelled"
        # quickstart's eight trials train as one population: cancelled together
        assert [r.status for r in store.runs(sweep.id)] == ["cancelled"] * 8


async def test_p_pauses_a_running_sweep_and_p_again_resumes_it(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        live = await start_long_quickstart(pilot, app)
        store = Store(store_path)
        sweep_id = store.sweeps()[0].id
        await pilot.press("p")
        # the screen says so once the runner holds: what a user waits for before pressing p
        await wait_for(pilot, lambda: live.sweep.paused, timeout=60)
        assert store.sweep(sweep_id).paused
        held = store.points(store.runs(sweep_id)[0].id)
        await pilot.press("p")
        await wait_for(pilot, lambda: not store.sweep(sweep_id).paused, timeout=60)
        assert store.sweep(sweep_id).control == ""
        run_id = store.runs(sweep_id)[0].id
        await wait_for(pilot, lambda: len(store.points(run_id)) > len(held), timeout=60)
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: live.ended, timeout=30)


async def test_the_all_trials_chart_draws_the_best_eight_when_there_are_more(store_path):
    store = Store(store_path)
    make_sweep(store, "5eed0001")  # 12 trials; the four at lr 2.0 diverged
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        live = LiveScreen(store_path, "5eed0001")
        await app.push_screen(live)
        await wait_for(pilot, lambda: live.ended and live.current is not None)
        live.redraw_now()
        live.redraw_overlay()
        await pilot.pause()
        chart = live.query_one("#chart-all", Chart)
        assert chart.title == "best 8 of 12 trials: val_mse by swept value"
        assert len(chart.lines) == 8
        shown = {line.label for line in chart.lines if line.label}
        assert shown and not any("lr=2.0" in label for label in shown)


async def test_history_opens_a_past_sweep_and_resumes_an_interrupted_one(store_path):
    store = Store(store_path)
    make_sweep(store, "5eed0001")
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        table = app.screen.query_one("#history", DataTable)
        assert table.row_count == 1
        await pilot.press("r")  # every trial is done: refused with a message
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: results_ready(app))
        assert app.screen.query_one("#results", DataTable).row_count == 6  # 3 lr x 2 activations


def sweep_from(store: Store, toml_text: str) -> str:
    """A new sweep in `store` from a preset's TOML text."""
    from hypertui.engine.sweeps.presets import parse_preset
    from hypertui.engine.sweeps.sweep import create_sweep

    return create_sweep(store, parse_preset(f'description = "d"\n{toml_text}', "t.toml"))


async def test_resume_from_history_runs_the_rest(store_path, tmp_path):
    store = Store(store_path)
    sweep_id = sweep_from(
        store,
        "[config]\nhidden = [4]\nepochs = 2\nbatch_size = 256\n"
        '[sweep]\nactivation = ["relu", "tanh"]\n',
    )
    store.end_sweep(sweep_id, "interrupted")
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        await wait_for(pilot, lambda: app.screen.ended)
    assert [r.status for r in store.runs(sweep_id)] == ["finished", "finished"]


async def test_results_sort_and_open_run_detail_house(store_path):
    store = Store(store_path)
    make_sweep(store, "5eed0002")
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ResultsScreen(store_path, "5eed0002"))
        await wait_for(pilot, lambda: results_ready(app))
        results = app.screen
        table = results.query_one("#results", DataTable)
        first_row = [str(c) for c in table.get_row_at(0)]
        assert first_row[0] == "0.01" and first_row[1] == "relu"  # ranked by val_mse
        table.move_cursor(column=results.visible_columns().index("lr"))
        await pilot.press("s")
        assert [str(table.get_row_at(i)[0]) for i in range(6)] == [
            "0.01",
            "0.01",
            "0.1",
            "0.1",
            "2.0",
            "2.0",
        ]
        await pilot.press("s")
        assert str(table.get_row_at(0)[0]) == "2.0"
        await pilot.press("enter")  # a diverged group: its run has no predictions to show
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        await wait_for(
            pilot,
            lambda: "did not finish" in str(app.screen.query_one("#outliers", Static).content),
            timeout=30,
        )
        await pilot.press("escape", "escape", "s")  # ascending again
        assert str(table.get_row_at(0)[0]) == "0.01"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        detail = app.screen
        outliers = detail.query_one("#outliers", Static)
        await wait_for(
            pilot, lambda: getattr(outliers.content, "title", "") == "worst outliers", timeout=30
        )
        assert outliers.content.row_count == 8


async def test_run_detail_gaussian_shows_variance_plots(store_path):
    store = Store(store_path)
    make_sweep(store, "5eed0003", gaussian=True)
    run_id = store.runs("5eed0003")[0].id
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(RunDetailScreen(store_path, run_id))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert app.screen.query("#tab-variance")
        charts = list(app.screen.query("#variance-grid Chart"))
        assert len(charts) == 4  # 3 features + prediction
        var = store.run(run_id).analysis["var"]
        await wait_for(pilot, lambda: all(chart.lines for chart in charts), timeout=30)
        for chart in charts:  # each one plots the run's predicted variances
            assert chart.ylog and len(chart.lines) == 1 and list(chart.lines[0].ys) == var


async def test_run_detail_mnist_shows_confusion_matrix(store_path, shared_data):
    from hypertui.engine.sweeps.sweep import run_sweep

    store = Store(store_path)
    sweep_id = sweep_from(
        store, '[config]\nproblem = "mnist"\nmodel = "mlp"\nhidden = [16]\ntrain_samples = 2000\n'
    )
    list(run_sweep(store, sweep_id, data_dir=shared_data))
    run = store.runs(sweep_id)[0]
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(RunDetailScreen(store_path, run.id))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        table = app.screen.query_one("#tab-confusion Static").content
        assert table.title == "validation confusion matrix" and table.row_count == 10
    assert sum(map(sum, run.analysis["confusion"])) == 10_000


async def test_a_sweep_started_in_the_app_outlives_it(store_path):
    """Quit at once, no question: the runner trains on, and a new app attaches to it."""
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "quickstart")
        set_field(editor, "value-epochs", "60")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        live = app.screen
        await wait_for(pilot, lambda: live.current is not None and live.current.curve.points)
        await pilot.press("q")
        # action_quit is a coroutine of its own: on a busy machine the key can be pressed
        # and the test's block left before it runs
        await wait_for(pilot, lambda: app.farewell)
    sweep_id = live.sweep_id
    assert f"sweep {sweep_id}" in app.farewell and f"attach {sweep_id}" in app.farewell
    store = Store(store_path)
    assert store.sweep(sweep_id).running  # the app is gone, the sweep is not

    again = HypertuiApp(store_path=store_path, attach=sweep_id)
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(again.screen, LiveScreen))
        live = again.screen
        await wait_for(pilot, lambda: live.ended, timeout=120)
        assert all(v.status == "finished" for v in live.trials.values())
        # trials stored before it attached load their curves as the overlay draws them
        # (every OVERLAY_S): on a busy machine the sweep can end before that
        await wait_for(pilot, lambda: not any(v.partial for v in live.trials.values()))
        curves = {run_id: len(v.curve.points) for run_id, v in live.trials.items()}
    runs = store.runs(sweep_id)
    assert [r.status for r in runs] == ["finished"] * 8
    for r in runs:
        assert stored_epochs(store, r.id) == list(range(1, 61))  # every point stored once
        assert curves[r.id] == len(store.points(r.id))  # and the attached app has them all


async def test_typing_filters_presets_and_invalid_user_presets_are_listed(store_path):
    from hypertui.engine.core.paths import user_presets_dir

    user_presets_dir().mkdir(parents=True)
    (user_presets_dir() / "broken.toml").write_text("description = 'x'\n[sweep]\nlr = []\n")
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        options = app.screen.query_one("#preset-list", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "invalid:" + str(user_presets_dir() / "broken.toml") in ids
        await pilot.press(*"mnist loss")
        await pilot.pause()
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert [i for i in ids if i and i.startswith("preset:")] == ["preset:mnist-loss"]


async def test_keys_typed_on_the_presets_list_reach_the_filter(store_path):
    """A click on the list (or a screen coming back) leaves the focus there: typed letters
    and backspaces still filter, none is dropped."""
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        app.screen.query_one("#preset-list", OptionList).focus()
        await pilot.press(*"mnist lossXYZ", "backspace", "backspace", "backspace")
        box = app.screen.query_one("#filter")
        await wait_for(pilot, lambda: box.value == "mnist loss")
        options = app.screen.query_one("#preset-list", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert [i for i in ids if i and i.startswith("preset:")] == ["preset:mnist-loss"]


async def test_results_reads_the_store_in_a_worker_and_the_ui_keeps_taking_keys(
    store_path, monkeypatch
):
    """Reading a big sweep (a 648-trial grid) must not hold the UI thread: keys typed
    meanwhile are handled at once (here: Esc, while the read is held back)."""
    import threading

    from hypertui.tui.app.screens import results

    make_sweep(Store(store_path), "5eed0001")
    release = threading.Event()
    slow = results.compare_sweep

    def held(*args, **kwargs):
        release.wait(60)
        return slow(*args, **kwargs)

    monkeypatch.setattr(results, "compare_sweep", held)
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ResultsScreen(store_path, "5eed0001"))
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen))
        assert not app.screen.loaded
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        release.set()
        await app.push_screen(ResultsScreen(store_path, "5eed0001"))
        await wait_for(pilot, lambda: results_ready(app))
        assert app.screen.query_one("#results", DataTable).row_count == 6  # 3 lr x 2 act


async def test_live_reads_the_store_in_workers_and_the_ui_keeps_taking_keys(
    store_path, monkeypatch
):
    """Live reads nothing on the UI thread: the sweep, its trials and the stored curves
    come from thread workers, so keys typed while a read is held are handled at once."""
    import threading

    from hypertui.engine.store.follow import Follower
    from hypertui.tui.app import follow

    make_sweep(Store(store_path), "5eed0001")
    release = threading.Event()
    readers: list[threading.Thread] = []  # the threads that read the store

    class HeldFollower(Follower):
        def poll(self):
            readers.append(threading.current_thread())
            release.wait(60)
            return super().poll()

    def stored_curve(*args):
        readers.append(threading.current_thread())
        return follow.stored_curve.__wrapped__(*args)

    stored_curve.__wrapped__ = follow.stored_curve
    monkeypatch.setattr(follow, "Follower", HeldFollower)
    monkeypatch.setattr(follow, "stored_curve", stored_curve)
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        live = LiveScreen(store_path, "5eed0001")
        await app.push_screen(live)
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        assert live.sweep is None and not live.trials  # nothing read yet
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        release.set()
        again = LiveScreen(store_path, "5eed0001")
        await app.push_screen(again)
        await wait_for(pilot, lambda: again.ended and again.current and again.settled)
        assert len(again.trials) == 12 and again.metric == "val_mse"
        assert again.current.curve.points  # its stored curve, read in a worker
    assert readers and threading.main_thread() not in readers


async def test_a_seeds_only_sweep_shows_its_metrics_and_sorting_drives_caption_and_export(
    store_path,
):
    store = Store(store_path)
    make_sweep(store, "5eed0004", gaussian=True)
    # keep one group (lr 0.01, relu): a seeds-only sweep such as house-gaussian
    keep = ("0004r002", "0004r003")
    for table, column in (("points", "run_id"), ("runs", "id")):
        store.db.execute(f"DELETE FROM {table} WHERE {column} NOT IN (?, ?)", keep)
    store.db.commit()
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ResultsScreen(store_path, "5eed0004"))
        await wait_for(pilot, lambda: results_ready(app))
        results = app.screen
        shown = results.visible_columns()
        assert {"val_mse", "val_nll", "val_var", "test_mse"} <= set(shown)
        assert "lr" not in shown  # a constant config column hides
        caption = str(results.query_one("#results-title", Static).content)
        assert "ranked by val_mse" in caption and "fixed data split" in caption
    make_sweep(store, "5eed0005")
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(ResultsScreen(store_path, "5eed0005"))
        await wait_for(pilot, lambda: results_ready(app))
        results = app.screen
        table = results.query_one("#results", DataTable)
        table.move_cursor(column=results.visible_columns().index("lr"))
        await pilot.press("s", "s")  # lr, descending
        caption = str(results.query_one("#results-title", Static).content)
        assert "sorted by lr (descending)" in caption and "ranked by" not in caption
        await pilot.press("e")
        await pilot.pause()
        exported = pd.read_csv(next(exports_dir().glob("*5eed0005-grouped.csv")))
        assert list(exported.lr) == sorted(exported.lr, reverse=True)


def test_the_eta_leaves_out_the_time_the_runner_held_on_pauses():
    sweep = SweepRow("5eed", "p", "house", "", [], "", 0.0, 0.0, "running", {}, runner_started=1e3)
    paused_20_s = dataclasses.replace(sweep, paused_s=20.0)
    # 4 trials ended in the runner's first 100 s, 20 of them held on a pause: 6 more take
    # 6 x 80 / 4 s, not 6 x 100 / 4 s
    assert time_left(paused_20_s, done_by_runner=4, left=6, now=1100.0) == pytest.approx(120.0)
    assert time_left(sweep, done_by_runner=4, left=6, now=1100.0) == pytest.approx(150.0)
    holding = dataclasses.replace(paused_20_s, paused=True)
    assert time_left(holding, done_by_runner=4, left=6, now=1100.0) is None  # no pace now
    assert time_left(sweep, done_by_runner=0, left=6, now=1100.0) is None


async def test_the_editors_changes_are_recorded_and_history_shows_them(store_path, monkeypatch):
    app = HypertuiApp(store_path=store_path)
    started: list[str] = []
    monkeypatch.setattr(app, "start_sweep", started.append)  # no runner: the record is the point
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "house-study-grid")
        set_field(editor, "value-epochs", "40")
        set_field(editor, "sweep-lr", "0.1, 0.01")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: started)
        store = Store(store_path)
        assert store.sweep(started[0]).options["overrides"] == "lr=[0.1,0.01] epochs=40"
        store.close()
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        table = app.screen.query_one("#history", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert str(table.get_cell(started[0], "options")) == "lr=[0.1,0.01] epochs=40"


async def test_a_name_match_ranks_above_a_description_match(store_path):
    # "study" is in house-best's description ("the study's best model") and in
    # house-study-grid's name: Enter must open the one whose name was typed.
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "study")
        assert editor.preset.name == "house-study-grid"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        options = app.screen.query_one("#preset-list", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        named = [i for i in ids if i and "study" in i]
        assert ids.index(named[-1]) < min(
            ids.index(i) for i in ids if i and i.startswith("preset:") and "study" not in i
        )


def stack(app) -> list[str]:
    return [type(s).__name__ for s in app.screen_stack[1:]]


async def test_escape_goes_up_one_level_and_never_back_through_a_loop(store_path):
    # History is a place of its own under Presets: opening it again from a sweep's Results
    # does not stack a second History over them, so Esc goes History -> Presets.
    store = Store(store_path)
    make_sweep(store, "5eed0001")
    store.close()
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        for _ in range(2):
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
            await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
            await pilot.press("enter")
            await wait_for(pilot, lambda: results_ready(app))
            await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        assert stack(app) == ["PresetsScreen", "HistoryScreen"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: results_ready(app))
        await pilot.press("escape")  # back where Results came from
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        assert stack(app) == ["PresetsScreen"]


async def test_escape_in_the_editor_asks_before_it_drops_edits(store_path):
    from hypertui.tui.app.screens.dialogs import ConfirmScreen

    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_preset(pilot, app, "quickstart")
        await pilot.press("escape")  # nothing changed: straight back
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        await pilot.press("ctrl+a", "ctrl+k")  # clear the filter
        editor = await open_preset(pilot, app, "quickstart")
        set_field(editor, "value-epochs", "3")
        for key in ("escape", "f2"):  # leaving by Esc or for History
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            await wait_for(pilot, lambda: app.screen is editor)
            assert editor.query_one("#value-epochs", Input).value == "3"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        assert stack(app) == ["PresetsScreen"]


def test_help_lists_every_key_of_every_screen_and_reads_at_80_columns():
    import importlib
    import inspect
    import pkgutil
    import re

    from rich.console import Console
    from textual.screen import Screen

    import hypertui.tui.app.screens as screens
    from hypertui.tui.app.screens.help import SECTIONS, help_table, key_name, screen_class

    classes = {HypertuiApp}
    for info in pkgutil.iter_modules(screens.__path__):
        module = importlib.import_module(f"{screens.__name__}.{info.name}")
        classes |= {
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, Screen) and c.__module__ == module.__name__
        }
    titles = {screen_class(s.screen): s.title for s in SECTIONS}
    assert classes - set(titles) == set()  # a new screen needs its row in help
    console = Console(width=70, record=True)  # the help box's inside at 80x24
    console.print(help_table())
    rows: dict[str, list[str]] = {}
    for line in console.export_text().splitlines():
        if line[:1].strip():  # a row starts at the left edge; its own lines are indented
            title = next(t for t in titles.values() if line.startswith(t + " "))
            rows[title] = []
        if line.strip():
            rows[title].append(line)
    for cls, title in titles.items():
        text = re.sub(r"\s+", " ", " ".join(rows[title]))
        words = set(re.split(r"\s+|(?<=\S)/(?=\S)", text))  # n/Esc: two keys; / alone: one
        for binding in cls.BINDINGS:
            for key in binding.key.split(","):
                assert key_name(key) in words, (title, key)
            assert binding.description.split(": ")[-1] in text, (title, binding.description)


async def test_history_at_80_columns_names_the_highlighted_sweeps_changes(store_path):
    # The options column lies past the right edge at 80 columns: the status line says it.
    store = Store(store_path)
    make_sweep(store, "5eed0001")
    make_sweep(store, "5eed0002")
    store.set_options("5eed0002", {"overrides": "epochs=40"})
    store.close()
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        status = app.screen.query_one("#history-status", Static)
        table = app.screen.query_one("#history", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        changed = "5eed0002 changed from the preset: epochs=40"
        for _ in range(2):
            row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            shown = row == "5eed0002"
            await wait_for(pilot, lambda s=shown: (changed in str(status.render())) == s)
            await pilot.press("down")
