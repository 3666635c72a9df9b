"""Where hypertui keeps the user's things: the run store and user presets.

`$HYPERTUI_HOME` overrides the default, `$XDG_DATA_HOME/hypertui` (~/.local/share/hypertui).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypertui.engine.core.errors import ConfigError


def expand_user(text: str, label: str) -> str:
    """`text` with a leading `~` or `~user` expanded, or a ConfigError that starts with
    `label` (how the user wrote the setting: "--out x", "path = 'x'") when that user does
    not exist. Every user-typed path goes through here: pathlib's expanduser raised a
    RuntimeError (a traceback), and os.path's leaves the `~name` as a relative folder."""
    expanded = os.path.expanduser(text)
    if expanded.startswith("~"):
        user = expanded[1:].split(os.sep, 1)[0]
        who = f"no such user {user!r}" if user else "no home folder ($HOME is not set)"
        raise ConfigError(f"{label}: {who} (the ~ cannot be expanded)")
    return expanded


def home_dir() -> Path:
    if env := os.environ.get("HYPERTUI_HOME"):
        return Path(expand_user(env, f"$HYPERTUI_HOME = {env!r}"))
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "hypertui"


def default_store_path() -> Path:
    return home_dir() / "runs.sqlite"


def user_presets_dir() -> Path:
    return home_dir() / "presets"


def checkpoints_dir(sweep_id: str, run_id: str | None = None) -> Path:
    """A sweep's checkpoints (engine/training/checkpoint.py), or one run's."""
    folder = home_dir() / "checkpoints" / sweep_id
    return folder / run_id if run_id else folder


def exports_dir() -> Path:
    return home_dir() / "exports"


def export_path(preset: str, sweep_id: str, kind: str, suffix: str) -> Path:
    """The default export file of a sweep, always directly inside `exports_dir()`.

    Preset names are checked when a preset loads, but a store may hold sweeps made before
    that check; anything but letters, digits, '.', '_' and '-' becomes '_', so no name can
    reach another folder.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{preset}-{sweep_id}-{kind}").lstrip(".")
    return exports_dir() / f"{stem[:120]}.{suffix}"
