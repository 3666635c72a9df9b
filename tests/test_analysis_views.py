"""The Analysis screen's plots, driven by keys on a synthetic random sweep (no training):
`v` switches tables → scatter → parallel coordinates, f/←→ pick the scatter's field, ↑↓ the
highlighted config."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import ContentSwitcher

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Finished, RunStarted
from hypertui.engine.store.store import Store
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.analysis import AnalysisScreen
from hypertui.tui.app.screens.help import help_table
from hypertui.tui.app.widgets.chart import Chart
from hypertui.tui.app.widgets.parallel import ParallelPlot
from tests.test_analysis_plots import RANDOM_TOML, SWEPT, random_runs

SWEEP = "7a9d0001"


def random_store(tmp_path: Path, runs, swept=SWEPT, toml: str = RANDOM_TOML) -> Path:
    """The runs of tests/test_analysis_plots.py as a finished sweep of a random preset."""
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "runs.sqlite"
    store = Store(path)
    trials = []
    for r in runs:
        config = make_config(seed=r.seed).to_dict() | r.point
        trials.append((r.id, r.idx, r.seed, config, r.point))
    store.create_sweep(SWEEP, "rs", "house", "random", swept, trials, preset_toml=toml)
    store.claim_sweep(SWEEP)
    for (run_id, _, _, config, _), r in zip(trials, runs, strict=True):
        store.run_started(RunStarted(run_id, config, "cpu", "CPU", 1, {}))
        store.run_ended(
            Finished(run_id, r.status, epochs_done=1, steps=1, samples=1, elapsed_s=0.1,
                     wall_s=0.1, final=r.final, best=r.final, best_epoch=1, test={})
        )  # fmt: skip
    store.end_sweep(SWEEP, "done")
    store.close()
    return path


def text(screen, selector: str) -> str:
    widget = screen.query_one(selector)
    return (
        str(widget.render())
        if not isinstance(widget, (Chart, ParallelPlot))
        else (widget.render().plain)
    )


async def test_v_shows_the_metric_against_each_numeric_field_then_the_top_configs(tmp_path):
    runs = random_runs()
    diverged = sum(r.status == "diverged" for r in runs)
    path = random_store(tmp_path, runs)
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(AnalysisScreen(path, SWEEP))
        await pilot.pause()
        screen = app.screen
        assert "best: optimizer=" in text(screen, "#analysis-top")
        assert "v: the top 10 on every swept field" in text(screen, "#analysis-top")

        await pilot.press("v")  # the scatter, on the first numeric field
        assert screen.query_one(ContentSwitcher).current == "analysis-scatter"
        head = text(screen, "#scatter-head")
        assert "val_mse against lr (1/2 · f/←→ next) · log x: drawn log-uniform" in head
        assert "2 per config" in head and "─ config mean" in head
        chart = screen.query_one("#scatter-chart", Chart)
        assert chart.xlog and not chart.ylog and chart.lines[0].scatter
        assert len(chart.lines[0].xs) == len(runs) - diverged  # a point per run
        assert len(chart.lines) == 1 + len(runs) // 2 - diverged  # and a tick per mean
        drawn = text(screen, "#scatter-chart")
        assert "lr (log scale)" in drawn and "0.001" in drawn
        assert f"not plotted: {diverged} diverged" in text(screen, "#scatter-foot")

        await pilot.press("f")
        assert "val_mse against dropout (2/2" in text(screen, "#scatter-head")
        assert "drawn uniform" in text(screen, "#scatter-head") and not chart.xlog
        await pilot.press("right")  # wraps round
        assert "against lr (1/2" in text(screen, "#scatter-head")
        await pilot.press("left")
        assert "against dropout" in text(screen, "#scatter-head")
        await pilot.press("s")  # the log scale: the metric's units on a log y axis
        assert screen.result.scale == "log" and chart.ylog
        assert "val_mse (log scale)" in text(screen, "#scatter-chart")
        await pilot.press("s", "s")  # back to linear

        await pilot.press("v")  # parallel coordinates of the top 10
        assert screen.query_one(ContentSwitcher).current == "analysis-parallel"
        head = text(screen, "#parallel-head")
        assert f"top 10 of {len(runs) // 2} configs by mean val_mse" in head
        plot = text(screen, "#parallel-plot")
        names = plot.split("\n")[0].split()
        assert names == [*SWEPT, "val_mse"]
        assert "sgd" in plot and "adam" in plot  # a category's levels beside its axis
        best = screen.result.top[0]
        foot = text(screen, "#parallel-foot")
        assert foot.startswith(f"▶ #1: optimizer={best.point['optimizer']} ")
        await pilot.press("down")
        assert text(screen, "#parallel-foot").startswith("▶ #2: ")
        await pilot.press("up", "up")  # wraps to the last
        assert text(screen, "#parallel-foot").startswith("▶ #10: ")
        fields = screen.pivot_fields()
        await pilot.press("r", "f")  # the tables' keys do nothing here
        assert screen.pivot_fields() == fields and screen.field_index == 1

        await pilot.press("v")  # the Pareto front (tests/test_pareto_view.py)
        assert screen.query_one(ContentSwitcher).current == "analysis-pareto"
        await pilot.press("v")  # back to the tables, whose arrows scroll
        assert screen.query_one(ContentSwitcher).current == "analysis"
        assert screen.focused is screen.query_one("#analysis")
        await pilot.press("r")
        assert screen.pivot_fields() != fields


async def test_what_cannot_be_plotted_is_one_line(tmp_path):
    dead = [
        type(r)(**{**r.__dict__, "status": "diverged", "final": {}, "best": {}})
        for r in random_runs(trials=2, seeds=1)
    ]
    dead_path = random_store(tmp_path / "dead", dead)
    # only a category swept: nothing numeric to put on an x axis
    runs = [r for r in random_runs(trials=1) if r.status == "finished"]
    cat_path = random_store(tmp_path / "cat", runs, swept=["optimizer"], toml="")
    app = HypertuiApp(store_path=dead_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(AnalysisScreen(dead_path, SWEEP))
        await pilot.pause()
        screen = app.screen
        await pilot.press("v")
        assert text(screen, "#scatter-head") == "scatter: all 4 runs diverged: no val_mse to plot"
        assert not screen.query_one("#scatter-chart").display
        assert "not plotted: 4 diverged" in text(screen, "#scatter-foot")
        await pilot.press("v", "down")
        assert "parallel coordinates: all 4 runs diverged" in text(screen, "#parallel-head")
        assert not screen.query_one("#parallel-plot").display

        await pilot.press("escape")
        await app.push_screen(AnalysisScreen(cat_path, SWEEP))
        await pilot.pause()
        screen = app.screen
        await pilot.press("v")
        assert "no swept field is numeric (optimizer)" in text(screen, "#scatter-head")
        await pilot.press("v")  # parallel coordinates still draw: one axis and the metric
        assert "top 2 of 2 configs" in text(screen, "#parallel-head")


def test_help_lists_the_views_keys():
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(help_table())
    page = console.export_text()
    assert "v View" in page and "f/→ Field" in page and "↑ Config up" in page


@pytest.mark.parametrize("presses", [("v",), ("v", "v", "down")], ids=["scatter", "parallel"])
def test_snapshot_of_the_plots_at_80x24(snap_compare, tmp_path, presses):
    path = random_store(tmp_path, random_runs())

    async def run_before(pilot):
        await pilot.app.push_screen(AnalysisScreen(path, SWEEP))
        await pilot.pause()
        await pilot.press(*presses)
        await pilot.pause()

    assert snap_compare(HypertuiApp(store_path=path), terminal_size=(80, 24), run_before=run_before)
