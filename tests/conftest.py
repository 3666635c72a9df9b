"""Shared fixtures and the slow tier. No test reaches the network: the MNIST loader's
download sources are replaced for every test, and real data comes only from HYPERTUI_DATA
(../shared/data).

`make test` leaves out the `slow` tier: tests that read real data (the `shared_data`
fixture), start Ray (`ray`), simulate p-value calibrations, or send signals to real
processes. `make test-slow` runs it; CI runs both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hypertui.engine.data import mnist


def _no_network(data_dir: Path) -> None:
    raise RuntimeError("network sources are disabled in tests")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setattr(
        mnist,
        "SOURCES",
        (("data folder", mnist.from_folder), ("network (disabled in tests)", _no_network)),
    )
    monkeypatch.setenv("HYPERTUI_HOME", str(tmp_path / "home"))


@pytest.fixture
def shared_data() -> Path:
    """The offline copies in ../shared/data; tests that need them skip without them."""
    root = os.environ.get("HYPERTUI_DATA")
    path = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (path / "MNIST" / "raw").is_dir():
        pytest.skip("real data not found: set HYPERTUI_DATA to ../shared/data")
    return path


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_data)
        if item.get_closest_marker("real_data") or item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.slow)
