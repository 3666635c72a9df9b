"""The training loop on the bundled house data: small, fast, deterministic."""

import math
import pickle

import pytest

from hypertui.engine.core.config import make_config
from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.events import Failed, Finished, Progress, RunStarted, event_to_dict
from hypertui.engine.training.train import run

TINY = make_config(hidden=[8], epochs=3, batch_size=64, lr=0.01)


def finished(events) -> Finished:
    assert isinstance(events[-1], Finished)
    return events[-1]


def test_event_sequence_of_a_tiny_run():
    events = list(run(TINY, run_id="abc"))
    assert isinstance(events[0], RunStarted)
    assert [type(e) for e in events[1:-1]] == [Progress] * 3
    assert all(e.run_id == "abc" for e in events)
    start, done = events[0], finished(events)
    assert start.config["hidden"] == [8] and start.device == "cpu"
    assert start.n_params == 3 * 8 + 8 + 8 + 1
    assert sum(start.sizes.values()) == 2929  # one of 2930 rows lacks a feature
    assert any("dropped 1" in note for note in start.notes)
    assert [p.epoch for p in events[1:-1]] == [1, 2, 3]
    assert events[-2].samples == 3 * start.sizes["train"]
    assert done.status == "finished" and done.epochs_done == 3
    assert set(done.test) == {"test_loss", "test_mse", "last_test_loss", "last_test_mse"}
    assert done.best["val_mse"] == min(p.metrics["val_mse"] for p in events[1:-1])
    assert done.wall_s >= done.elapsed_s > 0


def test_events_are_picklable_plain_data():
    for event in run(TINY):
        assert pickle.loads(pickle.dumps(event)) == event
        assert event_to_dict(event)["run_id"] == event.run_id


def test_same_seed_same_result_bit_for_bit():
    a, b = list(run(TINY)), list(run(TINY))
    assert finished(a).final == finished(b).final
    assert [e.metrics for e in a[1:-1]] == [e.metrics for e in b[1:-1]]
    c = finished(list(run(TINY.replace(seed=1))))
    assert c.final != finished(a).final


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_huge_learning_rate_diverges_without_an_exception(optimizer):
    config = TINY.replace(lr=1e6, optimizer=optimizer, epochs=20)
    done = finished(list(run(config)))
    assert done.status == "diverged"
    assert "NaN" in done.reason or "exploded" in done.reason
    assert done.epochs_done < 20 and done.test == {}


def test_cancellation_ends_within_one_batch():
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 50

    done = finished(list(run(TINY.replace(batch_size=1), should_stop=should_stop)))
    assert done.status == "cancelled" and done.steps == 50 and done.test == {}


def test_time_budget_stops_within_five_percent_and_excludes_evaluation():
    budget = 1.5
    events = list(run(TINY.replace(epochs=100_000, batch_size=1, time_budget_s=budget)))
    done = finished(events)
    assert done.status == "finished" and "time budget" in done.reason
    # stops within a few steps of the budget (CPU time: load on the machine does not count)
    assert budget <= done.elapsed_s <= budget + 5 * done.elapsed_s / done.steps
    assert 0 < done.epochs_done < 100_000
    assert done.wall_s > done.elapsed_s
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].elapsed_s == pytest.approx(done.elapsed_s)
    assert all(b.elapsed_s > a.elapsed_s for a, b in zip(progress, progress[1:], strict=False))


def test_long_epochs_report_at_intervals(monkeypatch):
    monkeypatch.setattr("hypertui.engine.training.clock.REPORT_EVERY_S", 0.05)
    events = list(run(TINY.replace(epochs=1, batch_size=1)))
    interval = [e for e in events if isinstance(e, Progress) and not e.end_of_epoch]
    assert interval, "a 2050-step epoch should report inside the epoch"
    assert all(e.epoch == 1 and 0 < e.samples < 2050 for e in interval)
    assert math.isfinite(interval[0].train_loss)


def test_unavailable_device_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        next(run(TINY.replace(device="cuda")))


def test_a_runtime_failure_becomes_a_failed_event(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore detail")

    monkeypatch.setattr("hypertui.engine.training.train.make_loss", lambda config: boom)
    events = list(run(TINY))
    assert isinstance(events[-1], Failed)
    assert events[-1].reason == "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"
