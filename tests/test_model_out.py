"""The model out of a run: `hypertui export-model`, `hypertui predict`, `hypertui.load_model`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import hypertui
from hypertui.engine.core.errors import HypertuiError
from hypertui.engine.core.paths import checkpoints_dir
from hypertui.engine.data.splits import FRACTIONS
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep
from hypertui.tui.cli.main import main
from tests.test_own_data import write_table

PRESET = """
description = "table"
[config]
problem = "table"
path = "{path}"
target = "{target}"
features = ["a", "b", "color"]
optimizer = "adam"
epochs = 12
hidden = [16]
batch_size = 16
patience = 4
keep = "{keep}"
[sweep]
lr = [0.01]
"""


def trained(tmp_path, target="y", keep="best", population=False):
    path = tmp_path / "t.csv"
    write_table(path)
    store = Store(tmp_path / "s.sqlite")
    text = PRESET.format(path=path, target=target, keep=keep)
    if population:  # two trials: one population of two members
        text = text.replace("lr = [0.01]", "lr = [0.01, 0.003]")
    sweep_id = create_sweep(store, parse_preset(text, "t.toml"))
    list(run_sweep(store, sweep_id, population=population))
    run = store.runs(sweep_id)[0]
    assert run.status == "finished"
    return store, run, path


def test_rows(path, target):
    """The table's test split, as loading drew it (seed 0, rows with a target)."""
    frame = pd.read_csv(path).dropna(subset=[target]).reset_index(drop=True)
    n = len(frame)
    order = np.random.default_rng(0).permutation(n)
    n_train, n_val = int(FRACTIONS[0] * n), int(FRACTIONS[1] * n)
    return frame.iloc[order[n_train + n_val :]]


test_rows.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("population", [False, True])
def test_predict_on_the_test_split_gives_the_runs_test_metric(tmp_path, capsys, population):
    """A run alone or a population member: its best weights out, as tested."""
    store, run, path = trained(tmp_path, population=population)
    held_out = tmp_path / "held-out.csv"
    test_rows(path, "y").to_csv(held_out, index=False)
    out = tmp_path / "preds.csv"
    code = main(["predict", run.id, str(held_out), "--out", str(out), "--store", str(store.path)])
    assert code == 0
    preds = pd.read_csv(out)
    mse = float(np.mean((preds["prediction"] - preds["y"]) ** 2))
    assert mse == pytest.approx(run.test["test_mse"], rel=1e-4)  # the best epoch's weights
    assert f"wrote {len(preds)} predictions" in capsys.readouterr().out


def test_export_model_writes_weights_and_a_json_and_load_model_gives_the_module(tmp_path):
    store, run, _ = trained(tmp_path)
    out = tmp_path / "exported" / "house-model"
    assert main(["export-model", run.id, "--out", str(out), "--store", str(store.path)]) == 0
    weights = tmp_path / "exported" / "house-model.safetensors"
    info = json.loads((tmp_path / "exported" / "house-model.json").read_text())
    assert info["run"] == run.id and info["epoch"] == run.best_epoch
    assert [c["name"] for c in info["preprocessing"]["inputs"]] == ["a", "b", "color"]
    assert info["preprocessing"]["inputs"][2]["categories"] == ["blue", "green", "missing", "red"]
    from safetensors.torch import load_file

    model = hypertui.load_model(run.id, store=store.path)
    assert isinstance(model, torch.nn.Module) and not model.training
    saved = load_file(weights)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_a_classifier_predicts_classes_and_new_categories_are_said(tmp_path, capsys):
    store, run, path = trained(tmp_path, target="kind")
    rows = test_rows(path, "kind").copy()
    rows.iloc[0, rows.columns.get_loc("color")] = "purple"  # a category training never saw
    rows.iloc[1, rows.columns.get_loc("b")] = np.nan
    new = tmp_path / "new.csv"
    rows.to_csv(new, index=False)
    out = tmp_path / "p.csv"
    assert main(["predict", run.id, str(new), "--out", str(out), "--store", str(store.path)]) == 0
    said = capsys.readouterr().out
    assert "1 values of 'color' are categories training never saw" in said
    assert "1 missing numbers imputed" in said and "accuracy" in said
    preds = pd.read_csv(out)
    assert set(preds["prediction"]) <= {"hi", "lo"} and {"p(hi)", "p(lo)"} <= set(preds.columns)


def test_bad_input_is_one_line(tmp_path, capsys):
    store, run, path = trained(tmp_path, keep="none")
    s = ["--store", str(store.path)]
    assert main(["export-model", run.id, *s]) != 0
    assert "kept no weights (its config says keep = 'none')" in capsys.readouterr().err
    (tmp_path / "2").mkdir()
    store, run, path = trained(tmp_path / "2")
    s = ["--store", str(store.path)]
    lacking = tmp_path / "lacking.csv"
    pd.read_csv(path).drop(columns=["color"]).to_csv(lacking, index=False)
    assert main(["predict", run.id, str(lacking), "--out", str(tmp_path / "o.csv"), *s]) != 0
    err = capsys.readouterr().err
    assert "no column 'color' (the model's inputs)" in err and "Traceback" not in err
    assert main(["predict", run.id, str(tmp_path / "nope.csv"), "--out", "o.csv", *s]) != 0
    assert "Traceback" not in capsys.readouterr().err
    (checkpoints_dir(run.sweep_id, run.id) / "best.safetensors").write_bytes(b"garbage")
    assert main(["export-model", run.id, *s]) != 0
    err = capsys.readouterr().err
    assert "unreadable checkpoint" in err and "Traceback" not in err
    with pytest.raises(HypertuiError, match="kept no weights|unreadable"):
        hypertui.load_model(run.id, store=store.path)
