"""A non-editable install ships every package, the presets and the bundled data."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_package_and_data_file(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("hypertui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = [
        p.relative_to(ROOT).as_posix()
        for top in ("engine", "tui", "presets")
        for p in (ROOT / top).rglob("*")
        if p.suffix in (".py", ".toml", ".tcss", ".gz") and "__pycache__" not in p.parts
    ]
    missing = sorted(s for s in sources if s not in names)
    assert not missing, f"not in the wheel: {missing}"
    assert "engine/data/ames_housing.csv.gz" in names and "presets/quickstart.toml" in names
