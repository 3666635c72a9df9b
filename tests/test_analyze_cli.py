"""`hypertui analyze` and the vs-best column of the CLI comparison."""

from __future__ import annotations

import json

from hypertui.engine.store.store import Store
from hypertui.tui.cli.main import main
from tests.fakes import make_sweep


def test_analyze_prints_importance_slices_and_top(tmp_path, capsys):
    store_path = tmp_path / "runs.sqlite"
    make_sweep(Store(store_path))
    assert main(["--store", str(store_path), "analyze", "5eed"]) == 0
    out = capsys.readouterr().out
    assert "exact variance decomposition of a complete grid: 6 cells, 12 runs" in out
    assert "4 diverged counted at the worst value" in out
    assert "lr (log)" in out and "95% CI over seeds" in out and "seeds" in out


def test_analyze_json_is_strict_json(tmp_path, capsys):
    store_path = tmp_path / "runs.sqlite"
    make_sweep(Store(store_path))
    assert main(["--store", str(store_path), "analyze", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # no NaN tokens: strict parsers accept it
    assert doc["method"] == "grid" and doc["metric"] == "val_mse"
    assert abs(sum(s["share"] for s in doc["importance"]) - 1) < 1e-9
    assert doc["versus_best"][0]["test"] == "best"


def test_analyze_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    store_path = tmp_path / "runs.sqlite"
    make_sweep(Store(store_path))
    assert main(["--store", str(store_path), "analyze", "nope"]) == 2
    assert main(["--store", str(store_path), "analyze", "--metric", "val_acc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("hypertui: ") for line in err)


def test_runs_shows_which_rows_tie_with_the_best(tmp_path, capsys):
    store_path = tmp_path / "runs.sqlite"
    make_sweep(Store(store_path))
    assert main(["--store", str(store_path), "runs", "5eed0001"]) == 0
    out = capsys.readouterr().out
    assert "vs#1" in out and "tied with #1" in out
