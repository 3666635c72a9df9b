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
