"""Your own data and model: tables (CSV), image folders and standard image sets, a model
from your own module, and a clear message for each kind of bad input."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from hypertui.engine.core.config import parse_value
from hypertui.engine.core.errors import ConfigError, HypertuiError
from hypertui.engine.core.events import Finished, RunStarted
from hypertui.engine.core.grouping import population_key
from hypertui.engine.data.dataset import SPLIT_SEED
from hypertui.engine.data.load import load_dataset
from hypertui.engine.data.mnist import write_idx
from hypertui.engine.data.sources import checked_config
from hypertui.engine.sweeps.presets import parse_preset, preset_to_toml
from hypertui.engine.training.population import run_population
from hypertui.engine.training.stacked import Member
from hypertui.engine.training.train import run
from tests.fakes import epoch_curve, write_image_folder

CPU = torch.device("cpu")


def write_table(path, n=300, seed=0):
    """y = 3a + 0.2b + 2[red] + 100 (+ small noise), a class 'kind', a few holes."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n) * 10 + 5,
            "color": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    df["y"] = 3 * df.a + 0.2 * df.b + 2 * (df.color == "red") + rng.normal(size=n) * 0.1 + 100
    df["kind"] = np.where(df.a + 0.1 * df.b > 0.5, "hi", "lo")
    df["grade"] = np.clip((df.a * 2).round(), -2, 2).astype(int)  # 5 whole numbers
    df.loc[3, "a"] = np.nan
    df.loc[5, "color"] = None
    df.loc[7, "y"] = np.nan
    df.to_csv(path, index=False)
    return df


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "t.csv"
    write_table(path)
    return path


def table_config(path, **more):
    values = {"problem": "table", "path": str(path), "optimizer": "adam", "lr": 0.01}
    return checked_config({**values, "epochs": 15, **more})


# -- tables ----------------------------------------------------------------------------------


def test_regression_table_infers_the_task_and_reports_metrics_in_the_targets_units(table):
    config = table_config(table, target="y", features=["a", "b", "color"])
    assert config.task == "regression" and config.loss == "mse" and config.main_metric == "val_mse"
    events = list(run(config))
    notes = " | ".join(events[0].notes)
    assert "task = regression (inferred" in notes
    assert "dropped 1 of 300 rows with no target" in notes
    assert "imputed 1 missing numbers" in notes and "1 missing text values" in notes
    assert "split 70/15/15 with seed 0" in notes
    done = events[-1]
    assert done.status == "finished"
    data = load_dataset(config, CPU)
    truth = data.val.y.flatten() * data.target_std + data.target_mean
    # predictions come back in the target's units (around 100, not around 0)...
    pred = torch.tensor(done.analysis["pred"])
    assert abs(pred.mean().item() - truth.mean().item()) < 1.0
    # ...and so does the MSE, which beats predicting the training mean by far
    assert done.final["val_mse"] == pytest.approx(((pred - truth) ** 2).mean().item(), rel=0.02)
    assert done.final["val_mse"] < 0.1 * ((truth - data.target_mean) ** 2).mean().item()


def test_standardising_uses_the_training_split_only(table):
    config = table_config(table, target="y", features=["a", "b"])
    data = load_dataset(config, CPU)
    x = data.train.x
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    assert abs(data.val.x[:, 1].mean().item()) > 1e-3  # val is scaled with train statistics
    assert data.train.y.mean().abs().item() < 1e-5  # the target too


def test_gaussian_table_reports_nll_and_variance(table):
    config = table_config(table, target="y", loss="gaussian_nll")
    done = list(run(config))[-1]
    assert {"val_nll", "val_var", "val_mse"} <= set(done.final)
    assert len(done.analysis["var"]) == len(done.analysis["pred"])


def test_classification_table_beats_the_majority_class_with_a_confusion_matrix(table):
    config = table_config(table, target="kind", features=["a", "b"])
    assert config.task == "classification" and config.loss == "cross_entropy"
    events = list(run(config))
    assert "2 classes: hi, lo" in " | ".join(events[0].notes)
    done = events[-1]
    data = load_dataset(config, CPU)
    majority = torch.bincount(data.test.y).max().item() / len(data.test)
    assert done.test["test_acc"] > majority + 0.2
    confusion = np.array(done.analysis["confusion"])
    assert confusion.shape == (2, 2) and confusion.sum() == len(data.val)
    assert done.analysis["classes"] == ["hi", "lo"]  # row i of the matrix is class i


def test_few_whole_numbers_are_inferred_as_classes_and_the_task_can_be_set(table):
    assert table_config(table, target="grade").task == "classification"
    forced = table_config(table, target="grade", task="regression")
    assert forced.task == "regression" and forced.loss == "mse"
    notes = list(run(forced.replace(epochs=1)))[0].notes
    assert "task = regression (set in the config)" in notes


@pytest.mark.parametrize("target", ["y", "kind"])
def test_a_table_population_trains_like_the_house_one(table, target):
    config = table_config(table, target=target, epochs=3)
    assert population_key(config) is not None
    members = [Member(f"m{i}", config.replace(lr=lr)) for i, lr in enumerate((0.01, 0.001))]
    events = list(run_population(members))
    done = [e for e in events if isinstance(e, Finished)]
    single = list(run(members[0].config))[-1]
    assert [d.status for d in done] == ["finished", "finished"]
    main = config.main_metric  # val_mse in the target's units, or val_acc
    assert done[0].final[main] == pytest.approx(single.final[main], rel=1e-3)
    assert done[0].analysis.keys() == single.analysis.keys()


def test_a_classification_populations_best_epoch_is_its_highest_accuracy_as_alone(table):
    """Accuracy ranks classification runs, higher is better: with high learning rates the
    curve goes up and down, and each member's best is its most accurate epoch (the first of
    equals), as its single run reports it."""
    epochs = 8
    base = table_config(table, target="kind", epochs=epochs, batch_size=16)
    configs = [
        base.replace(optimizer=o, lr=lr, seed=seed)
        for o, lr, seed in (("adam", 0.05, 1), ("rmsprop", 0.03, 3), ("adam", 0.2, 0))
    ]
    events = list(run_population([Member(f"m{i}", c) for i, c in enumerate(configs)]))
    done = [e for e in events if isinstance(e, Finished)]
    for k, config in enumerate(configs):
        curve = epoch_curve(events, f"m{k}")
        highest = max(range(epochs), key=lambda e: curve[e]["val_acc"])  # the first of equals
        assert done[k].best_epoch == highest + 1 and done[k].best == curve[highest]
        single = list(run(config))[-1]
        assert (done[k].best_epoch, done[k].best["val_acc"]) == (
            single.best_epoch,
            single.best["val_acc"],
        )
    # the setup's point: some best is neither the first epoch nor the last
    assert any(1 < d.best_epoch < epochs for d in done)


def test_missing_numbers_are_imputed_with_the_training_splits_median(tmp_path):
    """Imputing with a median taken over every row would leak validation and test values
    into training: on a skewed column the two medians differ, and the imputed cells (in
    the training and the validation split alike) must hold the training split's."""
    n = 40
    row = np.arange(n, dtype=float)
    a = row**3  # skewed: a subset's median moves with which rows it holds
    holes = row % 4 == 1
    frame = pd.DataFrame({"row": row, "a": np.where(holes, np.nan, a), "y": row * 0.5})
    frame.to_csv(tmp_path / "holes.csv", index=False)
    config = table_config(tmp_path / "holes.csv", target="y", features=["row", "a"])
    data = load_dataset(config, CPU)
    assert f"imputed {holes.sum()} missing numbers" in " | ".join(data.notes)

    def raw(split) -> tuple[np.ndarray, np.ndarray]:  # back to the table's units
        x = split.x.double().numpy() * np.array(data.feature_std) + np.array(data.feature_mean)
        return np.rint(x[:, 0]).astype(int), x[:, 1]

    train_rows, _ = raw(data.train)
    train_median = np.nanmedian(np.where(holes, np.nan, a)[train_rows])
    assert abs(train_median - np.nanmedian(np.where(holes, np.nan, a))) > 100  # they differ
    for split in (data.train, data.val, data.test):
        rows, values = raw(split)
        # float32 tensors: cells of up to 4e4 come back within a few thousandths
        np.testing.assert_allclose(values[holes[rows]], train_median, atol=0.05)
        np.testing.assert_allclose(values[~holes[rows]], a[rows][~holes[rows]], atol=0.05)
    assert holes[train_rows].any() and holes[raw(data.val)[0]].any()  # both splits have holes


def test_one_hot_categories_are_taken_from_the_training_split_only(tmp_path):
    """A category that only validation or test rows hold must not shape the inputs (its
    column was made from all rows): it adds no column, and its rows encode as all zeros."""
    n = 100
    order = np.random.default_rng(SPLIT_SEED).permutation(n)  # the split: 70/15/15
    color = np.array(["red", "blue"] * (n // 2), dtype=object)
    color[order[70:75]] = "purple"  # the first five rows of the validation split
    frame = pd.DataFrame({"a": np.arange(n, dtype=float), "color": color, "y": np.arange(n)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = load_dataset(table_config(tmp_path / "t.csv", target="y", task="regression"), CPU)
    assert data.feature_names == ("a", "color=blue", "color=red")
    assert torch.all(data.val.x[:5, 1:] == 0) and torch.all(data.val.x[5:, 1:].sum(1) == 1)
    assert "5 values of 'color' outside the training split" in " | ".join(data.notes)


def test_a_parquet_file_is_read_or_refused_with_a_clear_message(tmp_path, table):
    path = tmp_path / "t.parquet"
    try:
        pd.read_csv(table).to_parquet(path)
    except ImportError:
        path.write_bytes(b"PAR1")  # no Parquet engine here: the message must say so
        with pytest.raises(ConfigError, match="pyarrow"):
            table_config(path, target="y")
        return
    assert table_config(path, target="y").task == "regression"


# -- bad input -------------------------------------------------------------------------------


def test_bad_tables_get_one_clear_message(tmp_path, table):
    with pytest.raises(ConfigError, match="no such file"):
        table_config(tmp_path / "missing.csv", target="y")
    with pytest.raises(ConfigError, match=r"target = 'kinds' is not a column.*did you mean 'kind'"):
        table_config(table, target="kinds")
    with pytest.raises(ConfigError, match="needs target"):
        table_config(table)
    with pytest.raises(ConfigError, match="'zzz' is not a column"):
        table_config(table, target="y", features=["a", "zzz"])
    one = tmp_path / "one.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a"] * 4}).to_csv(one, index=False)
    with pytest.raises(ConfigError, match="holds one value"):
        table_config(one, target="c")
    ids = tmp_path / "ids.csv"
    pd.DataFrame({"name": [f"p{i}" for i in range(500)], "y": np.arange(500.0)}).to_csv(
        ids, index=False
    )
    with pytest.raises(ConfigError, match="'name' is text with 500 distinct values"):
        table_config(ids, target="y")
    with pytest.raises(ConfigError, match="holds text, so it cannot be a regression target"):
        table_config(table, target="kind", task="regression")
    with pytest.raises(ConfigError, match="does not fit a classification table"):
        table_config(table, target="kind", loss="gaussian_nll")
    with pytest.raises(ConfigError, match="path applies to problem"):
        checked_config(path=str(table))


# -- your own model --------------------------------------------------------------------------

OWN = """
from torch import nn

CALLS = []

def build(config, input_shape, n_outputs, width=8, act="relu"):
    CALLS.append((input_shape, n_outputs, width, act))
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], width), nn.ReLU(),
                         nn.Linear(width, n_outputs))

def not_a_module(config, input_shape, n_outputs):
    return "a string"

def wrong_width(config, input_shape, n_outputs):
    return nn.Linear(input_shape[0], n_outputs + 3)

def broken(config, input_shape, n_outputs):
    raise RuntimeError("boom")
"""


@pytest.fixture
def own_module(tmp_path, monkeypatch):
    (tmp_path / "own_models_for_test.py").write_text(textwrap.dedent(OWN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "own_models_for_test"
    sys.modules.pop("own_models_for_test", None)


def test_your_own_model_gets_shapes_and_model_args_and_trains_alone(table, own_module):
    config = table_config(
        table, target="kind", model=f"{own_module}:build", model_args={"width": 5, "act": "x"}
    )
    assert population_key(config) is None  # trains one at a time
    events = list(run(config))
    started, done = events[0], events[-1]
    assert isinstance(started, RunStarted)
    assert any("one at a time" in n for n in started.notes)
    inputs = load_dataset(config, CPU).train.x.shape[1]
    assert sys.modules[own_module].CALLS[-1] == ((inputs,), 2, 5, "x")
    assert started.n_params == inputs * 5 + 5 + 5 * 2 + 2
    assert done.status == "finished" and done.final["val_acc"] > 0.7
    assert started.config["model_args"] == {"act": "x", "width": 5}


def test_bad_models_get_one_clear_message(table, own_module):
    def attempt(model, **more):
        return list(run(table_config(table, target="y", model=model, **more)))

    with pytest.raises(ConfigError, match="no module named 'no_such_mod'"):
        attempt("no_such_mod:build")
    with pytest.raises(ConfigError, match="has no 'nothing'"):
        attempt(f"{own_module}:nothing")
    with pytest.raises(ConfigError, match="returned str, not a torch.nn.Module"):
        attempt(f"{own_module}:not_a_module")
    with pytest.raises(
        ConfigError, match=r"output for a batch of 2 is \[2, 4\], expected \[2, 1\]"
    ):
        attempt(f"{own_module}:wrong_width")
    with pytest.raises(ConfigError, match="boom"):
        attempt(f"{own_module}:broken")
    with pytest.raises(ConfigError, match=r"model = \"os.system.*is not allowed"):
        attempt("os.system('ls')")
    with pytest.raises(ConfigError, match="only strings, numbers"):
        attempt(f"{own_module}:build", model_args={"width": {"nested": 1}})
    with pytest.raises(ConfigError, match="model_args apply to your own model"):
        table_config(table, target="y", model_args={"width": 3})


def test_model_args_round_trip_through_a_preset_and_the_command_line(table, own_module):
    text = f"""
        description = "mine"
        [config]
        problem = "table"
        path = "{table.name}"
        target = "y"
        model = "{own_module}:build"
        model_args = {{ width = 7, act = "tanh" }}
    """
    source = table.parent / "mine.toml"
    source.write_text(textwrap.dedent(text))
    preset = parse_preset(source.read_text(), str(source))  # path relative to the preset
    assert preset.base_config.path == str(table.resolve())
    again = parse_preset(preset_to_toml(preset), str(source))
    assert dict(again.base_config.model_args) == {"width": 7, "act": "tanh"}
    assert dict(parse_value("model_args", "{ width = 3 }")) == {"width": 3}


# -- images ----------------------------------------------------------------------------------


def test_an_image_folder_is_resized_loaded_once_and_learned_by_the_cnn(tmp_path):
    write_image_folder(tmp_path / "imgs")
    config = checked_config(
        problem="images", path=str(tmp_path / "imgs"), image_size=16, channels=[4], epochs=5,
        batch_size=8,
    )  # fmt: skip
    assert config.model == "cnn" and config.main_metric == "val_acc"
    data = load_dataset(config, CPU)
    assert data.train.x.shape[1:] == (3, 16, 16) and data.classes == ("blue", "red")
    assert sum(data.sizes.values()) == 48
    done = list(run(config))[-1]
    assert done.status == "finished" and done.test["test_acc"] == 1.0
    assert np.array(done.analysis["confusion"]).shape == (2, 2)


def test_a_grayscale_image_folder_loads_with_one_channel(tmp_path):
    """Scans and X-rays are saved in "L" mode: they load as one channel (as FashionMNIST
    does), not as three copies of it, so the CNN's first layer has 1 input channel."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("light", 200)):
        (tmp_path / "gray" / name).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(level, 20, size=(16, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "gray" / name / f"{i}.png")  # 2-D: "L"
    with Image.open(tmp_path / "gray" / "dark" / "0.png") as saved:
        assert saved.mode == "L"
    config = checked_config(
        problem="images", path=str(tmp_path / "gray"), image_size=16, channels=[4], epochs=1
    )
    data = load_dataset(config, CPU)
    assert data.train.x.shape[1:] == (1, 16, 16) and data.classes == ("dark", "light")
    assert "1 channel(s), resized to 16x16" in data.notes
    started = list(run(config))[0]
    # conv3x3 from 1 channel to 4 (+ biases), then dense from 4 x 8 x 8 to 2 classes
    assert started.n_params == (4 * 1 * 9 + 4) + (4 * 8 * 8 * 2 + 2)


def test_fashion_mnist_and_cifar10_layouts_are_read_from_disk(tmp_path):
    raw = tmp_path / "fm" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    config = checked_config(
        problem="images", path=str(tmp_path / "fm"), image_size=14, channels=[8]
    )
    data = load_dataset(config, CPU)
    assert data.classes[0] == "T-shirt/top" and data.train.x.shape[1:] == (1, 14, 14)
    assert data.sizes == {"train": 36, "val": 4, "test": 10}

    folder = tmp_path / "c" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 255, (4, 3073), dtype=np.uint8)
        records[:, 0] = np.arange(4)
        (folder / name).write_bytes(records.tobytes())
    config = checked_config(problem="images", path=str(tmp_path / "c"), image_size=32)
    data = load_dataset(config, CPU)
    assert data.classes[3] == "cat" and data.train.x.shape[1:] == (3, 32, 32)
    assert data.sizes == {"train": 18, "val": 2, "test": 4}


def test_bad_image_folders_get_one_clear_message(tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="no images found"):
        checked_config(problem="images", path=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="needs path"):
        checked_config(problem="images")
    write_image_folder(tmp_path / "imgs", n=2)
    with pytest.raises(ConfigError, match="allow at most 3"):
        checked_config(problem="images", path=str(tmp_path / "imgs"), image_size=8)
    with pytest.raises(ConfigError, match="image_size"):
        checked_config(problem="images", path=str(tmp_path / "imgs"), image_size=4)


def test_the_readme_presets_and_model_run_as_written(tmp_path, monkeypatch):
    """The two presets and the module of README's "Your own data" section, on a toy sales.csv."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    tomls = re.findall(r"```toml\n(.*?)```", section, re.S)
    module = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(tomls) == 2 and len(module) == 1
    rng = np.random.default_rng(0)
    n = 120
    sales = pd.DataFrame({"rooms": rng.integers(1, 6, n), "area": rng.normal(80, 20, n)})
    sales["district"] = rng.choice(["north", "south"], n)
    sales["price"] = sales.area * 1000 + rng.normal(0, 500, n)
    sales.to_csv(tmp_path / "sales.csv", index=False)
    (tmp_path / "mymodels.py").write_text(module[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    for i, text in enumerate(tomls):
        source = tmp_path / f"readme{i}.toml"
        source.write_text(text)
        preset = parse_preset(text, str(source)).with_overrides({"epochs": 1})
        config = preset.expand()[0].config
        assert config.task == ("regression", "classification")[i]
        assert list(run(config))[-1].status == "finished"
    sys.modules.pop("mymodels", None)


def test_cifar10_python_batches_load_and_a_hostile_pickle_is_refused(tmp_path):
    import os
    import pickle

    folder = tmp_path / "c" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))  # as the real files are
    config = checked_config(problem="images", path=str(tmp_path / "c"), image_size=32)
    data = load_dataset(config, CPU)
    assert data.train.x.shape[1:] == (3, 32, 32) and data.sizes["test"] == 4

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Hostile()}, protocol=2))
    with pytest.raises(HypertuiError, match="refusing to unpickle"):
        load_dataset(config.replace(image_size=16, channels=[8]), CPU)
