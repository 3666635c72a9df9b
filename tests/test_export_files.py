"""Export files: where they go, what mode they get, how they number trials."""

from __future__ import annotations

import csv
import os
import stat

from hypertui.engine.analysis.export import write_atomic
from hypertui.engine.core.paths import export_path, exports_dir


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_get_the_umask_mode_and_keep_an_existing_files_mode(tmp_path):
    old = os.umask(0o022)
    try:
        new = write_atomic(tmp_path / "a.csv", "x\n")
        assert mode(new) == 0o644  # as open() would make it, not mkstemp's 0600
        (tmp_path / "b.csv").write_text("old")
        os.chmod(tmp_path / "b.csv", 0o640)
        assert mode(write_atomic(tmp_path / "b.csv", "new\n")) == 0o640
    finally:
        os.umask(old)


def test_no_preset_name_takes_an_export_out_of_the_exports_folder():
    for name in ("../../../../tmp/x/pwn", "/etc/passwd", "..", "a/b", "[/red]x", "\x1b[2J"):
        path = export_path(name, "5eed0001", "runs", "csv")
        assert path.parent == exports_dir() and path.name.endswith("-5eed0001-runs.csv")
        assert not path.name.startswith(".")


def test_exported_trials_are_numbered_from_1_in_run_order(tmp_path, capsys):
    from hypertui.engine.store.store import Store
    from hypertui.tui.cli.main import main
    from tests.fakes import make_sweep

    store_path = tmp_path / "runs.sqlite"
    make_sweep(Store(store_path))  # 12 trials: lr x activation x seed, in that order
    out = tmp_path / "runs.csv"
    assert main(["--store", str(store_path), "export", "--out", str(out)]) == 0
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["trial"]) for r in rows] == list(range(1, 13))
    assert [r["run_id"] for r in rows] == [f"0001r{i:03d}" for i in range(12)]
    assert [(r["lr"], r["activation"], r["seed"]) for r in rows[:3]] == [
        ("0.1", "relu", "0"), ("0.1", "relu", "1"), ("0.1", "tanh", "0"),
    ]  # fmt: skip
    capsys.readouterr()
    assert main(["--store", str(store_path), "show", rows[4]["run_id"]]) == 0
    assert f"run {rows[4]['run_id']} — trial 5 of sweep" in capsys.readouterr().out


def test_curves_export_round_trips_through_pandas_and_json_outputs_parse(tmp_path, capsys):
    import json

    import pandas as pd

    from hypertui.engine.store.store import Store
    from hypertui.engine.sweeps.presets import parse_preset
    from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
    from hypertui.tui.cli.main import main

    store = Store(tmp_path / "s.sqlite")
    text = 'description = "c"\n[config]\nproblem = "house"\nhidden = [4]\nepochs = 3\n'
    sweep_id = create_sweep(store, parse_preset(text + "[sweep]\nlr = [0.01, 0.1]\n", "c.toml"))
    list(run_sweep(store, sweep_id))
    s = ["--store", str(store.path)]
    out = tmp_path / "curves.csv"
    assert main(["export", sweep_id, "--curves", "--out", str(out), *s]) == 0
    frame = pd.read_csv(out)
    runs = store.runs(sweep_id)
    assert len(frame) == sum(len(store.points(r.id)) for r in runs) == 6
    assert list(frame.columns[:5]) == ["sweep_id", "run_id", "trial", "lr", "seed"]
    first = store.points(runs[0].id)[0]
    row = frame[frame.run_id == runs[0].id].iloc[0]
    assert row.epoch == first["epoch"] and row.val_mse == first["val_mse"]  # exact, not rounded
    assert sorted(frame.lr.unique()) == [0.01, 0.1]
    assert "seq" not in frame.columns and {"val_loss", "val_mse"} <= set(frame.columns)
    assert main(["export", sweep_id, "--curves", "--grouped", *s]) == 2
    assert "not with --grouped" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["runs", "--json", *s]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == sweep_id
    assert main(["runs", sweep_id, "--json", *s]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [r.id for r in runs] and rows[0]["test"]
    assert main(["show", runs[0].id, "--json", *s]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == runs[0].id and [p["epoch"] for p in shown["points"]] == [1, 2, 3]


def test_a_sweep_is_tagged_noted_and_named_and_runs_filters_by_tag(tmp_path, capsys):
    from hypertui.engine.store.store import Store
    from hypertui.tui.cli.main import main
    from tests.fakes import make_sweep

    store = Store(tmp_path / "s.sqlite")
    first, second = make_sweep(store), make_sweep(store, "5eed0002")
    s = ["--store", str(store.path)]
    assert main(["tag", first, "baseline", "lr:1e-3", "--note", "40 epochs", *s]) == 0
    assert "#baseline #lr:1e-3" in capsys.readouterr().out
    assert main(["tag", first, "--remove", "lr:1e-3", "--name", "long run", *s]) == 0
    sweep = store.sweep(first)
    assert (sweep.tags, sweep.note, sweep.title) == (["baseline"], "40 epochs", "long run")
    capsys.readouterr()
    assert main(["runs", "--tag", "baseline", *s]) == 0
    out = capsys.readouterr().out
    assert first in out and second not in out and "long run" in out and "baseline" in out
    for bad in (
        ["bad tag!"],
        ["--note", "a\x1b[2Jb"],
        ["--name", "x" * 65],
        ["--note", "\x9b2J"],
        ["--name", "ab\u202ecd"],
    ):  # C1 CSI, a bidi override
        assert main(["tag", second, *bad, *s]) == 2
        assert "Traceback" not in capsys.readouterr().err
    assert store.sweep(second).tags == [] and store.sweep(second).note == ""  # nothing half
    assert main(["tag", first, "--note", "", "--name", "", *s]) == 0
    assert store.sweep(first).title == store.sweep(first).preset and not store.sweep(first).note


def test_two_sweeps_compare_in_one_table_and_other_metrics_are_refused(tmp_path, capsys):
    from hypertui.engine.analysis.compare import compare_sweeps
    from hypertui.engine.store.store import Store
    from hypertui.tui.cli.main import main
    from tests.fakes import make_sweep

    store = Store(tmp_path / "s.sqlite")
    a, b = make_sweep(store), make_sweep(store, "5eed0002")
    store.label(b, name="the other")
    s = ["--store", str(store.path)]
    assert main(["compare", a, b, "--all", *s]) == 0
    out = capsys.readouterr().out
    assert "the other" in out and f"compared: {a}" in out
    sweeps = [(store.sweep(i), store.runs(i)) for i in (a, b)]
    comp, runs = compare_sweeps(sweeps)
    assert comp.swept[0] == "sweep" and len(runs) == sum(len(r) for _, r in sweeps)
    per_sweep = len(comp.groups) // 2
    assert {g.point["sweep"] for g in comp.groups} == {store.sweep(a).title, "the other"}
    assert per_sweep >= 2 and len(comp.groups) == 2 * per_sweep
    mnist = make_sweep(store, "5eed0003")
    store.db.execute("UPDATE sweeps SET problem='mnist' WHERE id=?", (mnist,))
    store.db.commit()
    assert main(["compare", a, mnist, *s]) == 2
    err = capsys.readouterr().err
    assert "rank by different metrics" in err and "Traceback" not in err
    assert main(["compare", a, *s]) == 2
