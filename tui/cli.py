"""`hypertui` on the command line: the TUI with no arguments, headless commands otherwise.

Exit codes: 0 success, 2 bad input (one clear line on stderr, never a traceback), 1 a
failure during a run, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from engine import __version__
from engine.errors import HypertuiError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypertui",
        description="A terminal hyperparameter lab for PyTorch. "
        "Run with no arguments for the interactive app.",
    )
    parser.add_argument("--version", action="version", version=f"hypertui {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command is None:
            from tui.app import HypertuiApp

            HypertuiApp().run()
            return EXIT_OK
        return args.handler(args)
    except HypertuiError as exc:
        print(f"hypertui: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
