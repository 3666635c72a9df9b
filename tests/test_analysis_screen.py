"""The Analysis screen: opened from Results, importance, slices and a keyboard-picked pivot."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypertui.engine.store.store import Store
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.analysis import AnalysisScreen
from hypertui.tui.app.screens.results import ResultsScreen
from tests.fakes import make_sweep
from tests.test_tui import wait_for


@pytest.fixture
def store_path(tmp_path) -> Path:
    path = tmp_path / "runs.sqlite"
    make_sweep(Store(path), "5eed0001")
    return path


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_results_opens_analysis_and_keys_change_slice_and_pivot(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(ResultsScreen(store_path, "5eed0001"))
        await wait_for(pilot, lambda: app.screen.loaded)  # read in a worker
        await pilot.press("i")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AnalysisScreen)
        method = text(screen, "#analysis-method")
        assert "complete grid: 6 cells, 12 runs" in method and "4 diverged" in method
        importance = text(screen, "#analysis-importance")
        assert importance.index("lr") < importance.index("activation")  # lr 2.0 diverged
        assert "seeds" in importance
        assert "slice: val_mse by lr (log x)" in text(screen, "#analysis-slice")
        await pilot.press("f")
        assert "by activation" in text(screen, "#analysis-slice")
        assert screen.pivot_fields() == ("lr", "activation")
        await pilot.press("r")  # rows onto activation: the axes swap
        assert screen.pivot_fields() == ("activation", "lr")
        await pilot.press("c")
        assert screen.pivot_fields() == ("lr", "activation")
        top = text(screen, "#analysis-top")
        assert "best: lr=0.01 activation=relu" in top
        await pilot.press("escape")
        assert isinstance(app.screen, ResultsScreen)


async def test_results_shows_the_vs_best_marker(store_path):
    app = HypertuiApp(store_path=store_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(ResultsScreen(store_path, "5eed0001"))
        await wait_for(pilot, lambda: app.screen.loaded)  # read in a worker
        screen = app.screen
        markers = [t["vs best"] for t in screen.text]
        assert markers[0] == "best" and markers[-2:] == ["-", "-"]  # lr 2.0: none finished
        # The fake's seeds shift every config alike, so the paired test sees exact gaps.
        assert markers[1:-2] == ["p<.001"] * 3  # a p-value is never 0
        # relu lr 0.01 is best; tanh at lr 0.01 trains 0.01 worse in every pair of seeds
        assert screen.text[1]["Δ vs best"] == "+0.01 [+0.01, +0.01]"


async def test_results_shows_the_claim_and_its_verdict(tmp_path):
    from hypertui.engine.sweeps.presets import find_preset
    from hypertui.engine.sweeps.sweep import create_sweep
    from tests.test_study import finish_all

    path = tmp_path / "runs.sqlite"
    store = Store(path)
    sweep_id = create_sweep(store, find_preset("quickstart"))
    finish_all(store, sweep_id, lambda r: 0.08 + 0.03 * (r.point["activation"] == "tanh"))
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(ResultsScreen(path, sweep_id))
        await wait_for(pilot, lambda: app.screen.loaded)  # read in a worker
        claim = text(app.screen, "#results-claim")
        assert claim.startswith("claim: A first look: tanh is as good as ReLU")
        # tanh is 0.03 worse in every pair: far outside the claimed ± 0.01
        assert "does not hold: tanh ≈ relu on val_mse ± 0.01 — paired t, n = 4" in claim


async def test_s_cycles_the_scale_and_the_screen_says_which(tmp_path):
    from tests.test_reading_scale import make_blowup_store

    path = tmp_path / "runs.sqlite"
    make_blowup_store(path)  # most runs 0.1-0.3, four finished at ~30
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.push_screen(AnalysisScreen(path, "b10e0001"))
        await pilot.pause()
        screen = app.screen
        assert "scale: log (val_mse spans" in text(screen, "#analysis-method")
        assert screen.sub_title == "log scale"
        slice_text = text(screen, "#analysis-slice")
        assert "val_mse geo. mean by optimizer" in slice_text
        seen = []
        for _ in range(3):
            await pilot.press("s")
            seen.append(screen.sub_title)
            assert f"scale: {screen.result.scale} (asked)" in text(screen, "#analysis-method")
        assert seen == ["rank scale", "linear scale", "log scale"]
        await pilot.press("s")  # rank: 0 best .. 1 worst, rmsprop's runs mostly lowest
        assert "val_mse mean rank by optimizer" in text(screen, "#analysis-slice")
