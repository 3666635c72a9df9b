"""`hypertui import-tb`: TensorBoard logs read with TensorBoard's own reader, checked
against what torch.utils.tensorboard.SummaryWriter wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hypertui.engine.store.store import Store
from hypertui.tui.cli.main import main as cli

pytest.importorskip("tensorboard")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402 (needs tensorboard)

WRITTEN = {  # run folder -> step -> tag -> value
    "lr0.1": {s: {"Loss/train": 1.0 / (s + 1), "Accuracy/val": 0.5 + 0.1 * s} for s in range(6)},
    "deep/lr0.01": {
        s: {"Loss/train": 2.0 / (s + 1), "Accuracy/val": 0.5 + 0.01 * s} for s in range(4)
    },
}


def write(logdir: Path, runs: dict, start: int = 0) -> None:
    for name, steps in runs.items():
        writer = SummaryWriter(str(logdir / name))
        for step, tags in steps.items():
            if step >= start:
                for tag, value in tags.items():
                    writer.add_scalar(tag, value, step)
        writer.add_histogram("weights", np.array([1.0, 2.0, 3.0]), 0)  # not a scalar: skipped
        writer.close()


def stored(store: Store, sweep_id: str) -> dict:
    out = {}
    for run in store.runs(sweep_id):
        steps = [p["step"] for p in store.points(run.id)]
        assert len(steps) == len(set(steps)), f"a step stored twice: {steps}"
        out[run.config["run"]] = {
            p["step"]: {k: v for k, v in p.items() if "/" in k} for p in store.points(run.id)
        }
    return out


def test_the_same_values_steps_and_tags_as_the_summary_writer_wrote(tmp_path, capsys):
    logdir, store_path = tmp_path / "logs", tmp_path / "s.sqlite"
    write(logdir, WRITTEN)
    assert cli(["import-tb", str(logdir), "--store", str(store_path)]) == 0
    store = Store(store_path)
    (sweep,) = store.sweeps()
    assert (sweep.preset, sweep.problem, sweep.status) == ("logs", "tensorboard", "done")
    got = stored(store, sweep.id)
    assert got.keys() == WRITTEN.keys()
    for name, steps in WRITTEN.items():
        assert got[name].keys() == steps.keys()
        for step, tags in steps.items():
            assert got[name][step] == pytest.approx(tags, rel=1e-6)  # float32 on disk
    assert sweep.options == {"metric": "Accuracy/val", "mode": "max"}  # a validation tag
    runs = {r.config["run"]: r for r in store.runs(sweep.id)}
    assert runs["lr0.1"].final["Accuracy/val"] == pytest.approx(1.0)
    assert runs["lr0.1"].best["Loss/train"] == pytest.approx(1 / 6)
    assert "2 runs" in capsys.readouterr().out

    # again, once the logs grew: only the new steps are added, nothing twice
    more = {"lr0.1": {s: {"Loss/train": 0.1, "Accuracy/val": 0.99} for s in range(6, 9)}}
    write(logdir, more)
    assert cli(["import-tb", str(logdir), "--store", str(store_path)]) == 0
    got = stored(Store(store_path), sweep.id)
    assert sorted(got["lr0.1"]) == list(range(9)) and len(got["deep/lr0.01"]) == 4
    (run,) = [r for r in Store(store_path).runs(sweep.id) if r.config["run"] == "lr0.1"]
    assert run.final["Accuracy/val"] == pytest.approx(0.99) and run.status == "finished"


def test_follow_reads_the_logs_as_they_grow_and_ends_on_ctrl_c(tmp_path):
    logdir, store_path = tmp_path / "logs", tmp_path / "s.sqlite"
    writer = SummaryWriter(str(logdir / "run"), flush_secs=1)
    writer.add_scalar("val_loss", 1.0, 0)
    writer.flush()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypertui", "import-tb", str(logdir), "--follow",
         "--store", str(store_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip

    def steps() -> list[int]:
        if not store_path.exists():
            return []
        store = Store(store_path)
        return [
            p["step"] for s in store.sweeps() for r in store.runs(s.id) for p in store.points(r.id)
        ]

    for step in range(1, 5):
        writer.add_scalar("val_loss", 1.0 / (step + 1), step)
        writer.flush()
        deadline = time.monotonic() + 60
        while step - 1 not in steps():  # the newest step waits for the next one
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        store = Store(store_path)
        (run,) = store.runs(store.sweeps()[0].id)
        assert run.status == "running"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    writer.close()
    store = Store(store_path)
    (run,) = store.runs(store.sweeps()[0].id)
    assert run.status == "finished" and steps() == [0, 1, 2, 3, 4]
    assert run.final["val_loss"] == pytest.approx(0.2)


def test_a_damaged_file_a_missing_folder_and_a_missing_reader_are_one_line(
    tmp_path, capsys, monkeypatch
):
    logdir, store_path = tmp_path / "logs", tmp_path / "s.sqlite"
    write(logdir, {"good": WRITTEN["lr0.1"]})
    (logdir / "bad").mkdir()
    (logdir / "bad" / "events.out.tfevents.1.host").write_bytes(b"\x00garbage" * 50)
    assert cli(["import-tb", str(logdir), "--store", str(store_path)]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    store = Store(store_path)
    runs = {r.config["run"]: r for r in store.runs(store.sweeps()[0].id)}
    assert len(store.points(runs["good"].id)) == 6

    assert cli(["import-tb", str(tmp_path / "nowhere"), "--store", str(store_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli(["import-tb", str(tmp_path / "empty"), "--store", str(store_path)]) == 2
    assert "no TensorBoard event files" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_file_loader", None)
    assert cli(["import-tb", str(logdir), "--store", str(store_path)]) == 2
    assert "pip install 'hypertui[tensorboard]'" in capsys.readouterr().err
