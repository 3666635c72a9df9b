"""The headless CLI: exit codes, --json, export, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hypertui.engine.core.events import Failed, Progress
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.sweep import SweepEvent
from hypertui.tui.cli.headless import json_line
from hypertui.tui.cli.main import main
from tests.fakes import stored_epochs

TINY = """
description = "tiny CLI sweep"
seeds = 2
[config]
problem = "house"
hidden = [4]
batch_size = 256
epochs = 2
[sweep]
activation = ["relu", "tanh"]
"""


@pytest.fixture
def preset_file(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def start_run(preset: Path, store_path: Path, *more: str, **popen) -> subprocess.Popen:
    """`hypertui run PRESET --json --store STORE` as a process of its own (the tests that
    signal or kill it), its JSON lines on stdout."""
    command = ["run", str(preset), "--json", "--store", str(store_path), *more]
    return subprocess.Popen([sys.executable, "-m", "hypertui", *command], **popen)


def hypertui(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hypertui", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_version_and_help():
    done = hypertui("--version")
    assert done.returncode == 0 and done.stdout.startswith("hypertui ")
    done = hypertui("--help")
    assert done.returncode == 0
    for command in ("presets", "run", "runs", "show", "export"):
        assert command in done.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "quickstrat"], "no preset named 'quickstrat' (did you mean 'quickstart'?)"),
        (
            ["run", "quickstart", "--set", "lrr=0.1"],
            "unknown config key 'lrr' (did you mean 'lr'?)",
        ),
        (["run", "quickstart", "--set", "lr=-1"], "lr = -1.0 is not allowed"),
        (["run", "quickstart", "--set", "lr"], "expected KEY=VALUE"),
        (["run", "quickstart", "--seeds", "0"], "--seeds 0: must be at least 1"),
        (["run", "quickstart", "--device", "tpu"], "device = 'tpu' is not allowed"),
        (["run", "--resume", "nosuchid"], "no sweep 'nosuchid'"),
        (["run"], "name a preset"),
        (["show", "nosuchrun"], "no run store at"),
        (["export"], "no run store at"),
        (["run", "quickstart", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(args, fragment, tmp_path, capsys):
    try:
        code = main(["--store", str(tmp_path / "s.sqlite"), *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_json_prints_one_object_per_line_and_nothing_else(preset_file, tmp_path, capsys):
    assert main(["run", str(preset_file), "--json", "--store", str(tmp_path / "s.sqlite")]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    kinds = [r["event"] for r in records]
    assert kinds[0] == "started" and kinds[-1] == "summary"
    assert kinds.count("started") == kinds.count("finished") == 4
    assert kinds.count("progress") == 8
    sweep_ids = {r["sweep_id"] for r in records}
    assert len(sweep_ids) == 1
    assert all(r["run_id"] for r in records[:-1])
    summary = records[-1]
    assert summary["status"] == "done" and summary["counts"] == {"finished": 4}
    assert sorted(g["point"]["activation"] for g in summary["ranking"]) == ["relu", "tanh"]


def test_json_lines_stay_strict_json_when_a_run_diverges():
    nan = float("nan")
    event = Progress("r1", 1, 5, 50, 0.1, float("inf"), {"val_mse": nan, "val_n": 3})
    line = json_line(SweepEvent("s1", 0, 1, event))

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    record = json.loads(line, parse_constant=refuse)
    assert record["train_loss"] is None and record["metrics"] == {"val_mse": None, "val_n": 3}
    ok = json.loads(json_line(SweepEvent("s1", 0, 1, Failed("r1", "NaN in the data"))))
    assert ok["reason"] == "NaN in the data"


def test_run_prints_a_comparison_then_export_writes_csv_pandas_reads(preset_file, tmp_path, capsys):
    store = str(tmp_path / "s.sqlite")
    assert main(["run", str(preset_file), "--store", store]) == 0
    out = capsys.readouterr().out
    assert "val_mse" in out and "relu" in out and "tanh" in out
    csv_path = tmp_path / "runs.csv"
    assert main(["export", "--out", str(csv_path), "--store", store]) == 0
    df = pd.read_csv(csv_path)
    assert len(df) == 4 and {"run_id", "val_mse", "test_mse", "hidden"} <= set(df.columns)
    md = tmp_path / "table.md"
    assert main(["export", "--grouped", "--format", "md", "--out", str(md), "--store", store]) == 0
    assert md.read_text().startswith("| rank | activation |")
    assert main(["runs", "--store", store]) == 0
    run_id = df.run_id.iloc[0]
    assert main(["show", run_id, "--store", store]) == 0
    shown = capsys.readouterr().out
    assert run_id in shown and "val_mse" in shown and "curve points" in shown


def test_a_failed_trial_exits_1_and_the_others_still_train(tmp_path, monkeypatch, capsys):
    # A user's model that raises mid-training: its trial fails with its own reason, the
    # other trials train, and a script can tell from the exit status that something failed.
    (tmp_path / "flaky_model.py").write_text(
        "import torch\n"
        "class Flaky(torch.nn.Linear):\n"
        "    calls = 0\n"
        "    def forward(self, x):\n"
        "        self.calls += 1\n"
        "        if self.calls > 3:  # past hypertui's shape check: mid-training\n"
        "            raise RuntimeError('my layer broke')\n"
        "        return super().forward(x)\n"
        "def build(config, input_shape, n_outputs):\n"
        "    cls = Flaky if config.lr > 0.05 else torch.nn.Linear\n"
        "    return cls(input_shape[0], n_outputs)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    preset = tmp_path / "flaky.toml"
    preset.write_text(
        'description = "one failing point"\n[config]\nmodel = "flaky_model:build"\n'
        "epochs = 1\nbatch_size = 256\n[sweep]\nlr = [0.01, 0.1]\n"
    )
    store_path = tmp_path / "s.sqlite"
    assert main(["run", str(preset), "--json", "--store", str(store_path)]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    ended = {e["trial"]: e for e in lines if e["event"] in ("finished", "failed")}
    assert ended[1]["status"] == "finished"
    assert ended[2]["event"] == "failed" and "my layer broke" in ended[2]["reason"]
    runs = Store(store_path).runs(Store(store_path).sweeps()[0].id)
    assert [r.status for r in runs] == ["finished", "failed"]


@pytest.mark.slow
def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path):
    store_path = tmp_path / "s.sqlite"
    preset = tmp_path / "slow.toml"
    text = TINY.replace("epochs = 2", "epochs = 300").replace("seeds = 2", "seeds = 3")
    preset.write_text(text.replace('activation = ["relu", "tanh"]', "batch_size = [256, 128]"))
    proc = start_run(
        preset,
        store_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first = []
    for line in proc.stdout:  # batch-256 trials 0-2 train as one population, then 3-5
        first.append(json.loads(line))
        finished = [r for r in first if r["event"] == "finished"]
        if len(finished) == 3 and first[-1]["event"] == "progress":
            break  # killed inside the second population, after a curve point was written
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    sweep_id = first[0]["sweep_id"]

    store = Store(store_path)
    assert store.sweep(sweep_id).status == "interrupted"
    assert [r.status for r in store.runs(sweep_id)] == ["finished"] * 3 + ["running"] * 3

    done = hypertui("run", "--resume", sweep_id, "--json", "--store", str(store_path))
    assert done.returncode == 0, done.stderr
    second = [json.loads(line) for line in done.stdout.splitlines()]
    finished_ids = [r["run_id"] for r in first + second if r["event"] == "finished"]
    runs = store.runs(sweep_id)
    assert sorted(finished_ids) == sorted(r.id for r in runs)  # each exactly once
    assert {r["trial"] for r in second if r["event"] == "started"} == {4, 5, 6}
    assert all(r.status == "finished" for r in runs) and store.sweep(sweep_id).status == "done"
    for r in runs:
        assert stored_epochs(store, r.id) == list(range(1, 301))


@pytest.mark.slow
def test_ctrl_c_marks_the_trial_and_prints_how_to_resume(tmp_path):
    preset = tmp_path / "slow.toml"
    text = TINY.replace("epochs = 2", "epochs = 5000")  # interrupted long before its end
    preset.write_text(text.replace('activation = ["relu", "tanh"]', "batch_size = [256, 128]"))
    store_path = tmp_path / "s.sqlite"
    proc = start_run(
        preset,
        store_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a test runner started in the background (`&` in
        # a script) ignores SIGINT, and a child would inherit that and train to the end.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    sweep_id = json.loads(proc.stdout.readline())["sweep_id"]
    proc.stdout.readline()  # a progress line: training is under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"hypertui run --resume {sweep_id}" in err and "Traceback" not in err
    store = Store(store_path)
    # batch-256 trials 0 and 1 train as one population: both were interrupted
    assert [r.status for r in store.runs(sweep_id)] == [
        "cancelled",
        "cancelled",
        "pending",
        "pending",
    ]
    assert store.sweep(sweep_id).status == "interrupted"


@pytest.mark.slow
def test_sigterm_cancels_gracefully_and_sigusr_signals_pause_and_skip(tmp_path):
    preset = tmp_path / "slow.toml"
    preset.write_text(TINY.replace("epochs = 2", "epochs = 300"))
    store_path = tmp_path / "s.sqlite"
    proc = start_run(
        preset,
        store_path,
        "--no-population",  # one by one, so that a skip ends exactly one trial
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sweep_id = json.loads(proc.stdout.readline())["sweep_id"]
    proc.stdout.readline()
    proc.send_signal(signal.SIGUSR2)  # skip trial 0
    while (record := json.loads(proc.stdout.readline()))["event"] != "finished":
        pass
    assert record["trial"] == 1 and record["status"] == "cancelled"
    proc.stdout.readline()  # trial 1 started
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    records = [json.loads(line) for line in out.splitlines()]
    assert records[-1]["event"] == "summary" and records[-1]["status"] == "cancelled"
    assert proc.returncode == 130 and f"--resume {sweep_id}" in err
    store = Store(store_path)
    statuses = [r.status for r in store.runs(sweep_id)]
    assert statuses == ["cancelled", "cancelled", "pending", "pending"]
    assert store.runs(sweep_id)[0].reason == "skipped"


def test_runs_names_what_the_sweep_changed_from_its_preset(tmp_path, capsys):
    # The description is the preset's ("200 epochs"): the changes must stand beside it.
    from tests.fakes import make_sweep

    store = Store(tmp_path / "s.sqlite")
    sweep_id = make_sweep(store)
    store.set_options(sweep_id, {"overrides": "epochs=40 seeds=3"})
    store.close()
    assert main(["runs", sweep_id, "--store", str(tmp_path / "s.sqlite")]) == 0
    head = capsys.readouterr().out.splitlines()[:2]
    assert "changed from the preset: epochs=40 seeds=3" in "\n".join(head)
