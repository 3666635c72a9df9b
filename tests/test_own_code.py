"""The user's own code trains in a process of its own (engine/sweeps/apart.py): whatever it
does (exit, raise, print, hang) is a fact about its trial, never the end of the sweep."""

from __future__ import annotations

import sys
import textwrap
import threading
import time

import pytest

from hypertui.engine.core.controls import Controls
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps import apart
from hypertui.engine.sweeps.presets import parse_preset
from hypertui.engine.sweeps.sweep import create_sweep, run_sweep

# One module, a behaviour per learning rate: each trial of the sweep meets one of them.
MODULE = """
import os, sys, time
import torch

print("hello from the user's module")  # must never reach stdout


class Odd(torch.nn.Linear):
    def forward(self, x):
        out = super().forward(x)
        if not self.training:
            return out
        if self.mode == "os_exit":
            os._exit(0)
        if self.mode == "type_error":
            return out + "a string"
        if self.mode == "wrong_shape":
            return out.repeat(1, 3)  # right in eval mode only
        return out


def build(config, input_shape, n_outputs):
    mode = {0.001: "sys_exit", 0.002: "os_exit", 0.003: "type_error", 0.004: "wrong_shape",
            0.005: "hang"}.get(config.lr, "")
    if mode == "sys_exit":
        sys.exit(3)
    if mode == "hang":
        while True:
            time.sleep(1)
    model = Odd(input_shape[0], n_outputs)
    model.mode = mode
    return model
"""


@pytest.fixture
def own_model(tmp_path, monkeypatch):
    (tmp_path / "odd_models.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "odd_models:build"
    sys.modules.pop("odd_models", None)


def preset(model: str, lrs: list[float]):
    return parse_preset(
        f'description = "own code"\n[config]\nmodel = "{model}"\nepochs = 2\n'
        f"batch_size = 256\n[sweep]\nlr = {lrs}\n",
        "own.toml",
    )


def test_whatever_the_users_code_does_fails_its_trial_and_the_sweep_goes_on(
    tmp_path, own_model, capfd
):
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, preset(own_model, [0.001, 0.002, 0.003, 0.004, 0.01]))
    list(run_sweep(store, sweep_id))
    runs = store.runs(sweep_id)
    assert [r.status for r in runs] == ["failed"] * 4 + ["finished"]
    reasons = [r.reason for r in runs]
    assert "sys.exit(3)" in reasons[0]
    assert "exit code 0" in reasons[1]
    assert reasons[2].startswith("TypeError: ") and "traceback" in reasons[2]
    assert (
        "in train mode its output for a batch of 256 is [256, 3], expected [256, 1]" in (reasons[3])
    )
    assert store.sweep(sweep_id).status == "done"
    out = capfd.readouterr()
    assert "hello from" not in out.out  # stdout is the --json stream


def test_a_build_that_never_returns_is_killed_on_cancel(tmp_path, own_model, monkeypatch):
    monkeypatch.setattr(apart, "GRACE_S", 1.0)
    store = Store(tmp_path / "s.sqlite")
    sweep_id = create_sweep(store, preset(own_model, [0.005, 0.01]))
    controls = Controls()
    cancelled_at: list[float] = []

    def cancel_once_building() -> None:  # the child is alive: it hangs in build()
        while not any(p.name == "hypertui-own-code" for p in _children()):
            time.sleep(0.1)
        time.sleep(0.5)
        cancelled_at.append(time.monotonic())
        controls.cancel()

    threading.Thread(target=cancel_once_building, daemon=True).start()
    list(run_sweep(store, sweep_id, controls))
    assert time.monotonic() - cancelled_at[0] < 30  # within the grace, not never
    assert store.sweep(sweep_id).status == "cancelled"
    assert [r.status for r in store.runs(sweep_id)] == ["pending", "pending"]
    assert not _children()


def _children():
    import multiprocessing

    return [p for p in multiprocessing.active_children() if p.name == "hypertui-own-code"]


def test_a_presets_own_model_is_imported_from_the_presets_folder(tmp_path, monkeypatch):
    """As its relative `path` is read from there: hypertui may start anywhere, and a
    runner started later (a resume, --detach) imports it from there too."""
    from hypertui.tui.cli.main import main

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "project_models.py").write_text(
        "import torch\n"
        "def build(config, input_shape, n_outputs):\n"
        "    return torch.nn.Linear(input_shape[0], n_outputs)\n"
    )
    (folder / "mine.toml").write_text(
        'description = "mine"\n[config]\nmodel = "project_models:build"\nepochs = 1\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the folder joins it: undone after
    store_path = tmp_path / "s.sqlite"
    assert main(["run", str(folder / "mine.toml"), "--store", str(store_path)]) == 0
    store = Store(store_path)
    sweep = store.sweeps()[0]
    assert [r.status for r in store.runs(sweep.id)] == ["finished"]
    assert sweep.options["import_dir"] == str(folder)
    sys.modules.pop("project_models", None)


def test_a_model_is_checked_in_a_child_before_a_sweep_exists(own_model):
    from hypertui.engine.core.config import make_config

    def config(lr):
        return make_config(model=own_model, lr=lr).to_dict()

    assert apart.check_build(config(0.01)) == ""
    assert "your code called sys.exit(3)" in apart.check_build(config(0.001))
    assert "did not return within 2 s" in apart.check_build(config(0.005), timeout_s=2)
    assert not _children()  # the hung one was killed
