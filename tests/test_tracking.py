"""Tracking your own training loop: `hypertui.init` and `run.log`.

In-process where the store is the point; real processes where the process boundary is
(a kill, an exception that ends the script, Ctrl-C, an import that must stay light).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import hypertui
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.store.store import Store

ROOT = Path(__file__).resolve().parents[1]


def wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def train(store: Path, lr: float, seed: int, epochs: int = 4, **init) -> hypertui.Run:
    with hypertui.init(
        name="toy", config={"lr": lr, "seed": seed, "layers": [8, 8]}, store=store, **init
    ) as run:
        for epoch in range(epochs):
            acc = 0.5 + lr * epoch - 0.01 * seed
            run.log({"train_loss": 1 / (epoch + 1), "val_acc": acc}, epoch=epoch)
        run.log({"test_acc": 0.7 + lr})
    return run


def test_runs_of_a_group_are_one_sweep_compared_by_what_differs(tmp_path):
    store_path = tmp_path / "runs.sqlite"
    for lr in (0.1, 0.2):
        for seed in (0, 1):
            run = train(store_path, lr, seed, metric="val_acc")
    store = Store(store_path)
    (sweep,) = store.sweeps()
    assert (sweep.preset, sweep.problem, sweep.status) == ("toy", "script", "done")
    assert sweep.swept == ["lr"] and sweep.options == {"metric": "val_acc", "mode": "max"}
    runs = store.runs(sweep.id)
    assert [r.status for r in runs] == ["finished"] * 4
    assert [r.point for r in runs] == [{"lr": 0.1}] * 2 + [{"lr": 0.2}] * 2
    assert runs[0].config == {"lr": 0.1, "seed": 0, "layers": [8, 8]}  # none of ours added
    last = runs[-1]
    assert last.id == run.id and last.seed == 1 and last.best_epoch == 3
    assert last.final["val_acc"] == pytest.approx(0.5 + 0.2 * 3 - 0.01)
    assert last.test == {"test_acc": pytest.approx(0.9)} and last.epochs_done == 4
    points = store.points(last.id)
    assert [p["epoch"] for p in points[:4]] == [0, 1, 2, 3] and len(points) == 5
    assert points[0]["train_loss"] == 1.0 and "val_acc" in points[0]

    from hypertui.engine.analysis.compare import compare_sweep

    comp = compare_sweep(sweep, runs)
    assert comp.main == "val_acc" and comp.higher_is_better and comp.own_loop
    assert [g.point for g in comp.groups] == [{"lr": 0.2}, {"lr": 0.1}]  # higher is better
    assert comp.groups[0].stats["val_acc"].n == 2
    assert "test_acc" in comp.metrics and "train_loss" in comp.metrics


def test_the_metric_defaults_to_the_validation_loss_and_min(tmp_path):
    with hypertui.init(config={"seed": 0}, store=tmp_path / "s.sqlite") as run:
        run.log({"train_loss": 2.0, "val_loss": 1.5, "val_f1": 0.3})
        run.log({"train_loss": 1.0, "val_loss": 1.0, "val_f1": 0.4})
    store = Store(tmp_path / "s.sqlite")
    (sweep,) = store.sweeps()
    assert sweep.preset == Path(sys.argv[0]).stem or sweep.preset  # the script's name
    assert sweep.options == {"metric": "val_loss", "mode": "min"}
    (r,) = store.runs(sweep.id)
    assert r.best == {"train_loss": 1.0, "val_loss": 1.0, "val_f1": 0.4} and r.steps == 2


def test_values_that_are_not_numbers_are_left_out_with_one_warning_and_a_note(tmp_path, capsys):
    class Scalar:  # a 0-d tensor or a numpy scalar: float() takes it
        def __float__(self):
            return 0.25

    with hypertui.init(
        name="bad", config={"seed": 0, "path": Path("/x")}, store=tmp_path / "s"
    ) as run:
        for _ in range(3):
            run.log({"val_loss": Scalar(), "text": "high", "flag": True, 3: 1.0})
        run.log("not a dict")
        run.log({"val_loss": 0.1}, epoch=-1, step="x")
    err = capsys.readouterr().err
    assert err.count("text = 'high' is not a number") == 1 and "(training goes on)" in err
    store = Store(tmp_path / "s")
    (r,) = store.runs(store.sweeps()[0].id)
    assert r.status == "finished" and r.config == {"seed": 0, "path": "/x"}
    notes = r.env["notes"]
    assert any("text" in n for n in notes) and any("path" in n for n in notes)
    assert any("epoch=-1" in n for n in notes) and any("step='x'" in n for n in notes)
    assert [p["val_loss"] for p in store.points(r.id)] == [0.25, 0.25, 0.25, 0.1]
    assert store.points(r.id)[0]["flag"] == 1.0


def test_a_cancel_from_hypertui_raises_stop_in_log_and_ends_the_run_cancelled(tmp_path):
    path = tmp_path / "s"
    stopped = []
    with hypertui.init(name="long", config={"seed": 0}, store=path) as run:
        viewer = Store(path)
        viewer.request(run.sweep_id, "cancel")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run.log({"val_loss": 1.0})
            stopped.append(run.should_stop)
            time.sleep(0.01)
        raise AssertionError("run.log never raised Stop")  # pragma: no cover
    (r,) = viewer.runs(run.sweep_id)
    assert r.status == "cancelled" and r.reason == "cancelled from hypertui"
    assert viewer.sweep(run.sweep_id).status == "cancelled"


def test_a_skip_names_one_run_and_a_pause_holds_log_until_resumed(tmp_path):
    path = tmp_path / "s"
    a = hypertui.init(name="g", config={"lr": 1, "seed": 0}, store=path)
    b = hypertui.init(name="g", config={"lr": 2, "seed": 0}, store=path)
    viewer = Store(path)
    sweep_id = a.sweep_id
    assert b.sweep_id == sweep_id
    viewer.request(sweep_id, "skip", b.id)
    wait(lambda: b.should_stop)
    assert not a.should_stop
    with pytest.raises(hypertui.Stop):
        b.log({"val_loss": 1.0})
    b.finish("cancelled", "skipped")

    viewer.request(sweep_id, "pause")
    held, entered = threading.Event(), threading.Event()

    def log_while_paused():
        wait(lambda: a._writer.pause.is_set())
        started = time.monotonic()
        entered.set()
        a.log({"val_loss": 0.5})  # holds here
        held.set()
        times.append(time.monotonic() - started)

    times: list[float] = []
    thread = threading.Thread(target=log_while_paused)
    thread.start()
    wait(lambda: viewer.sweep(sweep_id).paused)  # the script says it holds
    wait(entered.is_set)  # log is called: from here it holds for at least the sleep
    time.sleep(0.5)
    assert not held.is_set()
    viewer.request(sweep_id, "resume")
    thread.join(30)
    assert held.is_set() and times[0] >= 0.5
    a.finish()
    runs = {r.id: r for r in viewer.runs(sweep_id)}
    assert runs[a.id].status == "finished" and runs[b.id].status == "cancelled"
    # time held on the pause is not training time (its wall time is)
    assert runs[a.id].wall_s - runs[a.id].elapsed_s >= 0.5


def test_a_busy_store_delays_points_and_loses_none(tmp_path):
    path = tmp_path / "s"
    run = hypertui.init(name="busy", config={"seed": 0}, store=path)
    assert run.sweep_id  # stored before another process takes the lock
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's long write
    for i in range(50):
        run.log({"val_loss": float(i)})
    time.sleep(3)  # longer than a write waits: the writer tries again later
    blocker.execute("COMMIT")
    run.finish()
    store = Store(path)
    assert [p["val_loss"] for p in store.points(run.id)] == [float(i) for i in range(50)]
    assert store.run(run.id).status == "finished"


def test_a_store_that_cannot_be_used_warns_once_and_training_goes_on(tmp_path, capsys):
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"this is not a database" * 100)
    for store in (damaged, tmp_path / "a-file" / "runs.sqlite"):
        (tmp_path / "a-file").write_text("a file where a folder should be")
        with hypertui.init(name="x", config={"seed": 0}, store=store) as run:
            for i in range(100):
                run.log({"val_loss": float(i)})
    err = capsys.readouterr().err
    assert err.count("not tracking this run") == 2 and "Traceback" not in err
    assert damaged.read_bytes() == b"this is not a database" * 100  # left as it was


def test_a_second_script_with_the_same_run_id_is_refused_and_the_first_kept(tmp_path, capsys):
    path = tmp_path / "s"
    first = hypertui.init(name="g", config={"seed": 0}, store=path, id="my-run-1")
    first.log({"val_loss": 1.0})
    assert first.sweep_id  # stored: the first to store an id keeps it
    second = hypertui.init(name="g", config={"seed": 1}, store=path, id="my-run-1")
    second.log({"val_loss": 9.0})
    second.finish()
    first.finish()
    assert "run my-run-1 exists already" in capsys.readouterr().err
    store = Store(path)
    (r,) = store.runs(first.sweep_id)
    assert r.seed == 0 and [p["val_loss"] for p in store.points(r.id)] == [1.0]


SCRIPT = """
import faulthandler, os, signal, sys, time
faulthandler.register(signal.SIGUSR1, all_threads=True)  # ended(): the stacks of a hang
# Ctrl-C as at a terminal: a child of a background job (CI under nohup, `make test &`)
# starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler
signal.signal(signal.SIGINT, signal.default_int_handler)
import hypertui
how = sys.argv[1]
def loop(run):
    for step in range(100000):
        run.log({"val_loss": 1.0 / (step + 1)}, step=step)
        if step == 3:
            print("ready", flush=True)
            if how == "raise":
                raise ValueError("the data loader broke\\nat batch 3")
            if how == "exit":
                sys.exit(0)
        time.sleep(0.01)
if how == "plain":  # no `with`: ended at exit
    run = hypertui.init(name="proc", config={"seed": 0})
    loop(run)
else:
    with hypertui.init(name="proc", config={"seed": 0}) as run:
        loop(run)
"""


def start(tmp_path: Path, how: str) -> subprocess.Popen:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "HYPERTUI_HOME": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, str(script), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def ended(proc: subprocess.Popen, timeout: float = 120) -> str:
    """The script's stderr once it ended; if it hangs, a failure with its threads' stacks
    (a busy machine makes it slow, never this slow)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        pytest.fail(f"the script hung; its threads:\n{proc.communicate()[1]}")


def stored(tmp_path: Path) -> bool:
    path = tmp_path / "runs.sqlite"
    return path.exists() and bool(Store(path).sweeps()) and only_run(tmp_path)[1] is not None


def only_run(tmp_path: Path):
    store = Store(tmp_path / "runs.sqlite")
    (sweep,) = store.sweeps()
    (run,) = store.runs(sweep.id)
    return sweep, run


@pytest.mark.parametrize(
    ("how", "status", "reason"),
    [
        ("raise", "failed", "ValueError: at batch 3"),
        ("sigint", "cancelled", "interrupted (Ctrl-C)"),
        ("exit", "finished", ""),
    ],
)
def test_how_a_script_ends_is_how_its_run_ends(tmp_path, how, status, reason):
    proc = start(tmp_path, how)
    assert proc.stdout.readline() == "ready\n"
    if how == "sigint":
        proc.send_signal(signal.SIGINT)
    err = ended(proc)
    sweep, run = only_run(tmp_path)
    assert (run.status, run.reason) == (status, reason), err
    assert sweep.status == "done"
    assert "hypertui" not in err.replace("hypertui.init", "") or how == "raise"


def test_a_killed_script_shows_its_run_interrupted(tmp_path):
    proc = start(tmp_path, "with")
    assert proc.stdout.readline() == "ready\n"
    wait(lambda: stored(tmp_path))  # the writer thread stores the run, in its own time
    proc.kill()
    proc.wait(30)
    sweep, run = only_run(tmp_path)
    assert run.status == "interrupted" and sweep.status == "interrupted"
    # the next run of the group writes it down for good
    hypertui.init(name="proc", config={"seed": 1}, store=tmp_path / "runs.sqlite").finish()
    store = Store(tmp_path / "runs.sqlite")
    statuses = {r.config["seed"]: r.status for r in store.runs(sweep.id)}
    assert statuses == {0: "interrupted", 1: "finished"}
    (row,) = store.db.execute("SELECT status FROM runs WHERE id=?", (run.id,)).fetchall()
    assert row[0] == "interrupted"


def test_a_script_without_with_is_ended_at_exit(tmp_path):
    proc = start(tmp_path, "plain")
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    ended(proc)
    assert only_run(tmp_path)[1].status == "cancelled"


def test_import_hypertui_loads_no_torch_pandas_or_textual():
    code = (
        "import sys, hypertui; hypertui.init; "
        "print(sorted(m for m in ('torch', 'pandas', 'textual', 'numpy', 'rich') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_script_sweep_cannot_be_resumed_by_a_runner(tmp_path):
    train(tmp_path / "s", 0.1, 0)
    store = Store(tmp_path / "s")
    with pytest.raises(HypertuiError, match="run the script again"):
        store.claim_sweep(store.sweeps()[0].id)


def test_a_killed_scripts_run_keeps_what_it_reached(tmp_path):
    """The writer stores the run's final and best values as it goes: `runs` shows them
    while it trains, and a kill -9 loses none of it."""
    proc = start(tmp_path, "with")
    assert proc.stdout.readline() == "ready\n"
    wait(lambda: stored(tmp_path) and only_run(tmp_path)[1].final.get("val_loss", 1) <= 0.25)
    proc.kill()
    proc.wait(30)
    _, run = only_run(tmp_path)
    assert run.status == "interrupted" and run.steps >= 3  # the step it logged last
    assert run.final["val_loss"] == run.best["val_loss"] <= 0.25  # 1/(step+1), step >= 3


def test_run_save_and_restore_resume_a_script_where_it_died(tmp_path, capsys):
    """A script that saves its state every epoch, dies after epoch 2 and runs again goes
    on from epoch 3 and ends with the weights of a script that never died."""
    import torch

    store = tmp_path / "s.sqlite"

    def script(die_after: int | None = None):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        x, y = torch.randn(64, 3, generator=torch.Generator().manual_seed(1)), torch.ones(64, 1)
        with hypertui.init(name="resume", config={"lr": 0.1, "seed": 0}, store=store) as run:
            state = run.restore()
            if state:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
            for epoch in range(state["epoch"] + 1 if state else 0, 6):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                opt.step()
                run.log({"val_loss": loss.item()}, epoch=epoch)
                run.save(
                    {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch}
                )
                if epoch == die_after:
                    raise RuntimeError("the machine went away")
        return run, model

    with pytest.raises(RuntimeError):
        script(die_after=2)
    resumed_run, resumed = script()
    whole_run, whole = script()  # the group's unfinished run's checkpoint was taken over
    assert all(
        torch.equal(a, b)
        for a, b in zip(resumed.state_dict().values(), whole.state_dict().values(), strict=True)
    )
    db = Store(store)
    (sweep,) = db.sweeps()
    rows = {r.id: r for r in db.runs(sweep.id)}
    assert any("resumed from the checkpoint of run" in n for n in rows[resumed_run.id].env["notes"])
    assert not any("resumed" in n for n in rows[whole_run.id].env.get("notes", []))
    assert [p["epoch"] for p in db.points(resumed_run.id)] == [3, 4, 5]
    assert not list((tmp_path / "home" / "checkpoints").rglob("last.safetensors"))  # finished: gone


def test_run_save_refuses_what_it_cannot_store_with_a_warning(tmp_path, capsys):
    with hypertui.init(name="bad", config={"seed": 0}, store=tmp_path / "s.sqlite") as run:
        run.save({"model": object()})
        run.save({(1, 2): 3})
        run.log({"val_loss": 1.0})
    err = capsys.readouterr().err
    assert "model is a object" in err and "not saved" in err and "Traceback" not in err
