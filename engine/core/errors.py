"""The one exception type the engine raises for things a user can fix.

The CLI catches `HypertuiError`, prints its message and exits with status 2; anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HypertuiError(Exception):
    """Bad input: an impossible config, a malformed preset, missing data."""


class ConfigError(HypertuiError):
    """A config value, key or combination that cannot run."""


class DataError(HypertuiError):
    """A data set that cannot be found, read or verified."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the nearest choice, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
