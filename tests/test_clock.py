"""Time budgets: what they count, and what the store learns about it."""

from __future__ import annotations

import threading
import time

import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.core.events import RunStarted
from hypertui.engine.training.clock import TrainClock, budget_clock
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run


def test_a_single_threaded_cpu_budget_counts_cpu_time_not_waiting():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        clock = TrainClock(torch.device("cpu"), 0.2, lambda: False, lambda: False)
        assert clock.counts == "thread CPU time"
        clock.start()
        time.sleep(0.3)  # what a busy neighbour costs a wall clock: not this run's time
        assert clock.after_step(1, last_batch=False) != "budget"
        clock.stop()
        assert clock.train_s < 0.1
    finally:
        torch.set_num_threads(threads)


def test_a_pause_makes_no_report_due():
    """Reports come every report_every_s of unpaused time: a pause longer than that must not
    add a point the moment training resumes (one CI run stored epoch 1 twice)."""
    paused = [True]
    clock = TrainClock(torch.device("cpu"), None, lambda: paused[0], lambda: False)
    clock.report_every_s = 0.5  # the unpaused moments around the hold stay well below it
    clock.start()
    threading.Timer(0.8, lambda: paused.__setitem__(0, False)).start()
    clock.hold_while_paused()
    assert clock.after_step(1, last_batch=False) == ""
    time.sleep(0.55)
    assert clock.after_step(2, last_batch=False) == "report"


def test_wall_time_stays_for_accelerators_and_several_threads():
    assert budget_clock(torch.device("cuda")) == "wall time (synchronised)"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert budget_clock(torch.device("cpu")) == "wall time"
    finally:
        torch.set_num_threads(threads)


def test_a_run_records_what_its_budget_counted():
    config = make_config(hidden=[4], epochs=1, time_budget_s=0.2)
    started = next(iter(run(config)))
    assert isinstance(started, RunStarted)
    assert started.env["budget_counts"] == "thread CPU time"
    assert "budget_shared_by" not in started.env
    assert "budget_counts" not in next(iter(run(make_config(hidden=[4], epochs=1)))).env


def test_a_population_records_that_its_members_shared_one_budget():
    members = [
        Member(f"m{i}", make_config(hidden=[4], epochs=1, seed=i, time_budget_s=0.2))
        for i in range(3)
    ]
    started = next(iter(run_population(members)))
    assert started.env["budget_shared_by"] == "3 population members"
