"""Quality on the real data sets in ../shared/data (HYPERTUI_DATA)."""

import torch

from hypertui.engine.core.config import make_config
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.training.train import run


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
    # bf16 where the CPU has it natively, fp32 elsewhere (emulated bf16 ran this for over
    # 15 minutes in a CI run): ~70 s on a 2-core AVX2 CPU.
    config = find_preset("mnist-fast").base_config
    # One thread: two xdist workers with two threads each on two cores, or any busy loop
    # beside them, make torch's threads wait on each other (it passed 1200 s under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        done = list(run(config.replace(device="cpu"), data_dir=shared_data))[-1]
    finally:
        torch.set_num_threads(threads)
    assert done.status == "finished" and done.epochs_done == 3
    assert done.test["test_acc"] >= 0.99
