"""GPU telemetry through NVML: readings from a fake binding shaped as nvidia-ml-py's, and
every way it can be missing or fail said in one note, never raised."""

import sys
from types import SimpleNamespace

import pytest

from hypertui.engine.core import gpus


class NVMLError(Exception):
    pass


def fake_nvml(devices, init_error=None, util_error=False, count_error=False):
    """A module with the nvidia-ml-py calls read_gpus makes."""

    def init():
        if init_error:
            raise NVMLError(init_error)

    def count():
        if count_error:
            raise NVMLError("GPU is lost")
        return len(devices)

    def util(handle):
        if util_error:
            raise NVMLError("Not Supported")
        return SimpleNamespace(gpu=handle["util"])

    return SimpleNamespace(
        nvmlInit=init,
        nvmlDeviceGetCount=count,
        nvmlDeviceGetHandleByIndex=lambda i: devices[i],
        nvmlDeviceGetName=lambda h: h["name"],
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=h["used"], total=h["total"]),
        nvmlDeviceGetUtilizationRates=util,
        nvmlDeviceGetComputeRunningProcesses=lambda h: [
            SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in h["processes"]
        ],
    )


H100 = {"name": b"NVIDIA H100", "util": 87, "used": 3 * 2**30, "total": 80 * 2**30,
        "processes": [(4242, 2**30), (7, 2**29)]}  # fmt: skip
SECOND = {**H100, "name": "NVIDIA H100", "util": 5, "processes": []}


@pytest.fixture
def nvml(monkeypatch, tmp_path):
    """Install a fake binding (or none) afresh; the driver file there or not."""
    monkeypatch.setattr(gpus, "_state", {})
    monkeypatch.setattr(gpus, "DRIVER", tmp_path / "version")

    def install(module, driver=True):
        if driver:
            gpus.DRIVER.write_text("NVRM version: 580")
        monkeypatch.setitem(sys.modules, "pynvml", module)

    return install


def test_each_gpu_and_what_the_runner_holds(nvml):
    nvml(fake_nvml([H100, SECOND]))
    read, note = gpus.read_gpus(pid=4242)
    assert note == "" and [g.index for g in read] == [0, 1]
    assert (read[0].name, read[0].util, read[0].process) == ("NVIDIA H100", 87, 2**30)
    assert read[1].process == 0  # asked, and holds nothing there
    assert gpus.line(read[0]) == "GPU 0 87% · 3.0/80 GiB (runner 1.0 GiB)"
    assert gpus.line(read[1]) == "GPU 1 5% · 3.0/80 GiB"
    assert gpus.read_gpus()[0][0].process is None  # no process asked


def test_a_machine_without_nvidia_gpus_reads_nothing_and_says_nothing(nvml):
    nvml(fake_nvml([], init_error="NVML Shared Library Not Found"), driver=False)
    assert gpus.read_gpus() == ([], "")
    nvml(None, driver=False)  # no binding either: import fails
    gpus._state.clear()
    assert gpus.read_gpus() == ([], "")


def test_a_gpu_box_without_the_binding_says_how_to_install_it(nvml):
    nvml(None)  # sys.modules["pynvml"] = None: the import fails
    assert gpus.read_gpus() == ([], f"GPU telemetry needs nvidia-ml-py: {gpus.INSTALL}")


def test_failures_are_notes(nvml):
    nvml(fake_nvml([H100], init_error="Driver Not Loaded"))
    assert gpus.read_gpus() == ([], "NVML did not start: Driver Not Loaded")
    gpus._state.clear()
    nvml(fake_nvml([H100], count_error=True))
    assert gpus.read_gpus() == ([], "GPU telemetry failed: GPU is lost")
    gpus._state.clear()
    nvml(fake_nvml([H100], util_error=True))  # a MIG slice: memory, no utilisation
    read, note = gpus.read_gpus()
    assert note == "" and read[0].util is None and gpus.line(read[0]) == "GPU 0 · 3.0/80 GiB"


def test_nvml_starts_once_a_process(nvml):
    calls = []
    module = fake_nvml([H100])
    module.nvmlInit = lambda: calls.append(1)
    nvml(module)
    for _ in range(3):
        gpus.read_gpus()
    assert calls == [1]


def test_the_real_binding_on_this_machine_never_raises():
    pytest.importorskip("pynvml")
    read, note = gpus.read_gpus(pid=1)
    assert isinstance(read, list) and isinstance(note, str)


async def test_live_offers_a_gpu_pane_only_where_there_are_gpus(nvml, tmp_path):
    """g shows every GPU under the status line where NVML sees one, and is not offered
    (nor does anything) where it sees none."""
    import time

    pytest.importorskip("textual")  # a lent GPU machine runs this file without the app
    from hypertui.engine.store.store import Store
    from hypertui.tui.app.app import HypertuiApp
    from hypertui.tui.app.screens.live import LiveScreen
    from tests.fakes import make_sweep

    async def pane_after_g(app, pilot):
        live = LiveScreen(tmp_path / "runs.sqlite", "5eed0001")
        await app.push_screen(live)
        deadline = time.monotonic() + 30
        while live.sweep is None or not gpus._state:  # the follower and NVML have read
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        live.update_status()
        await pilot.pause(0.2)
        pane = live.query_one("#gpu-pane")
        shown_before = pane.display
        await pilot.press("g")
        await pilot.pause()
        return live, shown_before, pane.display, str(pane.render())

    make_sweep(Store(tmp_path / "runs.sqlite"), "5eed0001")
    nvml(fake_nvml([H100, SECOND]))
    app = HypertuiApp(store_path=tmp_path / "runs.sqlite")
    async with app.run_test(size=(100, 34)) as pilot:
        live, before, after, text = await pane_after_g(app, pilot)
        assert live.check_action("gpus", ()) and not before and after
        assert "GPU 0 87% · 3.0/80 GiB · NVIDIA H100" in text and "GPU 1 5%" in text

    gpus._state.clear()
    nvml(None, driver=False)  # no NVIDIA GPU here
    app = HypertuiApp(store_path=tmp_path / "runs.sqlite")
    async with app.run_test(size=(100, 34)) as pilot:
        live, before, after, text = await pane_after_g(app, pilot)
        assert not live.check_action("gpus", ()) and not before and not after


def test_the_runners_memory_counts_the_processes_under_it(nvml, monkeypatch):
    """--jobs units and your own code train in the forkserver's children: the runner's
    grandchildren hold the GPU memory. A real process tree: this test, a child, its child."""
    import os
    import subprocess
    from pathlib import Path

    if not Path("/proc/self/stat").exists():
        pytest.skip("reads the process tree from /proc (Linux)")
    grandchild = None
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', "
         "'import time; time.sleep(60)']); print(p.pid, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        grandchild = int(child.stdout.readline())
        assert {os.getpid(), child.pid, grandchild} <= gpus.family(os.getpid())
        assert os.getpid() not in gpus.family(child.pid)
        device = {**H100, "processes": [(grandchild, 2**30), (child.pid, 2**29), (7, 2**31)]}
        nvml(fake_nvml([device]))
        assert gpus.read_gpus(pid=os.getpid())[0][0].process == 2**30 + 2**29
    finally:
        child.kill()
        child.wait()
        if grandchild is not None:
            os.kill(grandchild, 9)


def test_gpus_that_run_nothing_walk_no_proc(nvml, monkeypatch):
    """A viewer reads every second: the /proc walk only when a GPU lists processes."""
    walked = []
    monkeypatch.setattr(gpus, "family", lambda pid: walked.append(pid) or {pid})
    nvml(fake_nvml([SECOND, SECOND]))  # no processes on either
    assert [g.process for g in gpus.read_gpus(pid=4242)[0]] == [0, 0] and walked == []
    gpus._state.clear()
    nvml(fake_nvml([H100, H100]))  # processes on both: one walk for the reading
    assert [g.process for g in gpus.read_gpus(pid=4242)[0]] == [2**30, 2**30]
    assert walked == [4242]
    assert gpus.unavailable() is False
    gpus._state.clear()
    nvml(None, driver=False)
    gpus.read_gpus()
    assert gpus.unavailable() is True  # no NVML here: a viewer stops asking
