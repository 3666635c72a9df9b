"""The store under concurrency and damage: migrations, lock waits, bad files and rows."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.events import Failed, Finished, Progress, RunStarted
from hypertui.engine.store import schema
from hypertui.engine.store.follow import Follower
from hypertui.engine.store.schema import MIGRATIONS, SCHEMA_VERSION
from hypertui.engine.store.store import UI_LOCK_WAIT_S, Store
from hypertui.engine.store.transaction import StoreBusy
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.tui.cli.main import main
from tests.fakes import finish_trial, pending_sweep, start_trial, train_epochs

ROOT = Path(__file__).resolve().parents[1]
TINY = parse_preset(
    'name = "tiny"\ndescription = "d"\n[config]\nhidden = [3]\nepochs = 2\nbatch_size = 512\n'
    "[sweep]\nlr = [0.01, 0.1]\n",
    "tiny.toml",
)


def hypertui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hypertui", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def a_store_of_the_first_release(path: Path) -> None:
    """A store as hypertui wrote it before numbered migrations: schema 1 in `meta`."""
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO sweeps (id, preset, problem, swept, created_at, updated_at, status)"
        " VALUES ('0ld5weep', 'quickstart', 'house', '[\"lr\"]', 1, 1, 'done')"
    )
    db.execute(
        "INSERT INTO runs (id, sweep_id, idx, seed, config, point, status)"
        " VALUES ('0ldrun000001', '0ld5weep', 0, 0, '{}', '{}', 'finished')"
    )
    for epoch in (1, 2):
        db.execute(
            "INSERT INTO points VALUES ('0ldrun000001', ?, ?, ?, ?, ?, ?, ?, 1)",
            (epoch - 1, epoch, 10 * epoch, 100 * epoch, 0.1 * epoch, 1.0 / epoch, "{}"),
        )
    db.commit()
    db.close()


def test_an_old_store_is_migrated_in_place_and_keeps_its_sweeps(tmp_path):
    path = tmp_path / "old.sqlite"
    a_store_of_the_first_release(path)
    store = Store(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    sweep = store.sweep("0ld5weep")
    assert (sweep.preset, sweep.status, sweep.control, sweep.options) == (
        "quickstart",
        "done",
        "",
        {},
    )
    # the curve survives the points table's rebuild (migration 4), in order
    assert [p["epoch"] for p in store.points("0ldrun000001")] == [1, 2]
    Store(path)  # a second open finds nothing to do


def test_two_processes_upgrading_an_old_store_at_once_both_open_it(tmp_path, monkeypatch):
    """A runner and the app open an old store at the same moment: both read its old
    version, one takes the write lock first and migrates it. The other, given the lock
    next, must find nothing left to do; applying the migrations again fails on the
    columns they add ("duplicate column") and the second hypertui cannot start."""
    path = tmp_path / "old.sqlite"
    a_store_of_the_first_release(path)
    take_lock = schema.Transaction
    other: list[Store] = []

    def another_process_migrates_first(db, where):
        monkeypatch.setattr(schema, "Transaction", take_lock)  # once: the other's, then ours
        other.append(Store(path))
        return take_lock(db, where)

    monkeypatch.setattr(schema, "Transaction", another_process_migrates_first)
    first = Store(path)
    assert other, "the first open never wanted to migrate: no race happened"
    for store in (first, other[0]):
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        sweep = store.sweep("0ld5weep")
        assert (sweep.preset, sweep.status, sweep.control) == ("quickstart", "done", "")
    first.request("0ld5weep", "pause")  # both write the upgraded schema
    other[0].request("0ld5weep", "resume")
    assert Store(path).sweep("0ld5weep").control == ""


def test_readers_never_wait_for_the_write_lock(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, TINY)
    list(run_sweep(store, sweep_id))
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writes (and holds the lock)
    # The lock is held throughout: a read that waited on it would end in StoreBusy after
    # lock_wait_s, so these reads answering at all is the proof (no clock: a busy machine
    # may take longer than a quarter second to open a store and read it)
    viewer = Store(store.path, create=False, lock_wait_s=UI_LOCK_WAIT_S)
    assert viewer.sweeps()[0].status == "done"
    assert len(Follower(viewer, sweep_id).poll().events) > 4
    t0 = time.monotonic()
    with pytest.raises(StoreBusy, match="busy"):  # a write waits a quarter second, no more
        viewer.request(sweep_id, "pause")
    assert UI_LOCK_WAIT_S * 0.9 <= time.monotonic() - t0 < 10.0
    holder.execute("ROLLBACK")
    viewer.request(sweep_id, "pause")


def test_a_busy_store_is_one_clear_line_from_the_cli(tmp_path):
    path = tmp_path / "s.sqlite"
    store = Store(path)
    sweep_id = create_sweep(store, TINY)
    store.claim_sweep(sweep_id)  # running in this process, beating
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    done = hypertui("--store", str(path), "pause", sweep_id)
    holder.execute("ROLLBACK")
    assert done.returncode == 2 and "is busy" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_full_disk_is_a_clear_error_and_loses_nothing(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    first = create_sweep(store, TINY)
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count={pages}")  # the disk is full now
    big = parse_preset(
        'name = "big"\ndescription = "d"\nseeds = 50\n[config]\nhidden = [3]\n'
        "[sweep]\nlr = [0.1, 0.01, 0.001, 0.0001]\n",
        "big.toml",
    )
    with pytest.raises(HypertuiError, match="disk is full"):
        create_sweep(store, big)
    assert [s.id for s in store.sweeps()] == [first]  # the half-made sweep is not kept
    assert len(store.runs(first)) == 2


def test_a_damaged_run_row_is_skipped_and_named(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, TINY)
    list(run_sweep(store, sweep_id))
    bad = store.runs(sweep_id)[0].id
    store.db.execute("UPDATE runs SET final='{not json' WHERE id=?", (bad,))
    runs = store.runs(sweep_id)
    assert len(runs) == 1 and bad not in {r.id for r in runs}
    assert any(bad in line for line in store.damaged)
    done = hypertui("--store", str(store.path), "runs", sweep_id)
    assert done.returncode == 0 and "damaged" in done.stderr and bad in done.stderr
    assert "Traceback" not in done.stderr
    out = tmp_path / "runs.csv"
    exported = hypertui("--store", str(store.path), "export", sweep_id, "--out", str(out))
    assert exported.returncode == 0, exported.stderr


def test_a_damaged_sweep_row_is_skipped_in_the_list(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    good = create_sweep(store, TINY)
    bad = create_sweep(store, TINY)
    store.db.execute("UPDATE sweeps SET swept='[oops' WHERE id=?", (bad,))
    assert [s.id for s in store.sweeps()] == [good]
    done = hypertui("--store", str(store.path), "runs")
    assert done.returncode == 0 and good in done.stdout and bad in done.stderr
    one = hypertui("--store", str(store.path), "runs", bad)
    assert one.returncode == 2 and "damaged" in one.stderr


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(b"garbage " * 1000), "not a hypertui run store"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"x" * 2000), "or a damaged one"),
        (
            lambda p: _sql(p, "PRAGMA user_version=0; UPDATE meta SET value='two'"),
            "schema version 'two' is not a number",
        ),
        (lambda p: _sql(p, "DROP TABLE points"), "table points is missing"),
        (lambda p: _sql(p, "PRAGMA user_version=99"), "newer hypertui"),
    ],
)
def test_a_damaged_store_file_is_one_clear_line(tmp_path, damage, message):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    damage(path)
    with pytest.raises(HypertuiError, match=message):
        Store(path)
    done = hypertui("--store", str(path), "runs")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def _sql(path: Path, script: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(script)
    db.commit()
    db.close()


def test_a_store_under_or_at_a_regular_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    for args in (
        ("--store", str(tmp_path / "file" / "runs.sqlite"), "run", "quickstart"),
        ("--store", str(tmp_path / "file"), "runs"),
    ):
        done = hypertui(*args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert (tmp_path / "file").read_text() == "x"  # never written over


def test_an_ambiguous_id_prefix_says_so(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    store.create_sweep("abcd1aaa", "p", "house", "", [], [])
    store.create_sweep("abcd2bbb", "p", "house", "", [], [])
    with pytest.raises(HypertuiError, match="ambiguous"):
        store.sweep("abcd")
    assert store.sweep("abcd2").id == "abcd2bbb"
    with pytest.raises(HypertuiError, match="too short"):  # an empty $ID in a script
        store.sweep("abc")


def test_delete_removes_a_sweep_and_refuses_a_running_one(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    keep = create_sweep(store, TINY)
    gone = create_sweep(store, TINY)
    list(run_sweep(store, gone))
    no_tty = hypertui("--store", str(store.path), "delete", gone)
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr
    done = hypertui("--store", str(store.path), "delete", gone, "--yes")
    assert done.returncode == 0
    assert [s.id for s in store.sweeps()] == [keep]
    assert store.db.execute("SELECT COUNT(*) FROM points").fetchone()[0] == 0
    store.claim_sweep(keep)
    with pytest.raises(HypertuiError, match="cancel it first"):
        store.delete_sweep(keep)


def test_resume_can_move_a_sweep_to_another_device_and_keep_its_options(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    path = str(store.path)
    created = hypertui(
        "--store", path, "run", "quickstart", "--set", "epochs=1", "--device", "cuda:7",
        "--no-population",
    )  # fmt: skip
    assert created.returncode == 2 and "Traceback" not in created.stderr  # no such GPU here
    sweep_id = store.sweeps()[0].id
    assert store.sweep(sweep_id).n_done == 0
    assert store.sweep(sweep_id).options["population"] is False
    done = hypertui("--store", path, "run", "--resume", sweep_id, "--device", "cpu", "--json")
    assert done.returncode == 0, done.stderr
    runs = store.runs(sweep_id)
    assert {r.status for r in runs} == {"finished"} and {r.device for r in runs} == {"cpu"}
    assert store.sweep(sweep_id).options["population"] is False  # --no-population stayed
    assert len({r.wall_s for r in runs}) == len(runs)  # one by one, not one population


def test_resume_on_another_device_leaves_the_finished_trials_as_they_ran(tmp_path, capsys):
    """A sweep created on a GPU host, resumed on a CPU one with `--device cpu`: the trials
    still to train move to the CPU; those that ended keep the device they ran on, in the
    config that `show`, History and exports report."""
    store = Store(tmp_path / "s.sqlite")
    runs = pending_sweep(store, "dev1ce01", 5, device="cuda:0")
    finished, diverged, cancelled, killed, pending = runs
    store.claim_sweep("dev1ce01")
    for run_id, status in (
        (finished, "finished"),
        (diverged, "diverged"),
        (cancelled, "cancelled"),
    ):
        start_trial(store, run_id, device="cuda:0")
        train_epochs(store, run_id, [1, 2])
        finish_trial(store, run_id, 2, status)
    start_trial(store, killed, device="cuda:0")  # the runner died in this trial
    store.db.execute("UPDATE sweeps SET heartbeat = heartbeat - 600")
    before = {r.id: r for r in store.runs("dev1ce01")}

    argv = ["--store", str(store.path), "run", "--resume", "dev1ce01", "--device", "cpu", "--json"]
    assert main(argv) == 0, capsys.readouterr().err
    after = {r.id: r for r in store.runs("dev1ce01")}
    for run_id in (finished, diverged):  # untouched, as they ran
        assert after[run_id].config == before[run_id].config
        assert (after[run_id].config["device"], after[run_id].device) == ("cuda:0", "cuda:0")
        assert after[run_id].status == before[run_id].status
        assert after[run_id].ended_at == before[run_id].ended_at
    for run_id in (cancelled, killed, pending):  # trained now, on the CPU
        assert after[run_id].status == "finished"
        assert (after[run_id].config["device"], after[run_id].device) == ("cpu", "cpu")


def test_failed_trials_stay_failed_unless_retried(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, TINY)
    list(run_sweep(store, sweep_id))
    failed = store.runs(sweep_id)[0].id
    store.db.execute(
        "UPDATE runs SET status='failed', reason='CUDA out of memory' WHERE id=?", (failed,)
    )
    assert store.claim_sweep(sweep_id) == []  # by default a resume leaves it
    store.end_sweep(sweep_id, "done")
    assert [r.id for r in store.claim_sweep(sweep_id, retry_failed=True)] == [failed]


def test_a_viewer_closing_its_connection_never_loses_a_runners_writes(tmp_path):
    """A runner holds two connections (its watch thread has its own). Opening the second
    once read the file's header with open()/close(), which drops every POSIX lock the
    process holds on the file; a viewer closing then believed itself the last user,
    checkpointed and deleted the WAL, and the runner went on writing into a deleted file
    (a sweep that trained to the end but stored nothing more, then 'malformed')."""
    path = tmp_path / "runs.sqlite"
    runner = Store(path)
    sweep_id = create_sweep(runner, TINY)
    runner.claim_sweep(sweep_id)
    watch = Store(path)  # the watch thread's connection, in the same process
    viewer = "from hypertui.engine.store.store import Store; Store({!r}, create=False).sweeps()"
    subprocess.run([sys.executable, "-c", viewer.format(str(path))], check=True)
    assert Path(f"{path}-wal").exists()  # the viewer left the runner's WAL alone
    runner.request(sweep_id, "pause")  # a write after the viewer has gone
    read = (
        "from hypertui.engine.store.store import Store; "
        "print(Store({!r}, create=False).sweeps()[0].control)"
    )
    seen = subprocess.run(
        [sys.executable, "-c", read.format(str(path))], check=True, capture_output=True, text=True
    )
    assert seen.stdout.strip() == "pause"
    watch.close()
    runner.close()


def test_runs_read_back_exactly_as_created_whatever_their_seeds(tmp_path):
    """Rows are decoded once per config text without its seed: every run must still read
    back its own seed and values, and its own dicts (a caller may change one)."""
    preset = parse_preset(
        'name = "seeds"\ndescription = "d"\nseeds = 12\n[config]\nhidden = [3]\nseed = 5\n'
        "[sweep]\nlr = [0.01, 0.1]\n",
        "seeds.toml",
    )
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, preset)
    expected = [t.config.to_dict() for t in preset.expand()]
    runs = store.runs(sweep_id)
    assert [r.config for r in runs] == expected
    assert [r.seed for r in runs] == [c["seed"] for c in expected] == [*range(5, 17)] * 2
    runs[0].config["lr"] = 99.0
    runs[0].point["lr"] = 99.0
    assert runs[12].config["lr"] == runs[13].config["lr"] == 0.1
    assert [r.point for r in store.runs(sweep_id)] == [{"lr": 0.01}] * 12 + [{"lr": 0.1}] * 12
    # a "seed" inside another field, a seed written last: decoded in full, never mixed up
    odd = [
        {**expected[0], "model_args": {"seed": 7}, "seed": 1},
        {**expected[0], "model_args": {"seed": 7}, "seed": 2},
        {"lr": 0.5, "seed": 11},
        {"lr": 0.5, "seed": 1},
    ]
    store.create_sweep(
        "0ddseeds",
        "p",
        "house",
        "",
        ["lr"],
        [(f"r{i}", i, c["seed"], c, {}) for i, c in enumerate(odd)],
    )
    back = store.runs("0ddseeds")
    assert [(r.config["seed"], r.config["model_args"]) for r in back[:2]] == [
        (1, {"seed": 7}),
        (2, {"seed": 7}),
    ]
    assert [(r.config["seed"], r.config["lr"]) for r in back[2:]] == [(11, 0.5), (1, 0.5)]


def kinds(update) -> list[tuple[str, str, str]]:
    """A follower's starts and ends as (run id, kind, status or failure reason), its curve
    points left out."""
    out = []
    for e in (item.event for item in update.events):
        if isinstance(e, RunStarted):
            out.append((e.run_id, "RunStarted", ""))
        elif isinstance(e, Finished):
            out.append((e.run_id, "Finished", e.status))
        elif isinstance(e, Failed):
            out.append((e.run_id, "Failed", e.reason))
    return out


def test_a_failed_trial_is_followed_as_failed_with_its_reason_never_as_finished(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    oom, ok = pending_sweep(store, "fa11ed01", 2)
    store.claim_sweep("fa11ed01")
    live = Follower(Store(store.path, create=False), "fa11ed01")
    start_trial(store, oom)
    train_epochs(store, oom, [1])
    assert kinds(live.poll()) == [(oom, "RunStarted", "")]
    store.run_failed(oom, "CUDA out of memory")
    start_trial(store, ok)
    train_epochs(store, ok, [1, 2, 3])
    finish_trial(store, ok, 3)
    store.end_sweep("fa11ed01", "done")
    failed, finished = (oom, "Failed", "CUDA out of memory"), (ok, "Finished", "finished")
    assert kinds(live.poll()) == [(ok, "RunStarted", ""), failed, finished]
    # a viewer that attaches afterwards (`hypertui attach`, the app) replays the same ends
    later = kinds(Follower(Store(store.path, create=False), "fa11ed01").poll())
    assert later == [(oom, "RunStarted", ""), (ok, "RunStarted", ""), failed, finished]
    # `run --resume --retry-failed`: the live viewer is told the failed trial starts again
    store.claim_sweep("fa11ed01", retry_failed=True)
    start_trial(store, oom)
    assert kinds(live.poll()) == [(oom, "RunStarted", "")]
    finish_trial(store, oom, 3)
    assert kinds(live.poll()) == [(oom, "Finished", "finished")]


def test_a_follower_that_saw_a_cancel_sees_the_resumed_trials_start_again(tmp_path):
    """Cancelled trials rerun on resume. A viewer still following the sweep must be told
    each one starts again, whether it polls while the trial runs or only after it ended."""
    store = Store(tmp_path / "s.sqlite")
    first, second = pending_sweep(store, "cance101", 2)
    store.claim_sweep("cance101")
    watching, returning = (Follower(Store(store.path, create=False), "cance101") for _ in "ab")
    for run_id in (first, second):  # one population of two, cancelled after an epoch
        start_trial(store, run_id)
        train_epochs(store, run_id, [1])
    for follower in (watching, returning):
        assert kinds(follower.poll()) == [(first, "RunStarted", ""), (second, "RunStarted", "")]
    store.interrupt_running("cance101")
    store.end_sweep("cance101", "cancelled")
    for follower in (watching, returning):
        assert kinds(follower.poll()) == [
            (first, "Finished", "cancelled"),
            (second, "Finished", "cancelled"),
        ]
    store.claim_sweep("cance101")  # `hypertui run --resume`: one by one this time
    start_trial(store, first)
    train_epochs(store, first, [1])
    assert kinds(watching.poll()) == [(first, "RunStarted", "")]  # polled while it runs
    train_epochs(store, first, [2, 3])
    finish_trial(store, first, 3)
    start_trial(store, second)
    train_epochs(store, second, [1, 2, 3])
    finish_trial(store, second, 3)
    store.end_sweep("cance101", "done")
    finished = [(first, "Finished", "finished"), (second, "Finished", "finished")]
    assert kinds(watching.poll()) == [(second, "RunStarted", ""), *finished]
    # a viewer that polled last at the cancel: both trials ran and ended since
    assert kinds(returning.poll()) == [
        (first, "RunStarted", ""),
        (second, "RunStarted", ""),
        *finished,
    ]


def test_a_follower_that_saw_a_cancel_gets_the_resumed_trials_whole_new_curve(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    first, second = pending_sweep(store, "cance102", 2)
    store.claim_sweep("cance102")
    follower = Follower(Store(store.path, create=False), "cance102")
    for run_id in (first, second):
        start_trial(store, run_id)
        train_epochs(store, run_id, [1])
    store.interrupt_running("cance102")
    store.end_sweep("cance102", "cancelled")
    follower.poll()
    store.claim_sweep("cance102")
    start_trial(store, first)
    train_epochs(store, first, [1, 2, 3])
    epochs = [i.event.epoch for i in follower.poll().events if isinstance(i.event, Progress)]
    assert epochs == [1, 2, 3]


def test_resume_on_another_device_retries_failed_trials_there_too(tmp_path, capsys):
    store = Store(tmp_path / "s.sqlite")
    failed, _ = pending_sweep(store, "dev1ce02", 2, device="cuda:0")
    store.claim_sweep("dev1ce02")
    start_trial(store, failed, device="cuda:0")
    store.run_failed(failed, "CUDA out of memory")
    store.end_sweep("dev1ce02", "incomplete")
    argv = ["--store", str(store.path), "run", "--resume", "dev1ce02", "--device", "cpu"]
    assert main([*argv, "--retry-failed", "--json"]) == 0, capsys.readouterr().err
    runs = store.runs("dev1ce02")
    assert [(r.status, r.config["device"]) for r in runs] == [("finished", "cpu")] * 2
