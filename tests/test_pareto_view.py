"""The Analysis screen's Pareto view at 80x24, on fake stored runs (no training): `v` a
fourth time shows the front of the preset's objectives (else the metric against train_s),
f/←→ the pair drawn when there are three, ↑↓ a member."""

from __future__ import annotations

import io

from rich.console import Console
from textual.widgets import ContentSwitcher

from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.analysis import EDGE, FRONT, PICKED, RUN_DOT, AnalysisScreen
from hypertui.tui.app.screens.help import help_table
from hypertui.tui.app.widgets.chart import Chart
from tests.test_pareto import SWEEP, TOML, run_row, stored


def text(screen, selector: str) -> str:
    """What a widget shows, as plain text (a Static's Rich table drawn 78 columns wide)."""
    widget = screen.query_one(selector)
    if isinstance(widget, Chart):
        return widget.render().plain
    console = Console(width=78, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text().rstrip("\n")


async def open_pareto(app, pilot, path):
    await app.push_screen(AnalysisScreen(path, SWEEP))
    await pilot.pause()
    await pilot.press("v", "v", "v")
    assert app.screen.query_one(ContentSwitcher).current == "analysis-pareto"
    return app.screen


async def test_the_front_of_three_objectives_pair_by_pair(tmp_path):
    path = stored(tmp_path)
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_pareto(app, pilot, path)
        fr = screen.front
        n = len(fr.members)
        assert 4 < n < 9  # more members than rows: the table is a window
        head = text(screen, "#pareto-head")
        assert (
            f"Pareto front: {n} of 9 configs (means of 2 runs) · val_mse ↓ train_s ↓ params ↓"
            in head
        )
        assert "the front is over all 3; drawn: train_s × val_mse (1/3 · f/←→ next pair)" in head
        chart = screen.query_one("#pareto-chart", Chart)
        assert chart.xlabel == "train_s" and chart.ylabel == "val_mse"
        # the dominated configs, then the members over them (no staircase with three)
        assert [(ln.color, ln.scatter, len(ln.xs)) for ln in chart.lines[:2]] == [
            (RUN_DOT, True, 9 - n), (FRONT, True, n)
        ]  # fmt: skip
        assert [ln.color for ln in chart.lines[2:]] == [PICKED, PICKED]  # the picked ╳
        best = fr.members[0]
        assert chart.lines[1].ys[0] == best.values[0] and chart.lines[1].xs[0] == best.values[1]
        table = text(screen, "#pareto-table")
        assert "hidden  lr    val_mse  train_s  params  n" in table
        assert "▶  40      0.01  0.0135   80.05    521     2" in table
        assert f"members 1-4 of {n} · ↑↓" in table
        assert "left out: 1 config with a diverged run (1 run)" in text(screen, "#pareto-foot")
        drawn = text(screen, "#pareto-chart")
        assert "train_s" in drawn and "val_mse" in drawn

        await pilot.press("f")  # val_mse against params, on a log x: 40 to 521 parameters
        assert chart.xlabel == "params" and chart.xlog and "(2/3 ·" in text(screen, "#pareto-head")
        await pilot.press("right", "right")  # wraps round
        assert chart.xlabel == "train_s"
        await pilot.press("left")
        assert chart.xlabel == "params" and chart.ylabel == "train_s"  # the third pair

        await pilot.press("down")
        table = text(screen, "#pareto-table")
        assert "▶  " in table and "1  40      0.01" in table and screen.member == 1
        picked = fr.members[1]
        cross = chart.lines[-1]
        assert min(cross.xs) < picked.values[2] < max(cross.xs)  # on params, as drawn
        await pilot.press("up", "up")  # wraps to the last member
        assert screen.member == n - 1 and f"members {n - 3}-{n} of {n}" in text(
            screen, "#pareto-table"
        )
        await pilot.press("r")  # the tables' keys do nothing here
        assert screen.view == "pareto"


async def test_without_objectives_the_metric_against_train_s_with_its_staircase(tmp_path):
    path = stored(tmp_path, toml=TOML.replace('objectives = ["val_mse", "train_s", "params"]', ""))
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_pareto(app, pilot, path)
        head = text(screen, "#pareto-head")
        assert "val_mse ↓ train_s ↓" in head and "params" not in head
        assert (
            "default: val_mse against train_s; a preset's objectives = [...] names others" in head
        )
        assert "next pair" not in head
        chart = screen.query_one("#pareto-chart", Chart)
        assert [ln.color for ln in chart.lines[:3]] == [RUN_DOT, EDGE, FRONT]
        assert not chart.lines[1].scatter  # the staircase along the front
        await pilot.press("f")  # one pair: nothing to switch
        assert screen.pair_index == 0 and chart.xlabel == "train_s"


async def test_no_front_is_one_line(tmp_path):
    dead = [run_row(i, {"hidden": [3], "lr": 2.0}, i, None, 1.0, 40, "diverged") for i in range(2)]
    path = stored(tmp_path, runs=dead)
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_pareto(app, pilot, path)
        assert " ".join(text(screen, "#pareto-head").split()) == (
            "Pareto front: no config has a run that finished with a finite val_mse and "
            "train_s and params: no front"
        )
        assert not screen.query_one("#pareto-chart").display
        assert "left out: 1 config with a diverged run (2 runs)" in text(screen, "#pareto-foot")
        await pilot.press("down", "f")  # nothing to move through: no error


def test_help_names_the_pareto_view():
    console = Console(width=120, record=True)
    console.print(help_table())
    page = " ".join(console.export_text().split())
    assert "the Pareto front of the preset's objectives" in page
