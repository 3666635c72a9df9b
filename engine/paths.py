"""Where hypertui keeps the user's things: the run store and user presets.

`$HYPERTUI_HOME` overrides the default, `$XDG_DATA_HOME/hypertui` (~/.local/share/hypertui).
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    if env := os.environ.get("HYPERTUI_HOME"):
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "hypertui"


def default_store_path() -> Path:
    return home_dir() / "runs.sqlite"


def user_presets_dir() -> Path:
    return home_dir() / "presets"


def exports_dir() -> Path:
    return home_dir() / "exports"
