"""`--set KEY=VALUE`, shared by every command that changes a preset's values."""

from __future__ import annotations

import argparse

from hypertui.engine.core.errors import ConfigError


def add_set_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def parse_sets(pairs: list[str]) -> dict:
    """`["lr=0.1", "hidden=[8, 8]"]` -> {"lr": 0.1, "hidden": [8, 8]}, each value checked."""
    from hypertui.engine.core.config import parse_value

    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set lr=0.01")
        values[key.strip()] = parse_value(key.strip(), text)
    return values
