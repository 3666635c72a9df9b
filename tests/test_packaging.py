"""A non-editable install ships every package, the presets and the bundled data."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (".py", ".toml", ".tcss", ".gz")


def test_the_wheel_holds_every_package_and_data_file(tmp_path):
    # Build from a clean copy of the tracked files: a checkout's own hypertui.egg-info (left
    # by the editable install) makes setuptools ship unlisted packages anyway, as "data".
    source = tmp_path / "src"
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
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
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("hypertui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        f"hypertui/{n}"
        for n in tracked
        if n.split("/")[0] in ("engine", "tui", "presets", "hypertui") and n.endswith(SHIPPED)
    ]
    expected = [n.replace("hypertui/hypertui/", "hypertui/") for n in expected]
    missing = sorted(n for n in expected if n not in names)
    assert not missing, f"not in the wheel: {missing}"
    assert "hypertui/engine/data/ames_housing.csv.gz" in names
    assert "hypertui/presets/quickstart.toml" in names
    # one import namespace: nothing of ours beside `hypertui` in site-packages, so a user's
    # own engine.py, tui/ or presets.py can neither shadow ours nor be shadowed
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"hypertui"}, tops
