"""History marks, filters, tags and compares sweeps; Compare shows them in one table and one
overlay of curves (Pilot, on synthetic stores: no training)."""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Input, Static

from hypertui.engine.store.store import Store
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.compare import CompareScreen
from hypertui.tui.app.screens.dialogs import LabelScreen, tag_words
from hypertui.tui.app.screens.history import MARK, HistoryScreen, matches
from hypertui.tui.app.widgets.chart import Chart
from tests.fakes import CREATED, make_sweep

SIZE = (80, 24)


@pytest.fixture
def store_path(tmp_path):
    """Three house sweeps: one named "long run" and tagged, two of the preset's name."""
    path = tmp_path / "runs.sqlite"
    store = Store(path)
    for i, sweep_id in enumerate(("5eed0001", "5eed0002", "5eed0003")):
        make_sweep(store, sweep_id)
        store.db.execute("UPDATE sweeps SET created_at=? WHERE id=?", (CREATED + i, sweep_id))
    store.label("5eed0002", ["baseline"], note="forty epochs", name="long run")
    store.close()
    return path


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


async def history(pilot, app) -> HistoryScreen:
    await pilot.press("f2")
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
    table = app.screen.query_one("#history", DataTable)
    await wait_for(pilot, lambda: table.row_count == 3)
    return app.screen


def marks(screen: HistoryScreen) -> dict[str, str]:
    table = screen.query_one("#history", DataTable)
    return {key.value: str(table.get_cell(key, "mark")) for key in table.rows}


def test_a_filter_word_is_a_part_of_the_preset_name_or_note_and_hash_a_tag(store_path):
    store = Store(store_path)
    named, plain_one = store.sweep("5eed0002"), store.sweep("5eed0001")
    store.close()
    assert matches(named, ["LONG", "demo"]) and matches(named, ["#base"])
    assert matches(named, ["forty"]) and matches(plain_one, [])
    assert not matches(plain_one, ["#base"]) and not matches(plain_one, ["long"])
    assert not matches(named, ["#forty"])  # a note's word is not a tag
    assert tag_words("#baseline, long-run  x") == ["baseline", "long-run", "x"]


async def test_marked_sweeps_compare_in_one_table_and_one_overlay(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await history(pilot, app)
        await pilot.press("c")  # nothing marked: said, nothing opened
        await pilot.pause()
        assert app.screen is screen
        # newest first: 5eed0003, 5eed0002, 5eed0001; space
        # marks the highlighted sweep and moves down; again unmarks
        await pilot.press("space", "space")
        assert marks(screen) == {"5eed0003": MARK, "5eed0002": MARK, "5eed0001": ""}
        await pilot.press("up", "space")
        assert marks(screen)["5eed0002"] == ""
        await pilot.press("up", "space")
        assert "2 marked: c compares them" in str(screen.query_one("#history-status").render())
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        compare = app.screen
        table = compare.query_one("#results", DataTable)
        # both sweeps' six groups in one table, a sweep column naming each
        assert table.row_count == 12
        shown = {str(table.get_cell_at((r, 0))) for r in range(table.row_count)}
        assert shown == {"long run", "house-demo"}
        assert str(table.ordered_columns[0].label) == "sweep"
        chart = compare.query_one("#compare-chart", Chart)
        # each sweep's best group (two seeds): four curves, one colour per sweep
        await wait_for(pilot, lambda: len(chart.lines) == 4 and all(ln.xs for ln in chart.lines))
        colours = [line.color for line in chart.lines]
        assert len(set(colours[:2])) == 1 and len(set(colours[2:])) == 1
        assert colours[0] != colours[2]
        assert chart.title == "val_mse: each sweep's best group"
        legend = str(compare.query_one("#compare-legend", Static).render())
        assert "house-demo (5eed0003)" in legend and "long run (5eed0002)" in legend
        assert [line.ys[-1] for line in chart.lines][:2] == pytest.approx([0.14, 0.144])
        await pilot.press("m")  # the next metric the runs reported
        assert chart.title.startswith("val_loss") or chart.title.startswith("train_loss")
        await pilot.press("g")  # every run: 12 a sweep
        await wait_for(pilot, lambda: len(chart.lines) == 24)
        await pilot.press("v")
        assert not table.display and chart.display
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))


async def test_a_filter_shows_matching_sweeps_and_sweeps_of_other_metrics_open_nothing(
    store_path,
):
    store = Store(store_path)
    store.db.execute("UPDATE sweeps SET problem='mnist' WHERE id='5eed0001'")  # val_acc
    store.close()
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await history(pilot, app)
        table = screen.query_one("#history", DataTable)
        field = screen.query_one("#history-filter", Input)
        assert not field.display
        await pilot.press("slash", *"#base")
        assert field.has_focus and list(marks(screen)) == ["5eed0002"]
        await pilot.press("escape")  # clears the filter, stays in History
        assert app.screen is screen and table.row_count == 3 and table.has_focus
        await pilot.press("slash", *"demo", "enter")
        assert table.has_focus and field.display and table.row_count == 3
        await pilot.press("c")  # nothing marked: the sweeps the filter shows, and
        # 5eed0001 ranks by val_acc: one line, nothing opened
        await wait_for(pilot, lambda: app._notifications)
        said = [n.message for n in app._notifications]
        assert any("rank by different metrics" in m and "\n" not in m for m in said)
        await pilot.pause(0.2)
        assert app.screen is screen
        # the highlighted sweep stayed 5eed0002 through the filters; above it 5eed0003
        await pilot.press("up", "space", "space", "c")  # the marked ones: both val_mse
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert [s.id for s in app.screen.sweeps] == ["5eed0003", "5eed0002"]


async def test_tags_note_and_name_from_history_and_a_bad_value_is_one_line(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await history(pilot, app)
        await pilot.press("t")  # the highlighted sweep: 5eed0003
        await wait_for(pilot, lambda: isinstance(app.screen, LabelScreen))
        dialog = app.screen
        dialog.query_one("#label-tags", Input).value = "ok #bad!tag"
        await pilot.press("enter")
        error = str(dialog.query_one("#label-error", Static).render())
        assert "tag 'bad!tag'" in error and "\n" not in error.strip()
        dialog.query_one("#label-tags", Input).value = "ok"
        dialog.query_one("#label-note", Input).value = "a\x1b[31mred"  # pasted
        await pilot.press("enter")
        assert "no control characters" in str(dialog.query_one("#label-error", Static).render())
        store = Store(store_path)
        assert store.sweep("5eed0003").tags == []  # nothing stored from either
        store.close()
        dialog.query_one("#label-note", Input).value = "lr 2 diverges"
        dialog.query_one("#label-name", Input).value = "first"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        store = Store(store_path)
        sweep = store.sweep("5eed0003")
        store.close()
        assert (sweep.tags, sweep.note, sweep.name) == (["ok"], "lr 2 diverges", "first")
        table = screen.query_one("#history", DataTable)
        await wait_for(pilot, lambda: str(table.get_cell("5eed0003", "preset")) == "first")
        # a tag taken out in the dialog comes off
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, LabelScreen))
        app.screen.query_one("#label-tags", Input).value = ""
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        store = Store(store_path)
        assert store.sweep("5eed0003").tags == []
        store.close()


def test_runs_of_several_sweeps_is_their_comparison(store_path, capsys):
    from hypertui.tui.cli.main import main

    s = ["--store", str(store_path)]
    assert main(["compare", "5eed0001", "5eed0002", *s]) == 0
    compared = capsys.readouterr().out
    assert main(["runs", "5eed0001", "5eed0002", *s]) == 0
    assert capsys.readouterr().out == compared and "long run" in compared
    assert main(["runs", "5eed0001", "5eed0002", "--json", *s]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 24  # both sweeps' 12 runs
    assert main(["runs", "5eed0001", *s]) == 0  # one sweep: its runs, as before
    assert "house-demo" in capsys.readouterr().out
