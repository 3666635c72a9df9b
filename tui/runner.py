"""The one adapter between the engine and the UI: a sweep in a supervised child process.

The sweep trains in `hypertui run --resume ID --json`, a child process with explicit pipes
(so Textual's stdout handling never reaches it); a Textual worker thread reads its JSON
lines and posts them as messages. Pause, skip and cancel are signals the child's headless
runner understands (SIGUSR1, SIGUSR2, SIGTERM). Measured on a 2-core machine, a thread
worker training in-process lost ~70% of its speed to the UI's redraws; a child process
keeps the GIL to itself (see bench/tui_latency.py for this app's own numbers).

Widgets never call the engine: screens own a SweepRunner and react to its messages.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from textual.message import Message
from textual.widget import Widget


class SweepRunner:
    """Runs one sweep in a child process and posts its events to `target`."""

    class Event(Message):
        """One engine event (or the final summary) as the child printed it."""

        def __init__(self, record: dict[str, Any]) -> None:
            super().__init__()
            self.record = record

    class Ended(Message):
        def __init__(self, returncode: int, error: str) -> None:
            super().__init__()
            self.returncode = returncode
            self.error = error  # the child's last stderr line when it failed

    def __init__(self, target: Widget, store_path: Path, sweep_id: str, data_dir: Path | None):
        self.target = target
        self.store_path = store_path
        self.sweep_id = sweep_id
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "tui",
            "run",
            "--resume",
            self.sweep_id,
            "--json",
            "--store",
            str(self.store_path),
        ]
        return cmd + (["--data-dir", str(self.data_dir)] if self.data_dir else [])

    def start(self) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self.target.run_worker(self._read, thread=True, group="sweep", exit_on_error=False)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # not ours: a library printed to stdout
            self.target.post_message(self.Event(record))
        code = self.proc.wait()
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().splitlines() if ln.strip()]
        error = next((ln for ln in reversed(lines) if ln.startswith("hypertui:")), "")
        self._stderr.close()
        self.target.post_message(self.Ended(code, error or (lines[-1] if code and lines else "")))

    def _signal(self, sig: int) -> None:
        if self.running:
            os.kill(self.proc.pid, sig)

    def toggle_pause(self) -> bool:
        if self.running:
            self._signal(signal.SIGUSR1)
            self.paused = not self.paused
        return self.paused

    def skip(self) -> None:
        self._signal(signal.SIGUSR2)

    def cancel(self) -> None:
        self.paused = False
        self._signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        """Cancel and wait for the child to record its state (the app is quitting)."""
        if self.proc is None:
            return
        self.cancel()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # the store stays consistent: the trial is reset on resume
