"""Export files: where they go and what mode they get."""

from __future__ import annotations

import os
import stat

from hypertui.engine.analysis.export import write_atomic
from hypertui.engine.core.paths import export_path, exports_dir


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_get_the_umask_mode_and_keep_an_existing_files_mode(tmp_path):
    old = os.umask(0o022)
    try:
        new = write_atomic(tmp_path / "a.csv", "x\n")
        assert mode(new) == 0o644  # as open() would make it, not mkstemp's 0600
        (tmp_path / "b.csv").write_text("old")
        os.chmod(tmp_path / "b.csv", 0o640)
        assert mode(write_atomic(tmp_path / "b.csv", "new\n")) == 0o640
    finally:
        os.umask(old)


def test_no_preset_name_takes_an_export_out_of_the_exports_folder():
    for name in ("../../../../tmp/x/pwn", "/etc/passwd", "..", "a/b", "[/red]x", "\x1b[2J"):
        path = export_path(name, "5eed0001", "runs", "csv")
        assert path.parent == exports_dir() and path.name.endswith("-5eed0001-runs.csv")
        assert not path.name.startswith(".")
