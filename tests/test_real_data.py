"""Quality on the real data sets in ../shared/data (HYPERTUI_DATA)."""

import os

import torch

from engine.config import make_config
from engine.presets import find_preset
from engine.train import run


def test_house_4x10_relu_rmsprop_reaches_val_mse_below_0_2():
    config = make_config(hidden=[10, 10, 10, 10], optimizer="rmsprop", lr=1e-3, epochs=5)
    done = list(run(config))[-1]
    assert done.status == "finished"
    assert done.best["val_mse"] < 0.2


def test_study_cnn_one_epoch_on_10k_mnist_reaches_95_percent(shared_data):
    config = make_config(problem="mnist", train_samples=10_000, batch_size=16, lr=2e-3)
    events = list(run(config, data_dir=shared_data))
    assert events[0].sizes == {"train": 10_000, "val": 10_000, "test": 10_000}
    assert events[-1].status == "finished" and events[-1].epochs_done == 1
    assert events[-1].final["val_acc"] > 0.95


def test_the_mnist_fast_preset_reaches_99_percent_test_accuracy(shared_data):
    # Every core, as a fresh `hypertui run` has: an earlier test in this process can leave
    # torch at one thread, and this CNN then took over 15 minutes in a CI run.
    torch.set_num_threads(os.cpu_count() or 1)
    config = find_preset("mnist-fast").base_config  # ~35 s on a 2-core CPU
    done = list(run(config.replace(device="cpu"), data_dir=shared_data))[-1]
    assert done.status == "finished" and done.epochs_done == 3
    assert done.test["test_acc"] >= 0.99
