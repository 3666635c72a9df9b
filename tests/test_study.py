"""The study report: collects stored sweeps of the shipped presets and judges their checks."""

from __future__ import annotations

import pytest

from hypertui.engine.core.errors import ConfigError
from hypertui.engine.core.events import Finished
from hypertui.engine.store.store import Store
from hypertui.engine.sweeps.presets import find_preset
from hypertui.engine.sweeps.study import collect, find_sweep, markdown, study_presets
from hypertui.engine.sweeps.sweep import create_sweep
from hypertui.tui.cli.main import main


def finish_all(store: Store, sweep_id: str, value_of) -> None:
    """Record every run of a sweep as finished with a made-up val_mse (no training)."""
    for run in store.runs(sweep_id):
        v = value_of(run)
        m = {"val_mse": v, "val_loss": v}
        store.run_ended(Finished(run.id, "finished", 20, 1, 1, 1.0, 1.0, m, m, 20, {}))
    store.end_sweep(sweep_id, "done")


def test_report_judges_a_stored_sweep_and_lists_the_ones_not_run(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    preset = find_preset("quickstart")
    sweep_id = create_sweep(store, preset)
    finish_all(store, sweep_id, lambda r: 0.08 + 0.001 * r.seed)
    assert find_sweep(store, preset).id == sweep_id
    rows = collect(store, [preset, find_preset("house-best")], run=False)
    text = markdown(rows)
    assert f"quickstart (8 runs, sweep {sweep_id})" in text
    assert "| tanh ≈ relu on val_mse ± 0.01 | - | Δ 0 [0, 0] | **holds**: paired t, n = 4" in text
    assert "| house-best |" in text and "not run" in text
    assert "1 checks: 1 holds, 0 does not hold, 0 inconclusive; 100% conclusive." in text


def test_an_inconclusive_check_of_a_preset_that_needs_its_full_version_says_so(tmp_path):
    """needs_full is the report's to read: the stored sweep of the preset without it is
    still this preset's, and an inconclusive verdict names the reason."""
    import dataclasses

    store = Store(tmp_path / "runs.sqlite")
    preset = find_preset("quickstart")
    sweep_id = create_sweep(store, preset)
    finish_all(store, sweep_id, lambda r: 0.08 + 0.05 * r.seed * (r.point["activation"] == "tanh"))
    needs = dataclasses.replace(preset, needs_full="the study's 200 epochs on a GPU")
    assert find_sweep(store, needs).id == sweep_id
    text = markdown(collect(store, [needs], run=False))
    assert "**inconclusive** (needs --full)" in text and "needs --full: the study's 200" in text
    assert "0% conclusive." in text and "1 of the inconclusive need" in text
    # a check the quick version refutes is left open too: the claim is of the full version
    finish_all(store, sweep_id, lambda r: 0.08 + 0.05 * (r.point["activation"] == "tanh"))
    text = markdown(collect(store, [needs], run=False))
    assert "the quick version: does not hold" in text and "0% conclusive." in text


def test_a_sweep_of_another_version_of_the_preset_is_not_collected(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    preset = find_preset("quickstart")
    other = preset.with_overrides({"epochs": 3})
    finish_all(store, create_sweep(store, other), lambda r: 0.1)
    assert find_sweep(store, preset) is None


def test_report_command_writes_the_file(tmp_path, capsys):
    store_path = tmp_path / "runs.sqlite"
    store = Store(store_path)
    finish_all(store, create_sweep(store, find_preset("quickstart")), lambda r: 0.08)
    out = tmp_path / "STUDY.md"
    args = ["--store", str(store_path), "report", "quickstart", "--no-run", "--out", str(out)]
    assert main(args) == 0
    assert "**holds**" in out.read_text()
    assert main(["--store", str(store_path), "report", "quickstrat", "--no-run"]) == 2
    assert "did you mean 'quickstart'" in capsys.readouterr().err


def test_study_presets_are_every_shipped_preset():
    names = [p.name for p in study_presets()]
    assert "house-study-grid" in names and "mnist-best" in names and len(names) == 19
    with pytest.raises(ConfigError):
        study_presets(["nope"])


def test_an_unfinished_sweep_gets_no_verdict(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    preset = find_preset("quickstart")
    sweep_id = create_sweep(store, preset)
    text = markdown(collect(store, [preset], run=False))
    assert f"| quickstart (sweep {sweep_id}) |" in text and "unfinished: 0/8 runs" in text
    assert "0 checks" in text and "Not run here: quickstart." in text


def test_the_report_trains_a_preset_as_a_runner_does(tmp_path, monkeypatch):
    """Claimed and its heartbeat beaten while it trains, so a viewer sees it running (not
    interrupted, as a sweep trained without a watch once read) and no runner takes it.

    Every step's tick beats, and each beat records what a viewer reads then: no clock
    decides whether a beat falls inside the training (a fast machine trains it in 0.1 s)."""
    from hypertui.engine.sweeps import runner

    monkeypatch.setattr(runner, "TICK_S", 0.0)
    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.0)
    store = Store(tmp_path / "runs.sqlite")
    viewer = Store(tmp_path / "runs.sqlite")
    seen_by_viewer = []
    beat = Store.beat

    def beat_and_look(self, sweep_id, paused, paused_s):
        beat(self, sweep_id, paused, paused_s)
        sweep = viewer.sweep(sweep_id)
        seen_by_viewer.append((sweep.status, sweep.n_done))

    monkeypatch.setattr(Store, "beat", beat_and_look)
    preset = find_preset("quickstart").with_overrides({"epochs": 5})
    seen = []
    rows = collect(store, [preset], run=True, progress=lambda line: seen.append(line))
    sweep = store.sweep(rows[0].sweep.id)
    assert (sweep.status, sweep.n_done) == ("done", 8) and "running sweep" in seen[0]
    while_training = [status for status, n_done in seen_by_viewer if n_done < 8]
    assert while_training and set(while_training) == {"running"}  # beaten while it trained


def test_an_unfinished_sweep_goes_on_with_the_data_folder_asked_for_now(tmp_path, monkeypatch):
    """`hypertui report --data-dir X` resumes a sweep created without one: it trains on X
    (it read the default folder, as the sweep's stored options said nothing)."""
    from hypertui.engine.sweeps import study

    store = Store(tmp_path / "runs.sqlite")
    preset = find_preset("quickstart")
    create_sweep(store, preset)  # no data_dir stored
    seen = []
    monkeypatch.setattr(
        study,
        "run_watched",
        lambda store, sweep_id, controls: (
            seen.append(store.sweep(sweep_id).options.get("data_dir")) or iter(())
        ),
    )
    collect(store, [preset], run=True, data_dir=tmp_path / "data")
    assert seen == [str(tmp_path / "data")]
