"""The app on runs a script tracked itself: Live follows them as they join, Results and
the run detail rank and chart by the script's own metric."""

from __future__ import annotations

import hypertui
from hypertui.engine.store.store import Store
from hypertui.tui.app.app import HypertuiApp
from hypertui.tui.app.screens.detail import RunDetailScreen
from hypertui.tui.app.screens.live import LiveScreen
from hypertui.tui.app.screens.results import ResultsScreen
from hypertui.tui.app.widgets.chart import Chart
from tests.test_tracking import train
from tests.test_tui import SIZE, results_ready, wait_for


async def test_live_follows_a_scripts_runs_as_they_join_and_results_rank_by_its_metric(
    tmp_path,
):
    path = tmp_path / "runs.sqlite"
    train(path, 0.1, 0, metric="val_acc")
    running = hypertui.init(name="toy", config={"lr": 0.2, "seed": 0, "layers": [8, 8]}, store=path)
    running.log({"train_loss": 1.0, "val_acc": 0.6, "grad_norm": 3.0}, epoch=0)
    sweep_id = running.sweep_id
    app = HypertuiApp(store_path=path)
    async with app.run_test(size=SIZE) as pilot:
        live = LiveScreen(path, sweep_id)
        await app.push_screen(live)
        await wait_for(pilot, lambda: live.current is not None and live.current.curve.points)
        assert live.metric == "val_acc" and live.higher and len(live.trials) == 2
        assert live.current.run_id == running.id
        assert live.trials[running.id].label == "lr=0.2"
        # a third script joins the group: Live adds its trial
        late = hypertui.init(
            name="toy", config={"lr": 0.3, "seed": 0, "layers": [8, 8]}, store=path
        )
        late.log({"val_acc": 0.9}, epoch=0)
        await wait_for(pilot, lambda: late.id in live.trials and live.trials[late.id].curve.points)
        running.log({"train_loss": 0.5, "val_acc": 0.7, "grad_norm": 2.0}, epoch=1)
        await wait_for(pilot, lambda: len(live.trials[running.id].curve.points) == 2)
        xs, ys = live.trials[running.id].curve.series("val_acc", "epoch")
        assert (xs, ys) == ([0, 1], [0.6, 0.7])  # charted against the epoch it logged
        live.current = live.trials[running.id]
        await pilot.press("m")  # the metric charted: the next one the trial logs
        assert live.metric == "grad_norm" and not live.higher
        running.finish()
        late.finish()
        await wait_for(pilot, lambda: live.sweep.status == "done")

        await pilot.press("r")
        await wait_for(pilot, lambda: results_ready(app))
        results = app.screen
        assert isinstance(results, ResultsScreen)
        assert results.comp.main == "val_acc" and results.comp.own_loop
        assert [g.point for g in results.comp.groups] == [{"lr": 0.3}, {"lr": 0.1}, {"lr": 0.2}]
        assert "mean ± std over seeds" in results.caption()

        await app.push_screen(RunDetailScreen(path, running.id))
        detail = app.screen
        await pilot.pause()
        assert detail.metric == "val_acc" and detail.xs == [0, 1]
        await pilot.press("m")
        assert detail.metric == "train_loss"
        assert detail.query_one("#detail-metric", Chart).title == "train_loss"
        assert not detail.query("#tab-predictions") and not detail.query("#tab-confusion")
    store = Store(path)
    assert [r.status for r in store.runs(sweep_id)] == ["finished"] * 3
