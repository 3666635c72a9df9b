"""A population's diverged members stay diverged; a population with nothing left stops."""

from __future__ import annotations

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import Failed, Finished, Progress
from hypertui.engine.training import clock
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member, evaluate_members
from hypertui.engine.training.step import PopulationStep


def members(lrs, **values):
    return [
        Member(f"m{i}", make_config(optimizer="sgd", lr=lr, seed=i, hidden=[10], **values))
        for i, lr in enumerate(lrs)
    ]


def test_a_diverged_member_keeps_its_status_and_reason_when_the_rest_is_cancelled():
    seen = {"epoch": 0}
    events = []
    stop = lambda: seen["epoch"] >= 2  # noqa: E731
    for event in run_population(members([1e6, 0.01, 0.01], epochs=40), should_stop=stop):
        events.append(event)
        if isinstance(event, Progress):
            seen["epoch"] = max(seen["epoch"], event.epoch)
    done = {e.run_id: e for e in events if isinstance(e, Finished)}
    assert done["m0"].status == "diverged"
    assert "NaN" in done["m0"].reason or "exploded" in done["m0"].reason
    assert done["m1"].status == done["m2"].status == "cancelled"


def test_a_population_whose_members_all_diverged_stops_at_once(monkeypatch):
    monkeypatch.setattr(clock, "REPORT_EVERY_S", 0.0)  # a report after every step
    steps = {"n": 0}

    def count():
        steps["n"] += 1
        return False

    events = list(run_population(members([1e6, 1e6], epochs=1, batch_size=1), should_stop=count))
    done = [e for e in events if isinstance(e, Finished)]
    assert [d.status for d in done] == ["diverged", "diverged"]
    assert steps["n"] < 100  # one epoch is ~2000 steps at batch size 1


def test_chunked_evaluation_gives_the_same_metrics(monkeypatch):
    import hypertui.engine.training.stacked as stacked

    got = {}
    list(
        run_population(
            members([0.01, 0.02], epochs=1), inspect=lambda m: got.setdefault("model", m)
        )
    )
    import torch

    from hypertui.engine.data.load import load_dataset

    config = make_config(optimizer="sgd", lr=0.01, hidden=[10], epochs=1)
    data = load_dataset(config, torch.device("cpu"))
    whole, _ = evaluate_members(config, got["model"], data.val.x, data.val.y, "val")
    monkeypatch.setattr(stacked, "EVAL_ELEMENTS", 50)  # a few rows a chunk
    chunked, _ = evaluate_members(config, got["model"], data.val.x, data.val.y, "val")
    for a, b in zip(whole, chunked, strict=True):
        assert a.keys() == b.keys()
        assert all(abs(a[k] - b[k]) <= 1e-5 * max(1.0, abs(a[k])) for k in a)


def test_an_error_without_a_message_fails_the_members_with_its_name(monkeypatch):
    """A library error that says nothing (RuntimeError()) still gives each member a
    reason, its type's name; quoting its first line had raised IndexError instead."""

    def silent(self, *args):
        raise RuntimeError()

    monkeypatch.setattr(PopulationStep, "__call__", silent)
    events = list(run_population(members([1e-3, 1e-2], epochs=1)))
    failed = [e for e in events if isinstance(e, Failed)]
    assert [(e.run_id, e.reason) for e in failed] == [
        ("m0", "RuntimeError"),
        ("m1", "RuntimeError"),
    ]
