"""hypertui's engine: data, models, training, sweeps and the run store.

Headless by contract: nothing here imports textual, rich or plotext (see
tests/test_import_hygiene.py), so scripts and the TUI's child process stay light.
"""

__version__ = "0.1.0"
