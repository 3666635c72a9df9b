"""SVG snapshots of the main screens at 80x24 and 120x40, from fixed data.

Nothing here trains or reads the clock: stores are synthetic (tests/fakes.py), the Live
screen is fed recorded events instead of a child process, and the CPU meter is pinned.
Update after an intended change with `pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from hypertui.engine.store.store import Store
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.detail import RunDetailScreen
from hypertui.tui.app.screens.history import HistoryScreen
from hypertui.tui.app.screens.live import CpuMeter, LiveScreen
from hypertui.tui.app.screens.results import ResultsScreen
from tests.fakes import make_sweep

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setattr(CpuMeter, "percent", lambda self, pid: "runner CPU 50%")
    monkeypatch.chdir(tmp_path)  # History shows the store's path: keep it the same everywhere
    store_path = Path("runs.sqlite")
    store = Store(store_path)
    make_sweep(store, "5eed0001")
    make_sweep(store, "5eed0002", gaussian=True)
    store.close()
    return HypertuiApp(store_path=store_path)


async def settle(pilot) -> None:
    await pilot.pause()
    for field in pilot.app.screen.query(Input):  # a blinking cursor: shown or not by the clock
        field.cursor_blink = False
    await pilot.app.workers.wait_for_complete()  # the detail screen loads data in a worker
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_presets(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_editor(snap_compare, app, size):
    async def run_before(pilot):
        await pilot.press(*"quickstart", "enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_editor_with_an_invalid_value(snap_compare, app, size):
    async def run_before(pilot):
        await pilot.press(*"quickstart", "enter")
        await pilot.pause()
        pilot.app.screen.query_one("#value-problem").focus()
        pilot.app.screen.query_one("#value-model").value = "cnn"
        pilot.app.screen.validate()  # not left to the typing pause's timer: no race with it
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_live(snap_compare, app, size):
    async def run_before(pilot):
        live = LiveScreen(app.store_path, "5eed0001")
        await pilot.app.push_screen(live)
        while not (live.ended and live.current):  # the follower's replay of the store
            await pilot.pause(0.05)
        await settle(pilot)
        live.redraw()
        live.redraw_overlay()  # asks for the stored curves of the trials it draws
        while not live.settled:  # ... read in a thread
            await pilot.pause(0.05)
        live.redraw()
        live.redraw_overlay()
        live.update_status()
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_results(snap_compare, app, size):
    async def run_before(pilot):
        await pilot.app.push_screen(ResultsScreen(app.store_path, "5eed0001"))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_analysis(snap_compare, app, size):
    async def run_before(pilot):
        await pilot.app.push_screen(ResultsScreen(app.store_path, "5eed0001"))
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_history(snap_compare, app, size):
    async def run_before(pilot):
        await pilot.app.push_screen(HistoryScreen(app.store_path))
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_compare(snap_compare, app, size):
    """Two sweeps marked in History and compared: one table over one overlay of curves."""

    async def run_before(pilot):
        await pilot.app.push_screen(HistoryScreen(app.store_path))
        await settle(pilot)
        await pilot.press("space", "space", "c")
        await pilot.app.workers.wait_for_complete()  # History reads and compares in one
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_run_detail_gaussian_variance(snap_compare, app, size):
    async def run_before(pilot):
        detail = RunDetailScreen(app.store_path, "0002r000")
        await pilot.app.push_screen(detail)
        await pilot.app.workers.wait_for_complete()
        detail.query_one("#detail-tabs").active = "tab-variance"
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
